"""RFC 6275 §9.2 "Mobility Header processing", the checks every receiver of a Mobility Header
applies before it looks at the message (the HA's binding cache and the CN use it; the MN has its
own in firmware).

`check(p)` takes a decoded IPv6 packet (`roam6.wire.ipv6.decode_ipv6`) whose upper layer is a
Mobility Header and returns a `Verdict(action, arg, reason)`:

    action           arg          what the receiver must do (RFC 6275 §9.2)
    "ok"             None         go on decoding the message
    "drop"           None         discard silently (bad checksum, too short to be an MH)
    "param_problem"  pointer      discard; SHOULD answer ICMPv6 Parameter Problem code 0 to the
                                  packet's Source Address, pointing at Payload Proto (not 59)
                                  or at Header Len (below the message type's minimum)
    "binding_error"  MH type      discard; SHOULD answer a Binding Error, status 2 (unknown
                                  MH type), to the Source Address; rate-limited

`pointer` counts from the first byte of the IPv6 header of the packet as it was given (for a
UDP-tunnelled packet: of the inner packet). The answers themselves are built by
`param_problem()` and `binding_error()` (both: a whole IPv6 packet); rate limits are the
caller's (roam6_host.ratelimit).
"""
import struct
from typing import NamedTuple

from roam6_codec import consts as C
from roam6_codec.icmp6 import UnknownICMPv6
from roam6_codec.mh import _BY_TYPE, BindingError
from roam6.wire.checksum import checksum6
from roam6.wire.ipv6 import build_ipv6, pseudo_dst, pseudo_src

IPPROTO_NONE = 59
ICMP6_PARAM_PROB = 4
MIN_MTU = 1280


def _min_header_len(cls):
    """The smallest Header Len (8-octet units, not counting the first 8) of a message of class
    cls: 6 bytes of MH header plus the fixed message data, rounded up to 8 (RFC 6275 §6.1)."""
    fl = getattr(cls, "fl", 0) or 0
    if cls.mh_type == 12:        # Home Agent Switch: # of Addresses and Reserved
        fl = 2
    return (6 + fl + 7) // 8 - 1


# RFC 6275 §6.1.1-6.1.8: BRR 0, HoTI/CoTI 1, HoT/CoT 2, BU 1, BA 1, BE 2 (and the extensions')
MIN_HEADER_LEN = {t: _min_header_len(cls) for t, cls in _BY_TYPE.items()}
KNOWN_TYPES = frozenset(_BY_TYPE)


class Verdict(NamedTuple):
    action: str
    arg: object
    reason: str


OK = Verdict("ok", None, "")


def checksum_ok(p):
    return checksum6(pseudo_src(p), pseudo_dst(p), C.NH_MH, p.payload) == 0


def check(p, checksum=True):
    """RFC 6275 §9.2 on the decoded packet p (its nh must be 135). checksum=False leaves the
    checksum to the caller (`checksum_ok`), who then must verify it before answering: a receiver
    that drops without answering anyway (over its budget) saves the work."""
    mh = p.payload
    n = len(mh)
    if n < 8:
        return Verdict("drop", None, "a Mobility Header is at least 8 bytes, got %d" % n)
    if checksum and not checksum_ok(p):
        return Verdict("drop", None, "bad Mobility Header checksum")
    if mh[0] != IPPROTO_NONE:
        return Verdict("param_problem", p.payload_offset, "Payload Proto %d, must be 59" % mh[0])
    t, hl = mh[2], mh[1]
    least = MIN_HEADER_LEN.get(t)
    if least is not None and hl < least:
        return Verdict("param_problem", p.payload_offset + 1,
                       "Header Len %d is below %d, the minimum of MH type %d" % (hl, least, t))
    if t not in KNOWN_TYPES:
        return Verdict("binding_error", t, "unknown MH type %d" % t)
    return OK


def may_answer(p):
    """RFC 4443 §2.4 (e): no ICMPv6 error (and no Binding Error) to an unspecified or multicast
    source, or for a packet sent to a multicast address."""
    return p.src[0] != 0xFF and p.dst[0] != 0xFF and any(p.src)


def param_problem(src, packet, pointer):
    """ICMPv6 Parameter Problem, code 0 (erroneous header field), from src to the invoking
    packet's Source Address, carrying as much of the packet as fits in 1280 bytes."""
    dst = bytes(packet[8:24])
    body = bytes(packet[:MIN_MTU - 48])
    m = UnknownICMPv6(ICMP6_PARAM_PROB, struct.pack(">I", pointer) + body)
    m.code = 0
    return build_ipv6(src, dst, C.NH_ICMPV6, m.encode(src=src, dst=dst))


def binding_error(src, p, status=C.BE_UNKNOWN_MH_TYPE):
    """A Binding Error from src to p's Source Address; Home Address: the packet's Home Address
    option if it had one, else the unspecified address (RFC 6275 §6.1.9)."""
    hoa = p.hao if p.hao is not None else bytes(16)
    mh = BindingError(status, hoa).encode(src=src, dst=p.src)
    return build_ipv6(src, p.src, C.NH_MH, mh)
