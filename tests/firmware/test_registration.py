"""BU bytes out / BA bytes in for the home registration (roam6.core.registration).

The BA side plays the HA with the codec and crypto directly, so each check (MAC, SPI, checksum,
timestamp echo, sequence) is exercised on its own.
"""
from roam6.core.registration import Registration, mac_coa
from roam6.crypto import mnha_auth_data
from roam6_codec import consts as C
from roam6_codec import mhopts as mo
from roam6.wire.addr import ip6_from_text
from roam6.wire.checksum import checksum6
from roam6.wire.ipv6 import build_ipv6, decode_ipv6
from roam6_codec.mh import BindingAck, BindingError, BindingRefreshRequest, decode_mh
from support import BU, BUL as S

KEY = bytes(range(16))
HOA = ip6_from_text("2001:db8:aa::100")
HA = ip6_from_text("2001:db8:aa::1")
V4COA = bytes([192, 0, 2, 100])
V6COA = ip6_from_text("2001:db8:a1::55")
NAI = b"board1@example.test"


def make(**kw):
    kw.setdefault("seq", 7)
    kw.setdefault("ntp_offset_ms", 3900000000000)
    return Registration(NAI, 4096, KEY, HOA, HA, **kw)


def one_bu(r):
    """The one BU the registration hands out, and what it says (seq, timestamp) as bul made it."""
    out = r.datagrams_to_send(0)
    assert len(out) == 1 and out[0][1] == HA
    return out[0][0], _req(r)


def ha_ba(r, req, coa, status=0, lifetime=150, key=KEY, spi=4096, ts="echo", seq=None, nat=None,
          bra=None, csum=True):
    opts = [mo.MNIdentifier(1, NAI)]
    if ts == "echo":
        ts = req.timestamp
    if ts is not None:
        opts.append(mo.ReplayProtection(ts))
    if nat is not None:
        opts.append(mo.NATDetection(True, nat))
    if bra is not None:
        opts.append(mo.BindingRefreshAdvice(bra))
    opts.append(mo.MobilityAuth(1, spi, None))
    m = BindingAck(status, 0, req.seq if seq is None else seq, lifetime, opts)
    mc = mac_coa(coa)
    mh = m.encode(src=HA, dst=HOA, mac=lambda p: mnha_auth_data(key, mc, HOA, p))
    if not csum:
        mh = bytearray(mh)
        mh[4] ^= 1
        mh = bytes(mh)
    return build_ipv6(HA, HOA, 135, mh)


def test_udp4_bu_layout_and_mac():
    r = make()
    r.move(V4COA, "udp4", 0)
    pkt, req = one_bu(r)
    p = decode_ipv6(pkt)
    assert p.src == HOA and p.dst == HA and p.nh == 135 and p.hao is None
    assert checksum6(HOA, HA, 135, p.payload) == 0
    bu = decode_mh(p.payload)
    assert bu.seq == 7 and bu.lifetime == 150
    assert bu.flags == C.BU_A | C.BU_H | C.BU_F
    kinds = [type(o).__name__ for o in bu.options if not isinstance(o, (mo.Pad1, mo.PadN))]
    assert kinds == ["MNIdentifier", "IPv4CareofAddress", "ReplayProtection", "MobilityAuth"], kinds
    assert bu.find(mo.IPv4CareofAddress).address == V4COA
    assert bu.find(mo.ReplayProtection).timestamp == req.timestamp
    auth = bu.find(mo.MobilityAuth)
    assert auth.spi == 4096 and auth.subtype == 1
    raw = bytearray(bu.raw)
    raw[4] = raw[5] = 0
    want = mnha_auth_data(KEY, b"\0" * 10 + b"\xff\xff" + V4COA, HOA, bytes(raw[:-12]))
    assert bytes(auth.auth_data) == want
    assert raw[-12:] == want


def test_udp6_mac_covers_ipv6_coa():
    r = make(timestamps=False)
    r.move(V6COA, "udp6", 0)
    pkt, req = one_bu(r)
    bu = decode_mh(decode_ipv6(pkt).payload)
    assert bu.find(mo.IPv4CareofAddress) is None and bu.find(mo.ReplayProtection) is None
    raw = bytearray(bu.raw)
    raw[4] = raw[5] = 0
    assert bytes(bu.find(mo.MobilityAuth).auth_data) == mnha_auth_data(KEY, V6COA, HOA, bytes(raw[:-12]))


def test_ip6_bu_has_home_address_option():
    r = make()
    r.move(V6COA, "ip6", 0)
    pkt, req = one_bu(r)
    p = decode_ipv6(pkt)
    assert p.src == V6COA and p.hao == HOA and p.dst == HA
    bu = decode_mh(p.payload)
    assert bu.flags == C.BU_A | C.BU_H
    assert checksum6(HOA, HA, 135, p.payload) == 0      # pseudo-header uses the HoA


