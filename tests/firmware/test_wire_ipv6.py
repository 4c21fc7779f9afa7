"""IPv6 header, HAO, type 2 RH, UDP, IPv4 and the checksum helpers."""
from support import raises, unhex
from roam6.wire import ipv6, checksum
from roam6_codec import udp, ipv4
from roam6.wire.errors import DecodeError
from roam6.wire.addr import ip6_from_text as A, ip4_from_text as A4

BU_PKT = unhex("6000000000383c4020010db800020000000000000000020020010db8000300000000000000000300"
               "870201020000c91020010db80001000000000000000001003b030500e269000180000069040400050006050c"
               "1f546d90e3044a169eec9b03")


def test_decode_hao_packet():
    p = ipv6.decode_ipv6(BU_PKT)
    assert p.src == A("2001:db8:2::200") and p.dst == A("2001:db8:3::300")
    assert p.hao == A("2001:db8:1::100") and p.rh2 is None
    assert p.nh == 135 and p.payload_offset == 64 and len(p.payload) == 32
    assert p.hop_limit == 64 and p.tclass == 0 and p.flow == 0
    assert ipv6.pseudo_src(p) == p.hao and ipv6.pseudo_dst(p) == p.dst
    assert p.ext == [(60, BU_PKT[40:64])]
    assert ipv6.build_ipv6(p.src, p.dst, p.nh, p.payload, ext=p.ext) == BU_PKT


def test_tclass_flow_hop_limit_round_trip():
    pkt = ipv6.build_ipv6(A("::1"), A("::2"), 59, b"", hop_limit=7, tclass=0xAB, flow=0xCDEF1)
    assert pkt[:4] == unhex("6abcdef1")
    p = ipv6.decode_ipv6(pkt)
    assert (p.tclass, p.flow, p.hop_limit, p.nh, len(p.payload)) == (0xAB, 0xCDEF1, 7, 59, 0)


def test_rh2_and_hao_together_and_trailer_ignored():
    pkt = ipv6.build_ipv6(A("::1"), A("::2"), 17, b"data", hao=A("::3"), rh2=A("::4"))
    p = ipv6.decode_ipv6(pkt + b"\0\0\0")  # Ethernet padding after the packet
    assert p.ext[0][0] == 43 and p.ext[1][0] == 60
    assert p.rh2 == A("::4") and p.hao == A("::3") and bytes(p.payload) == b"data" and p.length == len(pkt)
    assert ipv6.pseudo_dst(p) == A("::4") and ipv6.pseudo_src(p) == A("::3")


def test_pack_header_into_preallocated_buffer():
    buf = bytearray(100)
    ipv6.pack_ipv6_header(buf, 10, A("::1"), A("::2"), 17, 12, 255)
    p = ipv6.decode_ipv6(bytes(buf[10:62]))
    assert p.src == A("::1") and p.dst == A("::2") and p.nh == 17 and p.hop_limit == 255


def test_malformed_ipv6():
    for n in range(40):
        raises(DecodeError, ipv6.decode_ipv6, BU_PKT[:n])
    e = raises(DecodeError, ipv6.decode_ipv6, BU_PKT[:-1])
    assert e.offset == 4
    bad = bytearray(BU_PKT)
    bad[0] = 0x40
    assert raises(DecodeError, ipv6.decode_ipv6, bad).offset == 0
    bad = bytearray(BU_PKT)
    bad[47] = 15  # HAO length 15
    e = raises(DecodeError, ipv6.decode_ipv6, bad)
    assert "Home Address" in e.reason and e.offset == 47
    bad = bytearray(BU_PKT)
    bad[41] = 9  # Hdr Ext Len past the packet
    assert raises(DecodeError, ipv6.decode_ipv6, bad).offset == 41
    rh = ipv6.build_ipv6(A("::1"), A("::2"), 59, b"", rh2=A("::4"))
    bad = bytearray(rh + bytes(8))
    bad[5] += 8
    bad[41] = 3  # type 2 RH of 32 bytes
    e = raises(DecodeError, ipv6.decode_ipv6, bad)
    assert "type 2" in e.reason


def test_checksum_helpers():
    assert checksum.inet_sum(b"\x01\x02\x03") == 0x0102 + 0x0300
    assert checksum.finish(0x1FFFE) == 0
    data = b"\x45\x00\x00\x73\x00\x00\x40\x00\x40\x11\x00\x00\xc0\xa8\x00\x01\xc0\xa8\x00\xc7"
    assert checksum.finish(checksum.inet_sum(data)) == 0xB861  # the Wikipedia IPv4 example


def test_udp6_round_trip_and_checksum():
    src, dst = A("2001:db8:aa::100"), A("2001:db8:f3::2")
    seg = udp.build_udp(5000, 4191, b"hello", src, dst)
    u = udp.decode_udp(seg)
    assert (u.sport, u.dport, u.length, bytes(u.payload)) == (5000, 4191, 13, b"hello")
    assert udp.udp_checksum_ok(src, dst, seg)
    assert not udp.udp_checksum_ok(src, A("::1"), seg)
    assert checksum.checksum6(src, dst, 17, seg) == 0
    buf = bytearray(64)
    udp.pack_udp_header(buf, 40, 5000, 4191, 13)
    buf[48:53] = b"hello"
    udp.fill_udp_checksum(buf, 40, 13, src, dst)
    assert bytes(buf[40:53]) == seg


def test_udp4_and_ipv4():
    s4, d4 = A4("192.0.2.100"), A4("198.18.1.2")
    seg = udp.build_udp(1024, 4191, b"x" * 41, s4, d4)
    assert udp.udp_checksum_ok(s4, d4, seg)
    pkt = ipv4.build_ipv4(s4, d4, 17, seg, ttl=63, ident=0x1234)
    p = ipv4.decode_ipv4(pkt + b"\0" * 6)
    assert p.src == s4 and p.dst == d4 and p.proto == 17 and p.ttl == 63 and p.ident == 0x1234
    assert p.checksum_ok and bytes(p.payload) == seg and p.length == len(pkt)
    nock = udp.build_udp(1, 2, b"")
    assert nock[6:8] == b"\0\0" and udp.udp_checksum_ok(s4, d4, nock)
    bad = bytearray(pkt)
    bad[8] ^= 1
    assert not ipv4.decode_ipv4(bad).checksum_ok


def test_malformed_udp_ipv4():
    raises(DecodeError, udp.decode_udp, b"\0" * 7)
    assert raises(DecodeError, udp.decode_udp, unhex("0001000200200000")).offset == 4
    raises(DecodeError, ipv4.decode_ipv4, b"\x45" + b"\0" * 18)
    assert raises(DecodeError, ipv4.decode_ipv4, b"\x65" + b"\0" * 19).offset == 0
    assert raises(DecodeError, ipv4.decode_ipv4, b"\x4f" + b"\0" * 19).offset == 0
    assert raises(DecodeError, ipv4.decode_ipv4, b"\x45\0\0\x30" + b"\0" * 16).offset == 2


def test_inet_sum_lengths_and_offsets():
    import struct
    data = bytes((i * 37 + 11) & 0xFF for i in range(301))
    for n in (0, 1, 2, 3, 63, 64, 65, 127, 128, 129, 300, 301):
        part = data[:n]
        want = 0
        for i in range(0, n - 1, 2):
            want += struct.unpack_from(">H", part, i)[0]
        if n & 1:
            want += part[-1] << 8
        assert checksum.inet_sum(part) == want, n
        assert checksum.inet_sum(memoryview(part), 5) == want + 5
