"""ICMPv6: echo, DHAAD, MPS/MPA, RA with the Mobile IPv6 flags and options."""
from support import raises, unhex
from roam6_codec import icmp6, nd
from roam6_codec.icmp6 import decode_icmp6, checksum_ok
from roam6.wire.errors import DecodeError
from roam6.wire.addr import ip6_from_text as A

SRC, DST = A("2001:db8:aa::1"), A("2001:db8:a1::200")


def test_mps_scapy_vector():
    raw = unhex("9200280800080000")  # docs/PROTOCOL-NOTES.md §10.2, checksum forced to 0x2808
    m = decode_icmp6(raw)
    assert type(m) is icmp6.MobilePrefixSolicitation and m.ident == 8 and m.checksum == 0x2808
    assert m.options == [] and m.encode(checksum=m.checksum) == raw


def test_echo_round_trip():
    raw = icmp6.EchoRequest(0x1234, 7, b"ping").encode(SRC, DST)
    assert raw[:2] == b"\x80\x00" and raw[4:] == unhex("12340007") + b"ping"
    m = decode_icmp6(raw)
    assert (type(m), m.ident, m.seq, m.data) == (icmp6.EchoRequest, 0x1234, 7, b"ping")
    assert checksum_ok(raw, SRC, DST) and not checksum_ok(raw, DST, DST)
    assert decode_icmp6(icmp6.EchoReply(1, 2, b"").encode(SRC, DST)).icmp_type == 129


def test_dhaad():
    raw = icmp6.DHAADRequest(77).encode(SRC, DST)
    assert raw[4:] == unhex("004d0000")
    rep = icmp6.DHAADReply(77, [A("2001:db8:aa::1"), A("2001:db8:aa::2")])
    m = decode_icmp6(rep.encode(SRC, DST))
    assert m.addresses == [A("2001:db8:aa::1"), A("2001:db8:aa::2")] and m.ident == 77
    e = raises(DecodeError, decode_icmp6, rep.encode()[:-1])
    assert "multiple of 16" in e.reason and e.offset == 8


def test_mpa_with_prefix_and_ra_flags():
    pio = nd.PrefixInformation(64, nd.PIO_L | nd.PIO_A | nd.PIO_R, 3600, 1800, A("2001:db8:aa::1"))
    mpa = icmp6.MobilePrefixAdvertisement(8, 0, [pio])
    raw = mpa.encode(SRC, DST)
    assert len(raw) == 8 + 32 and raw[8:10] == b"\x03\x04"
    m = decode_icmp6(raw)
    assert m == mpa and m.options[0].flags & nd.PIO_R
    ra = nd.RouterAdvertisement(64, nd.RA_H, 1800, 0, 0,
                                [nd.LinkLayerAddress(1, unhex("020000000001")), pio,
                                 nd.AdvInterval(3000), nd.HAInformation(10, 1800), nd.MTUOption(1400),
                                 nd.UnknownNDOption(99, bytes(6))])
    raw = ra.encode(SRC, DST)
    m = decode_icmp6(raw)
    assert m == ra and m.flags & nd.RA_H
    assert m.find(nd.HAInformation).preference == 10 and m.find(nd.AdvInterval).interval == 3000
    assert m.encode(SRC, DST) == raw and checksum_ok(raw, SRC, DST)


def test_malformed_icmp6():
    for bad in [b"", b"\x80\0\0", unhex("860000004000070800000000000000"),
                unhex("9300000000080000 0300").replace(b" ", b""), unhex("93000000000800000304")]:
        raises(DecodeError, decode_icmp6, bad)
    e = raises(DecodeError, decode_icmp6, unhex("930000000008000003000000000000000000"))
    assert "Length 0" in e.reason and e.offset == 9
    e = raises(DecodeError, decode_icmp6, unhex("93000000000800000301") + bytes(6))
    assert "PrefixInformation" in e.reason
