"""scapy as an independent oracle, both ways: the same message built by scapy and by roam6 gives
the same bytes; roam6 decodes scapy's packets to the field values scapy dissects; scapy dissects
roam6's packets to the values roam6 put in. Mind docs/PROTOCOL-NOTES.md §10.4: scapy's Nonce Indices and
Binding Authorization Data default to wrong lengths (set olen), and scapy only uses the Home
Address option for the checksum when it is the only option in the Destination Options header."""
import pytest
from scapy.all import raw
from scapy.layers.inet6 import (IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting, HAO, MIP6MH_BRR, MIP6MH_HoTI,
                                MIP6MH_CoTI, MIP6MH_HoT, MIP6MH_CoT, MIP6MH_BU, MIP6MH_BA, MIP6MH_BE,
                                MIP6OptAltCoA, MIP6OptNonceIndices, MIP6OptBindingAuthData, MIP6OptMobNetPrefix,
                                MIP6OptMNID, MIP6OptMsgAuth, MIP6OptReplayProtection, MIP6OptBRAdvice,
                                MIP6OptLLAddr, ICMPv6HAADRequest, ICMPv6HAADReply, ICMPv6MPSol, ICMPv6MPAdv,
                                ICMPv6ND_RA, ICMPv6NDOptPrefixInfo, ICMPv6NDOptAdvInterval, ICMPv6NDOptHAInfo)

from roam6_codec import mh, mhopts, icmp6, nd
from roam6.wire.addr import ip6_from_text as A, ip6_to_text
from roam6.wire.ipv6 import decode_ipv6, build_ipv6, pseudo_src, pseudo_dst

HOA, COA, HA, CN = "2001:db8:aa::100", "2001:db8:a1::200", "2001:db8:aa::1", "2001:db8:f3::2"
AUTH = bytes(range(12))


