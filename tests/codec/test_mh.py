"""Mobility Header codec against the vectors of docs/PROTOCOL-NOTES.md §10 (scapy cases, RR and RFC 4285)."""
from support import raises, unhex
from roam6 import crypto, rrcrypto
from roam6_codec import mh, mhopts
from roam6_codec.mh import decode_mh, checksum_ok
from roam6.wire.ipv6 import decode_ipv6, build_ipv6, pseudo_src, pseudo_dst
from roam6.wire.errors import DecodeError
from roam6.wire.addr import ip6_from_text as A

S1 = ("60000000000887402001 0db8000000000000000000000001 20010db8000000000000000000000002"
      "3b00000068fb0000")
S2 = ("600000000018874020010db800000000000000000000000120010db8000000000000000000000002"
      "3b02037788 99aabbaaaaaaaaaaaaaaaacccccccccccccccc")
S3 = ("600000000050 3c40 00000000000000000000000000000001 00000000000000000000000000000001"
      "870201020000c910 20010db8 00000000000000000000 cafe"
      "3b060500eaf20000d000002a01000310 00000000000000000000000000000000"
      "010200000612004000000000000000000000000000000000")
S4 = ("600000000010874000000000000000000000000000000001 00000000000000000000000000000001"
      "3b010600bcb90080 0000002a01020000")
S5 = ("600000000018874000000000000000000000000000000001 00000000000000000000000000000001"
      "3b020700bb590200 00010000000000000000000000000002")


def _mh(hexpkt):
    p = decode_ipv6(unhex(hexpkt))
    assert p.nh == 135
    return p, decode_mh(p.payload)


def test_scapy_1_brr():
    p, m = _mh(S1)
    assert type(m) is mh.BindingRefreshRequest
    assert m.payload_proto == 59 and m.checksum == 0x68FB and m.reserved == 0 and m.options == []
    assert checksum_ok(m.raw, pseudo_src(p), pseudo_dst(p))
    assert mh.BindingRefreshRequest().encode(p.src, p.dst) == bytes(p.payload)


def test_scapy_2_home_test_forced_checksum():
    p, m = _mh(S2)
    assert type(m) is mh.HomeTest
    assert m.mh_reserved == 0x77 and m.checksum == 0x8899 and m.nonce_index == 0xAABB
    assert m.cookie == b"\xaa" * 8 and m.token == b"\xcc" * 8
    assert not checksum_ok(m.raw, p.src, p.dst)
    assert m.encode(checksum=m.checksum) == bytes(p.payload)
    # the real checksum differs from the forced one
    assert m.encode(p.src, p.dst) != bytes(p.payload)


def test_scapy_3_bu_with_hao_checksum_uses_home_address():
    p, m = _mh(S3)
    assert p.hao == A("2001:db8::cafe") and p.src == A("::1")
    assert type(m) is mh.BindingUpdate
    assert m.checksum == 0xEAF2 and m.flags == 0xD000 and m.lifetime == 42 and m.seq == 0
    assert m.flags & mh.BU_A and m.flags & mh.BU_H and m.flags & mh.BU_K and not m.flags & mh.BU_L
    kinds = [type(o) for o in m.options]
    assert kinds == [mhopts.PadN, mhopts.AlternateCoA, mhopts.PadN, mhopts.MobileNetworkPrefix]
    assert m.options[0].data == b"" and m.options[2].data == b"\0\0"
    assert m.find(mhopts.MobileNetworkPrefix).prefix_len == 64
    assert checksum_ok(m.raw, pseudo_src(p), pseudo_dst(p))
    assert not checksum_ok(m.raw, p.src, p.dst)
    assert m.encode(pseudo_src(p), pseudo_dst(p)) == m.raw
    # built fresh, automatic padding gives the same layout
    bu = mh.BindingUpdate(0, 0xD000, 42, [mhopts.AlternateCoA(bytes(16)), mhopts.MobileNetworkPrefix(64, bytes(16))])
    assert bu.encode(A("2001:db8::cafe"), A("::1")) == m.raw
    pkt = build_ipv6(A("::1"), A("::1"), 135, m.raw, hao=A("2001:db8::cafe"))
    assert pkt == unhex(S3)


