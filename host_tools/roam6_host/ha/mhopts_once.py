"""One semantics for duplicated mobility options in a BU: options that may appear once are
refused when they appear twice (the BU is dropped as malformed, on every path of the binding
cache), never read as "the first" on one path and "the last" on another.

RFC 6275 §6.2 lets each message say which options it may carry; none of the BU options roam6
reads has a meaning when repeated (two care-of addresses, two timestamps, two identities), so a
BU carrying one twice is not one the MN could have meant. Padding (Pad1, PadN) and options roam6
does not read may repeat.
"""
from roam6_codec import mhopts as mo

ONCE = (mo.MNIdentifier, mo.MobilityAuth, mo.ReplayProtection, mo.IPv4CareofAddress, mo.AlternateCoA,
        mo.NonceIndices, mo.BindingAuthData, mo.BindingRefreshAdvice, mo.NATDetection, mo.IPv4HomeAddress)


def duplicated_option(options):
    """'' when no once-only option repeats, else the reason ("duplicated IPv4CareofAddress option")."""
    seen = set()
    for o in options:
        t = type(o)
        if t in ONCE:
            if t in seen:
                return "duplicated %s option" % t.__name__
            seen.add(t)
    return ""