def _pairs():
    """(name, scapy packet, roam6 bytes) for the same message."""
    p = []

    def ours(src, dst, nh, msg, hao=None, rh2=None):
        s, d = A(src), A(dst)
        ps = A(hao) if hao else s
        pd = A(rh2) if rh2 else d
        body = msg.encode(ps, pd)
        return build_ipv6(s, d, nh, body, hao=A(hao) if hao else None, rh2=A(rh2) if rh2 else None)

    p.append(("brr", IPv6(src=HA, dst=COA) / MIP6MH_BRR(),
              ours(HA, COA, 135, mh.BindingRefreshRequest())))
    p.append(("hoti", IPv6(src=HOA, dst=CN) / MIP6MH_HoTI(cookie=b"cookie01"),
              ours(HOA, CN, 135, mh.HomeTestInit(b"cookie01"))))
    p.append(("coti", IPv6(src=COA, dst=CN) / MIP6MH_CoTI(cookie=b"cookie02"),
              ours(COA, CN, 135, mh.CareofTestInit(b"cookie02"))))
    p.append(("hot", IPv6(src=CN, dst=HOA) / MIP6MH_HoT(index=0x1234, cookie=b"cookie01", token=b"TOKEN_01"),
              ours(CN, HOA, 135, mh.HomeTest(0x1234, b"cookie01", b"TOKEN_01"))))
    p.append(("cot", IPv6(src=CN, dst=COA) / MIP6MH_CoT(index=0x4321, cookie=b"cookie02", token=b"TOKEN_02"),
              ours(CN, COA, 135, mh.CareofTest(0x4321, b"cookie02", b"TOKEN_02"))))
    p.append(("bu_home", IPv6(src=COA, dst=HA) / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)]) /
              MIP6MH_BU(seq=7, flags="KHA", mhtime=100, options=[MIP6OptAltCoA(acoa=COA)]),
              ours(COA, HA, 135, mh.BindingUpdate(7, mh.BU_A | mh.BU_H | mh.BU_K, 100,
                                                  [mhopts.AlternateCoA(A(COA))]), hao=HOA)))
    p.append(("bu_cn", IPv6(src=COA, dst=CN) / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)]) /
              MIP6MH_BU(seq=8, flags="A", mhtime=105,
                        options=[MIP6OptNonceIndices(olen=4, hni=5, coni=6),
                                 MIP6OptBindingAuthData(olen=12, authenticator=int.from_bytes(AUTH, "big"))]),
              ours(COA, CN, 135, mh.BindingUpdate(8, mh.BU_A, 105, [mhopts.NonceIndices(5, 6),
                                                                  mhopts.BindingAuthData(AUTH)]), hao=HOA)))
    p.append(("bu_4285", IPv6(src=COA, dst=HA) / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)]) /
              MIP6MH_BU(seq=9, flags="HA", mhtime=150, options=[MIP6OptMNID(subtype=1, id=b"mn@example.com"),
                                                                MIP6OptReplayProtection(timestamp=0xE5A1B2C300000001),
                                                                MIP6OptMsgAuth(subtype=1, mspi=256, authdata=AUTH)]),
              ours(COA, HA, 135, mh.BindingUpdate(9, mh.BU_A | mh.BU_H, 150,
                                                  [mhopts.MNIdentifier(1, b"mn@example.com"),
                                                   mhopts.ReplayProtection(0xE5A1B2C300000001),
                                                   mhopts.MobilityAuth(1, 256, AUTH)]), hao=HOA)))
    p.append(("bu_nemo", IPv6(src=COA, dst=HA) / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)]) /
              MIP6MH_BU(seq=10, flags="KHA", mhtime=42, options=[MIP6OptMobNetPrefix(plen=48, prefix="2001:db8:77::")]),
              ours(COA, HA, 135, mh.BindingUpdate(10, mh.BU_A | mh.BU_H | mh.BU_K, 42,
                                                  [mhopts.MobileNetworkPrefix(48, A("2001:db8:77::"))]), hao=HOA)))
    p.append(("ba_home", IPv6(src=HA, dst=COA) / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA]) /
              MIP6MH_BA(status=0, flags="K", seq=7, mhtime=100, options=[MIP6OptBRAdvice(rinter=90)]),
              ours(HA, COA, 135, mh.BindingAck(0, mh.BA_K, 7, 100, [mhopts.BindingRefreshAdvice(90)]), rh2=HOA)))
    p.append(("ba_fail", IPv6(src=HA, dst=COA) / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA]) /
              MIP6MH_BA(status=146, flags=0, seq=9, mhtime=0, options=[MIP6OptMNID(id=b"mn@example.com"),
                                                                       MIP6OptMsgAuth(mspi=256, authdata=AUTH)]),
              ours(HA, COA, 135, mh.BindingAck(146, 0, 9, 0, [mhopts.MNIdentifier(1, b"mn@example.com"),
                                                              mhopts.MobilityAuth(1, 256, AUTH)]), rh2=HOA)))
    p.append(("be", IPv6(src=CN, dst=COA) / MIP6MH_BE(status=1, ha=HOA),
              ours(CN, COA, 135, mh.BindingError(1, A(HOA)))))
    p.append(("haad_req", IPv6(src=COA, dst="2001:db8:aa::fdff:ffff:ffff:fffe") / ICMPv6HAADRequest(id=5, R=0),
              ours(COA, "2001:db8:aa::fdff:ffff:ffff:fffe", 58, icmp6.DHAADRequest(5))))
    p.append(("haad_rep", IPv6(src=HA, dst=COA) / ICMPv6HAADReply(id=5, R=0, addresses=[HA, "2001:db8:aa::2"]),
              ours(HA, COA, 58, icmp6.DHAADReply(5, [A(HA), A("2001:db8:aa::2")]))))
    p.append(("mps", IPv6(src=COA, dst=HA) / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)]) / ICMPv6MPSol(id=9),
              ours(COA, HA, 58, icmp6.MobilePrefixSolicitation(9), hao=HOA)))
    pio = dict(prefixlen=64, L=1, A=1, R=1, validlifetime=86400, preferredlifetime=14400, prefix=HA)
    p.append(("mpa", IPv6(src=HA, dst=COA) / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA]) /
              ICMPv6MPAdv(id=9, flags=0) / ICMPv6NDOptPrefixInfo(**pio),
              ours(HA, COA, 58,
                   icmp6.MobilePrefixAdvertisement(9, 0, [nd.PrefixInformation(64, 0xE0, 86400, 14400, A(HA))]),
                   rh2=HOA)))
    p.append(("ra", IPv6(src="fe80::1", dst="ff02::1", hlim=255) /
              ICMPv6ND_RA(chlim=64, H=1, prf=0, routerlifetime=1800) / ICMPv6NDOptPrefixInfo(**pio) /
              ICMPv6NDOptAdvInterval(advint=3000) / ICMPv6NDOptHAInfo(pref=5, lifetime=1800),
              build_ipv6(A("fe80::1"), A("ff02::1"), 58,
                         nd.RouterAdvertisement(64, nd.RA_H, 1800, 0, 0, [
                             nd.PrefixInformation(64, 0xE0, 86400, 14400, A(HA)), nd.AdvInterval(3000),
                             nd.HAInformation(5, 1800)]).encode(A("fe80::1"), A("ff02::1")), hop_limit=255)))
    return p


PAIRS = _pairs()


@pytest.mark.parametrize("name,spkt,ours", PAIRS, ids=[x[0] for x in PAIRS])
def test_same_bytes_as_scapy(name, spkt, ours):
    assert raw(spkt) == ours, "%s\nscapy %s\nroam6 %s" % (name, raw(spkt).hex(), ours.hex())