def test_good_ba_registers():
    r = make()
    r.move(V4COA, "udp4", 0)
    pkt, req = one_bu(r)
    assert r.receive(ha_ba(r, req, V4COA, nat=30, bra=50), 25) == "ba"
    assert r.bound and r.refresh_at == 25 + 30000
    assert r.expiry() == 0 + 150 * 4000           # counted from the BU
    kinds = []
    while True:
        ev = r.next_event()
        if ev is None:
            break
        kinds.append(ev[0])
        if ev[0] == "ba":
            _, status, seq, _bu_ba_ms, _reg_ms = ev
            assert status == 0 and seq == req.seq
    assert kinds == ["bu", "ba", "registered"], kinds


def test_ba_with_wrong_key_spi_checksum_or_coa_is_dropped():
    r = make()
    r.move(V4COA, "udp4", 0)
    pkt, req = one_bu(r)
    assert r.receive(ha_ba(r, req, V4COA, key=bytes(16)), 5) is None
    assert r.receive(ha_ba(r, req, V4COA, spi=4097), 5) is None
    assert r.receive(ha_ba(r, req, V4COA, csum=False), 5) is None
    assert r.receive(ha_ba(r, req, bytes([198, 51, 100, 1])), 5) is None   # MAC over another CoA
    assert r.receive(ha_ba(r, req, V4COA, ts=req.timestamp + 1), 5) is None
    assert r.rejected == 5 and r.state == S.REGISTERING
    assert r.receive(ha_ba(r, req, V4COA), 6) == "ba"


def test_ba_from_other_source_is_dropped():
    r = make()
    r.move(V4COA, "udp4", 0)
    pkt, req = one_bu(r)
    good = bytearray(ha_ba(r, req, V4COA))
    good[8:24] = V6COA
    assert r.receive(bytes(good), 5) is None


def test_garbage_never_raises():
    r = make()
    r.move(V4COA, "udp4", 0)
    one_bu(r)
    junk = [b"", b"\x60" * 47, bytes(48), b"\x60" + bytes(5) + b"\x87" + bytes(60)]
    for j in junk:
        assert r.receive(j, 1) is None
    # truncations and bit flips of a real BA
    r2 = make()
    r2.move(V4COA, "udp4", 0)
    pkt, req = one_bu(r2)
    ba = ha_ba(r2, req, V4COA)
    for n in range(0, len(ba), 7):
        assert r2.receive(ba[:n], 1) is None
    for i in range(40, len(ba)):
        b = bytearray(ba)
        b[i] ^= 0x40
        assert r2.receive(bytes(b), 1) is None, i


def test_status_146_is_authenticated_then_retried_at_max_backoff():
    r = make()
    r.move(V4COA, "udp4", 0)
    pkt, req = one_bu(r)
    assert r.receive(ha_ba(r, req, V4COA, status=146, lifetime=0), 5) == "ba"
    assert r.state == S.REGISTERING and r.get_timer() == 5 + S.MAX_BINDACK_MS


def test_status_135_and_144_resend():
    r = make()
    r.move(V4COA, "udp4", 0)
    pkt, req = one_bu(r)
    assert r.receive(ha_ba(r, req, V4COA, status=135, seq=900, lifetime=0), 5) == "ba"
    pkt2, req2 = one_bu(r)
    assert req2.seq == 901
    ts = (3900001234 << 32) | (req2.timestamp & 0xFFFFFFFF)
    assert r.receive(ha_ba(r, req2, V4COA, status=144, ts=ts, lifetime=0), 9) == "ba"
    pkt3, req3 = one_bu(r)
    assert req3.timestamp >> 32 == 3900001234


def test_binding_error_and_brr_mean_lost():
    r = make()
    r.move(V4COA, "udp4", 0)
    pkt, req = one_bu(r)
    r.receive(ha_ba(r, req, V4COA), 5)
    assert r.bound
    be = BindingError(1, HOA).encode(src=HA, dst=HOA)
    at = S.MAX_BINDACK_MS                    # a BE counts once the binding is that old (bul)
    assert r.receive(build_ipv6(HA, HOA, 135, be), at) == "be"
    assert not r.bound and r.expiry() is None and len(r.datagrams_to_send(at)) == 1
    r.receive(ha_ba(r, r.sent[-1] and _req(r), V4COA), at + 1)
    assert r.bound
    brr = BindingRefreshRequest().encode(src=HA, dst=HOA)
    assert r.receive(build_ipv6(HA, HOA, 135, brr), at + 20) == "brr"
    assert r.datagrams_to_send(at + 20) == ()   # a young binding: the BRR is not answered
    assert r.receive(build_ipv6(HA, HOA, 135, brr), at + 400000) == "brr"
    assert len(r.datagrams_to_send(at + 400000)) == 1   # less than half its lifetime left


def _req(r):
    seq, _at, ts = r.sent[-1]
    return BU((seq, None, None, ts, None))     # (ha_ba reads seq and timestamp)