def test_scapy_4_ba():
    p, m = _mh(S4)
    assert type(m) is mh.BindingAck
    assert (m.status, m.flags, m.seq, m.lifetime, m.checksum) == (0, mh.BA_K, 0, 42, 0xBCB9)
    assert m.options == [mhopts.PadN(4)]
    assert mh.BindingAck(0, mh.BA_K, 0, 42).encode(p.src, p.dst) == m.raw


def test_scapy_5_be():
    p, m = _mh(S5)
    assert type(m) is mh.BindingError
    assert m.status == 2 and m.home_address == A("1::2") and m.checksum == 0xBB59
    assert checksum_ok(m.raw, p.src, p.dst)
    assert mh.BindingError(2, A("1::2")).encode(p.src, p.dst) == m.raw


def test_scapy_padding_cases():
    ni = unhex("3b02050000004242d00000030410000000000104 00000000")
    # scapy's NI option carries olen 16 (a scapy default, docs/PROTOCOL-NOTES.md §10.4): as bytes it is an
    # option of 16 data bytes, which our decoder must refuse as a Nonce Indices option
    e = raises(DecodeError, decode_mh, ni)
    assert e.offset == 13 and "Length 16" in e.reason
    bad = unhex("3b03050000004242d00000030104000000000510" + "00" * 12)
    e = raises(DecodeError, decode_mh, bad)
    assert e.offset == 19  # BAD option with Length 16 runs past the end
    alt = unhex("3b03050000004242d000000301000310" + "00" * 16)
    m = decode_mh(alt)
    assert [type(o) for o in m.options] == [mhopts.PadN, mhopts.AlternateCoA]
    assert m.encode() == alt
    auto = mh.BindingUpdate(0x4242, 0xD000, 3, [mhopts.AlternateCoA()]).encode()
    assert auto == unhex("3b03050000004242d000000301000310" + "00" * 16)


def test_scapy_small_options():
    m = mh.BindingUpdate(options=[mhopts.MNIdentifier(42, b"someid")])
    raw = m.encode()
    assert unhex("08072a736f6d656964") in raw
    assert decode_mh(raw).find(mhopts.MNIdentifier).identifier == b"someid"
    auth = mhopts.MobilityAuth(0xFF, 0xEEEEEEEE, b"\x42" * 16)
    raw = mh.BindingUpdate(options=[auth]).encode()
    assert unhex("0915ffeeeeeeee" + "42" * 16) in raw
    assert decode_mh(raw).find(mhopts.MobilityAuth) == auth
    rp = mhopts.ReplayProtection(72 * 31536000 << 32)
    raw = mh.BindingUpdate(options=[rp]).encode()
    # scapy's test sets olen 0x2a by hand; the timestamp bytes are what must agree
    assert unhex("0a0887567c0000000000") in raw
    assert decode_mh(raw).find(mhopts.ReplayProtection).timestamp == 72 * 31536000 << 32


KBM = unhex("80f42ffbdb0969b40a3a8c131b675650d340f1a4")
HOA, COA, CN = A("2001:db8:1::100"), A("2001:db8:2::200"), A("2001:db8:3::300")


def test_rr_bu_to_cn():
    bu = mh.BindingUpdate(1, mh.BU_A, 105, [mhopts.BindingAuthData(), mhopts.NonceIndices(5, 6)])
    seen = []

    def mac(prefix):
        seen.append(prefix)
        return rrcrypto.rr_authenticator(KBM, COA, CN, prefix)

    raw = bu.encode(HOA, CN, mac)
    assert seen == [unhex("3b0305000000000180000069040400050006050c")]
    assert raw == unhex("3b030500e269000180000069040400050006050c1f546d90e3044a169eec9b03")
    pkt = build_ipv6(COA, CN, 135, raw, hao=HOA)
    assert pkt == unhex("6000000000383c4020010db800020000000000000000020020010db8000300000000000000000300"
                        "870201020000c91020010db80001000000000000000001003b030500e269000180000069040400050006050c"
                        "1f546d90e3044a169eec9b03")
    p = decode_ipv6(pkt)
    m = decode_mh(p.payload)
    assert checksum_ok(m.raw, pseudo_src(p), pseudo_dst(p))
    assert m.find(mhopts.BindingAuthData).authenticator == unhex("1f546d90e3044a169eec9b03")
    assert m.find(mhopts.NonceIndices).careof == 6


