"""Byte layouts of the messages and options scapy lacks (RFC 5142, 5847, 5846, 5096, 5094, 5555,
5026), written out by hand from docs/PROTOCOL-NOTES.md §4-6."""
from support import unhex
from roam6_codec import mh, mhopts
from roam6_codec.consts import BR_INDICATION, DNS_R
from roam6_codec.mh import decode_mh
from roam6.wire.addr import ip6_from_text as A


def _enc(m):
    raw = m.encode()
    assert decode_mh(raw).encode() == raw
    return raw


def test_experimental_mh_rfc5096():
    assert _enc(mh.ExperimentalMH()) == unhex("3b000b0000000000")  # 2 bytes of padding, Header Len 0
    raw = _enc(mh.ExperimentalMH(b"\x01\x02\x03"))
    assert raw == unhex("3b010b0000000102 0300000000000000")
    assert decode_mh(raw).data == unhex("0102030000000000 0000")  # data keeps the padding


def test_home_agent_switch_rfc5142():
    ha1, ha2 = A("2001:db8:aa::1"), A("2001:db8:aa::2")
    raw = _enc(mh.HomeAgentSwitch([ha1, ha2]))
    assert raw[:8] == unhex("3b040c0000000200") and raw[8:24] == ha1 and raw[24:40] == ha2
    assert len(raw) == 40
    raw = _enc(mh.HomeAgentSwitch([], [mhopts.BindingRefreshAdvice(10)]))
    assert raw == unhex("3b010c0000000000 0202000a 01020000")  # BRA at 8 (2n), PadN(4) to 16
    assert decode_mh(raw).addresses == []


def test_heartbeat_rfc5847():
    raw = _enc(mh.Heartbeat(mh.HB_R, 0x01020304))
    assert raw == unhex("3b010d0000000001 0102030401020000")  # R=1 response, 4 bytes padding
    raw = _enc(mh.Heartbeat(mh.HB_U | mh.HB_R, 7, [mhopts.RestartCounter(0xAABBCCDD)]))
    # Restart Counter at 4n+2: fixed part ends at 12, PadN(2) then the option at 14
    assert raw[7] == 3 and raw[12:20] == unhex("01001c04aabbccdd") and raw[1] == 2


def test_binding_revocation_rfc5846():
    raw = _enc(mh.BindingRevocation(BR_INDICATION, 1, 0x1234, mh.BR_P | mh.BR_G))
    assert raw == unhex("3b01100000000101 1234a00001020000")  # P=0x80, G=0x20 in the byte at 10
    d = decode_mh(unhex("3b01100000000280 0005400001020000"))
    assert (d.br_type, d.trigger, d.seq, d.flags) == (2, 128, 5, mh.BR_V)


def test_rfc5555_options():
    bu = mh.BindingUpdate(1, mh.BU_A | mh.BU_H | mh.BU_F, 100,
                          [mhopts.IPv4HomeAddress(32, 1, unhex("0a000001")),
                           mhopts.IPv4CareofAddress(unhex("c0000264"))])
    raw = _enc(bu)
    assert raw[8:10] == unhex("c100")
    # 4n alignment: IPv4 HoA at 12, IPv4 CoA at 20, PadN(4) to 32
    assert raw[12:20] == unhex("1d06 8200 0a000001") and raw[20:28] == unhex("20060000c0000264")
    assert raw[28:32] == unhex("01020000")
    ba = mh.BindingAck(0, 0, 1, 100, [mhopts.IPv4AddressAck(0, 32, unhex("0a000001")), mhopts.NATDetection(True, 110)])
    raw = _enc(ba)
    assert raw[12:20] == unhex("1e0600800a000001") and raw[20:28] == unhex("1f068000 0000006e")
    o = decode_mh(unhex("3b020600000000000001006401020000 1d06 7e00 c0a80001")).options[1]
    assert (o.prefix_len, o.p, o.address) == (31, 1, unhex("c0a80001"))


def test_vendor_experimental_dns_options():
    raw = _enc(mh.BindingUpdate(1, 0, 1, [mhopts.VendorSpecific(32473, 7, b"hi"), mhopts.ExperimentalOption(b"x"),
                                          mhopts.DNSUpdate(0, DNS_R, b"\x02mn\x00")]))
    # Vendor at 4n+2: fixed part ends at 12, PadN(2), option at 14
    assert raw[12:14] == unhex("0100") and raw[14:23] == unhex("1307 00007ed9 07 6869")
    assert raw[23:26] == unhex("120178")
    assert raw[26:34] == unhex("1106 0080 026d6e00")
