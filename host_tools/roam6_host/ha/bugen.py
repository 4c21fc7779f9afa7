"""Binding Updates as a roam6 MN sends them (CONTRACTS.md §11), built with the firmware codec.

For `roam6 bench ha` and the HA's tests: they feed the HA the exact bytes an MN would, without
needing a MicroPython MN. Not used by the HA itself.
"""
from roam6 import crypto
from roam6_codec import consts as C
from roam6_codec import mhopts as mo
from roam6.wire.ipv6 import build_ipv6
from roam6_codec.mh import BindingUpdate

NTP_EPOCH = 2208988800
V4MAPPED = b"\0" * 10 + b"\xff\xff"


def ntp_timestamp(wall_ms, fraction=0):
    """An RFC 4285 timestamp for Unix time `wall_ms` (ms): NTP seconds, then `fraction`."""
    return ((wall_ms // 1000 + NTP_EPOCH) << 32) | (fraction & 0xFFFFFFFF)


def build_bu(key, spi, nai, hoa, ha, seq, lifetime_units, transport="udp4", coa=None, v4coa=None,
             timestamp=None, flags=None, extra_options=(), mac_key=None, alt_coa=None, at_home=False):
    """The IPv6 packet carrying a BU.

    udp4: inner src = HoA, IPv4 CoA option `v4coa` (4 bytes), MAC over ::ffff:v4coa.
    udp6: inner src = HoA, MAC over `coa` (the outer IPv6 source the HA will see).
    ip6:  src = `coa`, Home Address option = HoA, optional Alternate CoA; MAC over alt_coa or coa.
          at_home: src = HoA, no Home Address option, MAC over the HoA (deregistration from home).
    """
    if flags is None:
        flags = C.BU_A | C.BU_H | (C.BU_F if transport != "ip6" else 0)
    opts = [mo.MNIdentifier(C.MNID_NAI, nai)]
    if transport == "udp4":
        opts.append(mo.IPv4CareofAddress(v4coa))
        mac_coa = V4MAPPED + bytes(v4coa)
    elif transport == "udp6":
        mac_coa = bytes(coa)
    else:
        if alt_coa is not None:
            opts.append(mo.AlternateCoA(alt_coa))
        mac_coa = bytes(hoa if at_home else alt_coa if alt_coa is not None else coa)
    opts.extend(extra_options)
    if timestamp is not None:
        opts.append(mo.ReplayProtection(timestamp))
    opts.append(mo.MobilityAuth(C.AUTH_MN_HA, spi, None))
    k = key if mac_key is None else mac_key
    msg = BindingUpdate(seq, flags, lifetime_units, opts)
    if transport == "ip6":
        mh = msg.encode(src=hoa, dst=ha, mac=lambda p: crypto.mnha_auth_data(k, mac_coa, hoa, p))
        if at_home:
            return build_ipv6(hoa, ha, C.NH_MH, mh)
        return build_ipv6(coa, ha, C.NH_MH, mh, hao=hoa)
    mh = msg.encode(src=hoa, dst=ha, mac=lambda p: crypto.mnha_auth_data(k, mac_coa, hoa, p))
    return build_ipv6(hoa, ha, C.NH_MH, mh)