def test_rr_ba_from_cn_with_rh2():
    ba = mh.BindingAck(0, 0, 1, 105, [mhopts.BindingAuthData()])
    raw = ba.encode(CN, HOA, lambda pre: rrcrypto.rr_authenticator(KBM, COA, CN, pre))
    assert raw == unhex("3b0306005761000000010069010400000000050c8448ed2faf4ad55158c5b229")
    pkt = build_ipv6(CN, COA, 135, raw, rh2=HOA)
    assert pkt == unhex("6000000000382b4020010db800030000000000000000030020010db8000200000000000000000200"
                        "870202010000000020010db80001000000000000000001003b0306005761000000010069010400000000050c"
                        "8448ed2faf4ad55158c5b229")
    p = decode_ipv6(pkt)
    assert p.rh2 == HOA and pseudo_dst(p) == HOA
    assert checksum_ok(decode_mh(p.payload).raw, pseudo_src(p), pseudo_dst(p))


def test_rr_deregistration():
    ht = unhex("c71a754160cffb9a")
    k = rrcrypto.kbm(ht)
    bu = mh.BindingUpdate(2, mh.BU_A, 0, [mhopts.NonceIndices(5, 0), mhopts.BindingAuthData()])
    raw = bu.encode(HOA, CN, lambda pre: rrcrypto.rr_authenticator(k, HOA, CN, pre))
    assert raw == unhex("3b030500d5ad000280000000040400050000050cd4632e23d0ecc43c6ff9f96f")


def test_rfc4285_mnha_bu():
    ha = A("2001:db8:1::1")
    bu = mh.BindingUpdate(7, mh.BU_A | mh.BU_H, 150,
                          [mhopts.MNIdentifier(1, b"mn@example.com"), mhopts.MobilityAuth(1, 256)])
    seen = []

    def mac(pre):
        seen.append(pre)
        return crypto.mnha_auth_data(b"\x0b" * 16, COA, HOA, pre)

    raw = bu.encode(HOA, ha, mac)
    assert seen == [unhex("3b05050000000007c0000096080f016d6e406578616d706c652e636f6d09110100000100")]
    assert raw == unhex("3b050500098e0007c0000096080f016d6e406578616d706c652e636f6d09110100000100"
                        "d83b8d94266ac94371f6da76")
    m = decode_mh(raw)
    assert m.find(mhopts.MobilityAuth).auth_data == unhex("d83b8d94266ac94371f6da76")
    assert m.find(mhopts.MobilityAuth).spi == 256 and m.encode(HOA, ha) == raw


def test_all_types_round_trip():
    opts = [mhopts.BindingRefreshAdvice(10), mhopts.RestartCounter(9), mhopts.VendorSpecific(32473, 1, b"xy")]
    msgs = [
        mh.BindingRefreshRequest(),
        mh.HomeTestInit(b"12345678"), mh.CareofTestInit(b"abcdefgh"),
        mh.HomeTest(7, b"12345678", b"ABCDEFGH"), mh.CareofTest(8, b"abcdefgh", b"QWERTYUI"),
        mh.BindingUpdate(65535, mh.BU_A | mh.BU_F | mh.BU_B, 0xFFFF,
                         [mhopts.IPv4HomeAddress(32, 1, b"\x0a\0\0\x01"), mhopts.IPv4CareofAddress(b"\xc0\0\x02\x64"),
                          mhopts.ReplayProtection(0x0123456789ABCDEF), mhopts.DNSUpdate(0, 0x80, b"\x02mn\x00")]),
        mh.BindingAck(146, mh.BA_K | mh.BA_T, 3, 0,
                      [mhopts.IPv4AddressAck(128, 24, b"\x0a\0\0\0"), mhopts.NATDetection(True, 110),
                       mhopts.ExperimentalOption(b"e"), mhopts.UnknownOption(200, b"\x01\x02\x03")]),
        mh.BindingError(1, HOA),
        mh.ExperimentalMH(b"hello"),
        mh.HomeAgentSwitch([HOA, CN], opts[:1]),
        mh.Heartbeat(mh.HB_R, 0xFFFFFFFF, opts[1:2]),
        mh.BindingRevocation(1, 5, 77, mh.BR_P, opts[2:]),
        mh.UnknownMH(99, b"\x01\x02"),
    ]
    for m in msgs:
        raw = m.encode(HOA, CN)
        assert len(raw) % 8 == 0 and raw[1] == len(raw) // 8 - 1
        d = decode_mh(raw)
        assert checksum_ok(raw, HOA, CN)
        assert d.encode(HOA, CN) == raw, m
        if m.has_options:
            assert [o for o in d.options if not isinstance(o, (mhopts.Pad1, mhopts.PadN))] == m.options, m
            d.options = m.options
        assert type(d) is type(m)
        if isinstance(m, mh.ExperimentalMH):
            assert d.data[:len(m.data)] == m.data
        else:
            d.auto_pad = True
            assert d == m, (d, m)