def _check_mh(m, s):
    """roam6 message m against scapy layer s: every field."""
    assert m.payload_proto == s.nh and m.mh_type == s.mhtype and m.checksum == s.cksum
    assert m.raw[1] == s.len
    if isinstance(m, (mh.HomeTestInit,)):
        assert m.cookie == s.cookie
    if isinstance(m, mh.HomeTest):
        assert (m.nonce_index, m.cookie, m.token) == (s.index, s.cookie, s.token)
    if isinstance(m, mh.BindingUpdate):
        assert (m.seq, m.lifetime) == (s.seq, s.mhtime)
        assert m.flags >> 9 == int(s.flags) and m.flags & 0x1FF == s.reserved
    if isinstance(m, mh.BindingAck):
        assert (m.status, m.seq, m.lifetime) == (s.status, s.seq, s.mhtime)
        assert m.flags >> 5 == int(s.flags) and m.flags & 0x1F == s.res2
    if isinstance(m, mh.BindingError):
        assert (m.status, ip6_to_text(m.home_address)) == (s.status, s.ha)
    opts = [o for o in m.options if not isinstance(o, (mhopts.Pad1, mhopts.PadN))]
    sopts = [o for o in s.options if o.otype not in (0, 1)]
    assert len(opts) == len(sopts)
    for o, so in zip(opts, sopts):
        assert o.otype == so.otype
        if isinstance(o, mhopts.AlternateCoA):
            assert ip6_to_text(o.address) == so.acoa
        elif isinstance(o, mhopts.NonceIndices):
            assert (o.home, o.careof) == (so.hni, so.coni)
        elif isinstance(o, mhopts.BindingAuthData):
            assert int.from_bytes(o.authenticator, "big") == so.authenticator
        elif isinstance(o, mhopts.MobileNetworkPrefix):
            assert (o.prefix_len, ip6_to_text(o.prefix)) == (so.plen, so.prefix)
        elif isinstance(o, mhopts.MNIdentifier):
            assert (o.subtype, o.identifier) == (so.subtype, so.id)
        elif isinstance(o, mhopts.MobilityAuth):
            assert (o.subtype, o.spi, o.auth_data) == (so.subtype, so.mspi, so.authdata)
        elif isinstance(o, mhopts.ReplayProtection):
            assert o.timestamp == so.timestamp
        elif isinstance(o, mhopts.BindingRefreshAdvice):
            assert o.interval == so.rinter
        else:
            raise AssertionError(o)


def _check_icmp(m, s):
    assert (m.icmp_type, m.code, m.checksum) == (s.type, s.code, s.cksum)
    if isinstance(m, (icmp6.DHAADRequest, icmp6.DHAADReply)):
        assert m.ident == s.id and m.reserved == (s.R << 15) | s.res
    if isinstance(m, icmp6.DHAADReply):
        assert [ip6_to_text(a) for a in m.addresses] == list(s.addresses)
    if isinstance(m, icmp6.MobilePrefixSolicitation):
        assert m.ident == s.id
    if isinstance(m, icmp6.MobilePrefixAdvertisement):
        assert m.ident == s.id and m.flags == (s.flags << 14) | s.res
    if isinstance(m, nd.RouterAdvertisement):
        assert m.cur_hop_limit == s.chlim and bool(m.flags & nd.RA_H) == bool(s.H)
        assert (m.router_lifetime, m.reachable_time, m.retrans_timer) == (s.routerlifetime, s.reachabletime,
                                                                          s.retranstimer)
    pio = m.find(nd.PrefixInformation)
    if pio:
        sp = s[ICMPv6NDOptPrefixInfo]
        assert (pio.prefix_len, ip6_to_text(pio.prefix), pio.valid_lifetime, pio.preferred_lifetime) == \
            (sp.prefixlen, sp.prefix, sp.validlifetime, sp.preferredlifetime)
        assert bool(pio.flags & nd.PIO_R) == bool(sp.R) and bool(pio.flags & nd.PIO_L) == bool(sp.L)
    ai = m.find(nd.AdvInterval)
    if ai:
        assert ai.interval == s[ICMPv6NDOptAdvInterval].advint
    hi = m.find(nd.HAInformation)
    if hi:
        assert (hi.preference, hi.lifetime) == (s[ICMPv6NDOptHAInfo].pref, s[ICMPv6NDOptHAInfo].lifetime)


