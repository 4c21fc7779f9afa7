"""The binding cache's early drop: decisions about a BU that need neither its checksum nor the
full codec, taken before either (each costs tens of microseconds in Python; an HA under a flood
of BUs must spend them only on BUs that can matter).

- A Mobility Header of a known type other than BU (mhcheck answered the unknown ones already):
  nothing for the HA to do.
RFC 4285 §6 puts the MN-HA authentication option last in the BU, so its SPI sits at a fixed
distance from the end: [type 9][length 17][subtype 1][SPI, 4 bytes][authenticator, 12 bytes].
- No MN-HA option there: rule mn_id would drop the BU anyway.
- An SPI the HA does not know: rule spi drops it (the same reason text, "spi: unknown SPI n"),
  unless the HA asks an AAA server (then rule spi hands it to the AAA agent).
- A known SPI, but its source over the rejection budget (ha/limits.py) and the BU not for a HoA
  already bound under that SA: rule budget drops it (UDP only, where the HoA is the inner
  source; ip6 BUs go through the rules as they are).
- A known SPI, but its source host blocked for failing BUs (ha/sourceblock.py) and the BU not
  from where its HoA is bound: rule budget drops it (same reason).
The outcome is the one BU_RULES would reach (a silent drop); only the work before it is saved.
"""
from roam6_codec import consts as C


def early_drop(cache, c, pkt, now):
    """'' to go on, else the reason to drop `c` (pkt: its decoded IPv6 packet, an MH to the HA)."""
    mh = pkt.payload
    n = len(mh)
    if mh[2] != 5:                              # a known type only an MN or a CN takes (BRR, BE, BA...)
        return "parse: MH type %d is not a BU" % mh[2]
    if n < 12 + 19:
        return ""                               # too short: the codec path says why
    a = n - 19
    if mh[a] != C.MO_AUTH or mh[a + 1] != 17 or mh[a + 2] != C.AUTH_MN_HA:
        return "mn_id: the MN-HA option (12-byte HMAC-SHA1-96) must be the last option"
    spi = int.from_bytes(mh[a + 3:a + 7], "big")
    sa = cache.sas.get(spi)
    if sa is None:
        # with AAA an SPI the HA does not hold yet may be a device the server knows: rule spi
        # hands it to the AAA agent (which has its own request budget)
        return "" if cache.aaa is not None else "spi: unknown SPI %d" % spi
    if c.source[0] != "ip6":
        b = cache.bindings.get(bytes(pkt.src))
        if cache.limits.block.bu_blocked(c.source, b, now):       # (ha/sourceblock.py)
            return "blocked: %s keeps sending BUs that fail (ha/sourceblock.py)" % c.source[1]
        if (b is None or b.spi != spi) and not cache.limits.verify_allowed(c.source, now):
            return "budget: too many rejected BUs from %s (or from everybody) lately" % c.source[1]
    return ""