def test_alignment_rules_hold():
    all_opts = [mhopts.MNIdentifier(1, b"a@b"), mhopts.NonceIndices(1, 2), mhopts.AlternateCoA(COA),
                mhopts.MobileNetworkPrefix(48, HOA), mhopts.ReplayProtection(5), mhopts.VendorSpecific(1, 2, b"z"),
                mhopts.IPv4CareofAddress(b"\1\2\3\4"), mhopts.BindingRefreshAdvice(3), mhopts.MobilityAuth(1, 300,
                                                                                                           bytes(12))]
    raw = mh.BindingUpdate(1, 0, 2, all_opts).encode()
    m = decode_mh(raw)
    off = 12
    for o in m.options:
        if o.al and not isinstance(o, mhopts.MobilityAuth):
            assert off % o.al[0] == o.al[1], (o, off)
        off += 1 if isinstance(o, mhopts.Pad1) else 2 + len(o.body())
    assert isinstance(m.options[-1], mhopts.MobilityAuth) and off == len(raw)


def test_bad_kept_last_no_padding_after():
    bu = mh.BindingUpdate(1, 0, 1, [mhopts.BindingAuthData(bytes(12)), mhopts.MNIdentifier(1, b"x")])
    m = decode_mh(bu.encode())
    assert isinstance(m.options[-1], mhopts.BindingAuthData)


def test_mac_required_for_missing_authenticator():
    raises(ValueError, mh.BindingUpdate(options=[mhopts.BindingAuthData()]).encode)


def test_malformed_mh_raise_decode_error():
    good = unhex("3b030500e269000180000069040400050006050c1f546d90e3044a169eec9b03")
    for n in range(len(good)):
        e = raises(DecodeError, decode_mh, good[:n])
        assert e.offset <= len(good)
        assert str(e) == "offset %d: %s" % (e.offset, e.reason)
    raises(DecodeError, decode_mh, good + b"\0" * 8)  # trailing bytes
    bad = bytearray(good)
    bad[1] = 2  # Header Len shorter than the options: BAD runs past the end
    e = raises(DecodeError, decode_mh, bad[:24])
    assert e.offset == 19
    bad = bytearray(good)
    bad[13] = 5  # Nonce Indices with length 5
    e = raises(DecodeError, decode_mh, bad)
    assert e.offset == 13 and "NonceIndices" in e.reason
    # fixed fields that do not fit in Header Len
    e = raises(DecodeError, decode_mh, unhex("3b00030000000000"))
    assert "HomeTest" in e.reason and e.offset == 1
    e = raises(DecodeError, decode_mh, unhex("3b010c0000000500" + "00" * 8))
    assert "Addresses" in e.reason


def test_decode_accepts_memoryview_and_bytearray():
    raw = unhex("3b010600bcb900800000002a01020000")
    assert decode_mh(memoryview(raw)).lifetime == 42
    assert decode_mh(bytearray(raw)).lifetime == 42