def test_deregistration_bu_uses_hoa_as_coa():
    r = make()
    r.home(0)
    pkt, req = one_bu(r)
    p = decode_ipv6(pkt)
    bu = decode_mh(p.payload)
    assert bu.lifetime == 0 and p.src == HOA
    raw = bytearray(bu.raw)
    raw[4] = raw[5] = 0
    assert bytes(bu.find(mo.MobilityAuth).auth_data) == mnha_auth_data(KEY, HOA, HOA, bytes(raw[:-12]))
    assert r.receive(ha_ba(r, req, HOA, lifetime=0), 5) == "ba"
    assert r.state == S.HOME


def test_lean_bu_encoder_is_byte_identical_to_the_codec():
    # wire.mh's BindingUpdate hands this shape to wire.binding; the general option layout
    # (Message.encode) must give the same bytes
    from roam6.wire.binding import encode_bu
    from roam6_codec.mh import BindingUpdate, Message
    for nai in (b"a@b", b"board1@example.test", b"x" * 40 + b"@y"):
        for v4, v4hoa in ((None, None), (V4COA, None), (None, bytes(4)), (V4COA, b"\xc6\x12\x32\x64")):
            for ts in (None, 0x0123456789ABCDEF):
                opts = [mo.MNIdentifier(1, nai)]
                if v4hoa is not None:             # RFC 5555 §3.1.1: 0.0.0.0 asks for one
                    opts.append(mo.IPv4HomeAddress(32, 0, v4hoa))
                if v4 is not None:
                    opts.append(mo.IPv4CareofAddress(v4))
                if ts is not None:
                    opts.append(mo.ReplayProtection(ts))
                opts.append(mo.MobilityAuth(1, 4096, None))
                mac = lambda p: mnha_auth_data(KEY, V6COA, HOA, p)
                bu = BindingUpdate(9, C.BU_A | C.BU_H | C.BU_F, 150, opts)
                want = Message.encode(bu, mac=mac)
                got = encode_bu(9, C.BU_A | C.BU_H | C.BU_F, 150, nai, 4096, v4, ts, mac, v4hoa)
                assert bytes(got) == want, (nai, v4, ts, v4hoa)
                assert bu.encode(mac=mac) == want and bu._home_registration() is not None
                assert bu.encode(HOA, V6COA, mac=mac) == Message.encode(bu, HOA, V6COA, mac=mac)
    # other shapes take the general path: an option the compact form does not know
    odd = BindingUpdate(1, C.BU_A, 2, [mo.MNIdentifier(1, b"a@b"), mo.BindingRefreshAdvice(3),
                                       mo.MobilityAuth(1, 4096, None)])
    assert odd._home_registration() is None and odd.encode(mac=mac) == Message.encode(odd, mac=mac)


def test_lean_ba_decoder_agrees_with_the_codec():
    from roam6.wire.binding import decode_ba
    for opts in ([mo.MNIdentifier(1, NAI), mo.ReplayProtection(77), mo.NATDetection(True, 110),
                  mo.BindingRefreshAdvice(30), mo.MobilityAuth(1, 4096, None)],
                 [mo.MobilityAuth(1, 5000, None)],
                 [mo.MNIdentifier(1, b"q@r"), mo.NATDetection(False, 0xFFFFFFFF), mo.MobilityAuth(1, 4096, None)],
                 [mo.MNIdentifier(1, NAI), mo.IPv4AddressAck(132, 32, bytes(4)), mo.NATDetection(True, 110),
                  mo.MobilityAuth(1, 4096, None)],
                 [mo.MNIdentifier(1, NAI), mo.IPv4AddressAck(0, 32, b"\xc6\x12\x32\x64"),
                  mo.MobilityAuth(1, 4096, None)]):
        mh = BindingAck(135, 0, 4242, 77, opts).encode(mac=lambda p: bytes(12))
        ref = decode_mh(mh)
        b = decode_ba(mh)
        assert b[:3] == [ref.status, ref.seq, ref.lifetime]
        rp, nat, bra, auth = (ref.find(mo.ReplayProtection), ref.find(mo.NATDetection),
                              ref.find(mo.BindingRefreshAdvice), ref.find(mo.MobilityAuth))
        assert b[4] == (rp.timestamp if rp else None)
        assert b[5] == (nat.refresh if nat else None)
        assert b[3] == (bra.interval if bra else None)
        assert b[6] == auth.spi and b[7] + 19 == len(mh)
        ack = ref.find(mo.IPv4AddressAck)          # RFC 5555 §3.2.1, read by roam6.core.v4ack
        from roam6.core.v4ack import ack_of
        assert ack_of(mh) == ((ack.status, bytes(ack.address)) if ack else None)
    assert decode_ba(b"\x3b\x01\x06\x00") is None
    assert decode_ba(bytes(16)) is None