def _layer(spkt):
    for cls in (MIP6MH_BRR, MIP6MH_HoTI, MIP6MH_CoTI, MIP6MH_HoT, MIP6MH_CoT, MIP6MH_BU, MIP6MH_BA, MIP6MH_BE,
                ICMPv6HAADRequest, ICMPv6HAADReply, ICMPv6MPSol, ICMPv6MPAdv, ICMPv6ND_RA):
        if cls in spkt:
            return spkt[cls]
    raise AssertionError(spkt.summary())


def _decode(b):
    p = decode_ipv6(b)
    m = mh.decode_mh(p.payload) if p.nh == 135 else icmp6.decode_icmp6(p.payload)
    return p, m


@pytest.mark.parametrize("name,spkt,ours", PAIRS, ids=[x[0] for x in PAIRS])
def test_roam6_decodes_scapy_packets(name, spkt, ours):
    b = raw(spkt)
    p, m = _decode(b)
    s = _layer(IPv6(b))
    (_check_mh if p.nh == 135 else _check_icmp)(m, s)
    ok = (mh.checksum_ok if p.nh == 135 else icmp6.checksum_ok)(m.raw, pseudo_src(p), pseudo_dst(p))
    assert ok  # scapy computed these with the RFC pseudo-header (HAO alone in its header)
    assert build_ipv6(p.src, p.dst, p.nh, m.encode(pseudo_src(p), pseudo_dst(p)), hop_limit=p.hop_limit, ext=p.ext) == b


@pytest.mark.parametrize("name,spkt,ours", PAIRS, ids=[x[0] for x in PAIRS])
def test_scapy_dissects_roam6_packets(name, spkt, ours):
    p, m = _decode(ours)
    s = IPv6(ours)
    assert s.src == ip6_to_text(p.src) and s.dst == ip6_to_text(p.dst)
    if p.hao:
        assert s[HAO].hoa == ip6_to_text(p.hao)
    if p.rh2:
        assert s[IPv6ExtHdrRouting].type == 2 and s[IPv6ExtHdrRouting].addresses == [ip6_to_text(p.rh2)]
    (_check_mh if p.nh == 135 else _check_icmp)(m, _layer(s))


def test_scapy_quirk_dissected_hao_checksum():
    """§10.4: scapy recomputing the checksum of a dissected [PadN, HAO] packet uses the IPv6 source
    (0xe168 for the §10.3 BU); roam6 keeps the RFC value 0xe269 and verifies it with the HoA."""
    b = bytes.fromhex("6000000000383c4020010db800020000000000000000020020010db8000300000000000000000300"
                      "870201020000c91020010db80001000000000000000001003b030500e269000180000069040400050006050c"
                      "1f546d90e3044a169eec9b03")
    s = IPv6(b)
    del s[MIP6MH_BU].cksum
    assert IPv6(raw(s))[MIP6MH_BU].cksum == 0xE168
    p, m = _decode(b)
    assert m.checksum == 0xE269 and mh.checksum_ok(m.raw, pseudo_src(p), pseudo_dst(p))


def test_scapy_unknown_option_kept():
    b = raw(IPv6(src=COA, dst=CN) / MIP6MH_BU(seq=1, flags="A", options=[MIP6OptLLAddr(lla="02:00:00:00:00:01")]))
    p, m = _decode(b)
    u = m.find(mhopts.UnknownOption)
    # scapy's LLAddr says olen 7 though it writes 8 bytes; we take its Length at its word
    assert u.otype == 7 and len(u.data) == 7 and u.data[0] == 2
    assert m.encode(p.src, p.dst) == bytes(p.payload)


def test_mn_vendor_options_parsed_by_scapy():
    """The MN's BU with RFC 5094/5096 options (roam6.core.vendor): scapy (which knows neither type
    by name) reads the same option boundaries, types and bytes, and the same checksum."""
    from scapy.layers.inet6 import MIP6OptUnknown
    from roam6.core import vendor
    from roam6.core.registration import Registration
    r = Registration(b"mn@example.com", 4096, bytes(16), A(HOA), A(HA))
    try:
        vendor.attach(r, 32473, 1, b"fw 1.4")
        vendor.experimental(r, b"\xab\xcd")
        r.move(bytes([192, 0, 2, 7]), "udp4", 0)
        (pkt, _ha), = r.datagrams_to_send(0)
    finally:
        vendor.clear(r)
    s = IPv6(bytes(pkt))
    bu = s[MIP6MH_BU]
    unknown = [(o.otype, bytes(o.odata)) for o in bu.options if isinstance(o, MIP6OptUnknown)]
    assert (19, (32473).to_bytes(4, "big") + b"\x01fw 1.4") in unknown, unknown
    assert (18, b"\xab\xcd") in unknown, unknown
    ours = mh.decode_mh(decode_ipv6(pkt).payload)
    assert bu.cksum == ours.checksum and raw(s) == bytes(pkt)
