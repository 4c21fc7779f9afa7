"""DHCPv6 Information-request/Reply for RFC 6610 (roam6.bootstrap.dhcp6)."""
import struct

from support import Rand, raises, unhex
from roam6.wire.errors import DecodeError
from roam6.bootstrap import dhcp6
from roam6.bootstrap.dns import encode_name

MAC = unhex("020000000001")
DUID = dhcp6.duid_ll(MAC)
HA = unhex("20010db800aa00000000000000000001")
PFX = unhex("20010db800aa00000000000000000000")


def opt(code, data):
    return struct.pack(">HH", code, len(data)) + data


def reply(xid=0x123456, *opts, server=True, client=DUID):
    m = struct.pack(">I", (7 << 24) | xid)
    if client is not None:
        m += opt(1, client)
    if server:
        m += opt(2, unhex("00030001aabbccddeeff"))
    return m + b"".join(opts)


def udinf(*subs):
    return opt(70, b"".join(subs))


HNP = opt(71, bytes([64]) + PFX)
HAA = opt(72, HA)
HAF = opt(73, encode_name("ha.example.test"))


def test_information_request_matches_protocols_vector():
    got = dhcp6.build_information_request(0x123456, DUID, 0)
    assert got == unhex("0b1234560001000a000300010200000000010008000200000006000e0046003100470048004900200053")


def test_information_request_elapsed_saturates_and_hnidf():
    m = dhcp6.build_information_request(1, DUID, 70000, (69,) + dhcp6.ORO_UDINF, "example.test")
    assert m[18:24] == unhex("00080002ffff")
    assert m.endswith(opt(49, encode_name("example.test")))
    assert m[24:30] == unhex("00060010" "0045")


def test_reply_with_udinf_gives_ha_prefix_fqdn():
    info = dhcp6.parse_reply(reply(0x123456, udinf(HNP, HAA, HAF), opt(32, struct.pack(">I", 7200))), 0x123456, DUID)
    assert info["ha"] == [HA] and info["ha_ipv4"] == []
    assert info["home_prefix"] == (PFX, 64)
    assert info["ha_fqdn"] == "ha.example.test"
    assert info["refresh_s"] == 7200 and info["container"] == 70


def test_ipv4_ha_embedded_in_nat64_prefix_and_refresh_floor():
    v4ha = unhex("0064ff9b0000000000000000c6120102")
    info = dhcp6.parse_reply(reply(5, udinf(opt(72, v4ha)), opt(32, struct.pack(">I", 5))), 5, DUID)
    assert info["ha"] == [] and info["ha_ipv4"] == [unhex("c6120102")]
    assert info["refresh_s"] == dhcp6.IRT_MINIMUM
    assert dhcp6.parse_reply(reply(5, udinf(HAA)), 5)["refresh_s"] == dhcp6.IRT_DEFAULT


def test_bare_options_outside_a_container_are_dropped():
    assert dhcp6.parse_reply(reply(5, HNP, HAA, HAF), 5, DUID) is None
    assert dhcp6.parse_reply(reply(5), 5, DUID) is None  # what Kea sends without an ORO match
    assert dhcp6.parse_reply(reply(5, udinf(HNP)), 5, DUID) is None  # incomplete: no HA


def test_first_usable_container_wins_and_idinf_needs_our_realm():
    ha2 = HA[:15] + b"\x02"
    idinf = opt(69, opt(49, encode_name("other.test")) + opt(72, ha2))
    info = dhcp6.parse_reply(reply(5, idinf, udinf(HAA)), 5, DUID, "example.test")
    assert info["ha"] == [HA]
    idinf = opt(69, opt(49, encode_name("Example.Test")) + opt(72, ha2))
    info = dhcp6.parse_reply(reply(5, idinf, udinf(HAA)), 5, DUID, "example.test")
    assert info["ha"] == [ha2] and info["container"] == 69
    assert dhcp6.parse_reply(reply(5, udinf(HNP), udinf(opt(72, ha2))), 5)["ha"] == [ha2]


def test_foreign_and_refused_replies_raise_decode_error():
    good = udinf(HAA)
    for buf, why in [
        (reply(6, good), "transaction id"),
        (reply(5, good, server=False), "Server Identifier"),
        (reply(5, good, client=None), "another client"),
        (reply(5, good, client=dhcp6.duid_ll(b"\x02\0\0\0\0\x02")), "another client"),
        (reply(5, good, opt(13, b"\x00\x02nope")), "status 2"),
        (b"\x0b" + reply(5, good)[1:], "not a Reply"),
        (b"\x07\0", "shorter"),
    ]:
        e = raises(DecodeError, dhcp6.parse_reply, buf, 5, DUID)
        assert why in e.reason, (why, e.reason)


def test_malformed_containers_raise_with_offsets():
    cases = [
        (reply(5, udinf(opt(71, bytes([64]) + PFX[:8]))), "17 bytes"),
        (reply(5, udinf(opt(71, bytes([129]) + PFX))), "17 bytes"),
        (reply(5, udinf(opt(72, HA[:15]))), "16 bytes"),
        (reply(5, udinf(opt(73, b"\x02ha\x00\x00"))), "fill"),
        (reply(5, udinf(opt(73, b"\x02ha\xc0\x0c"))), "pointer"),
        (reply(5, udinf(opt(73, b"\x05ha"))), "past"),
        (reply(5, udinf(HAA))[:-3], "runs past"),
        (reply(5, opt(70, HAA[:-1])), "runs past its container"),
        (reply(5, udinf(HAA), b"\x00\x20\x00"), "cut short"),
        (reply(5, udinf(HAA), opt(32, b"\0\0\1")), "4 bytes"),
    ]
    for buf, why in cases:
        e = raises(DecodeError, dhcp6.parse_reply, buf, 5, DUID)
        assert why in e.reason, (why, e.reason)
        assert 0 <= e.offset < len(buf)


def test_truncations_of_a_good_reply_never_escape_decode_error():
    buf = reply(5, udinf(HNP, HAA, HAF), opt(32, struct.pack(">I", 7200)))
    for n in range(len(buf)):
        try:
            dhcp6.parse_reply(buf[:n], 5, DUID)
        except DecodeError:
            pass
    for i in range(len(buf)):  # every single-byte corruption: a result or DecodeError, nothing else
        for v in (0, 0xFF, 0xC0):
            b = bytearray(buf)
            b[i] = v
            try:
                dhcp6.parse_reply(bytes(b), 5, DUID)
            except DecodeError:
                pass


def test_client_timers_and_retransmissions():
    c = dhcp6.Dhcp6Client(MAC, Rand(b"\x12\x34\x56" + b"\x80\x00" * 40), 1000, delay_ms=None)
    assert c.xid == 0x123456
    assert c.get_timer() == 1500  # 0x8000/65536 of INF_MAX_DELAY
    assert c.datagrams_to_send(1499) == []
    out = c.datagrams_to_send(1500)
    assert len(out) == 1
    msg, (dst, dport, sport) = out[0]
    assert msg == unhex("0b1234560001000a000300010200000000010008000200000006000e0046003100470048004900200053")
    assert (dst, dport, sport) == (dhcp6.ALL_SERVERS, 547, 546)
    assert c.get_timer() == 2500  # RAND = 0 with the middle value
    assert c.datagrams_to_send(2000) == []
    msg2 = c.datagrams_to_send(2500)[0][0]
    assert msg2[:4] == msg[:4] and msg2[22:24] == struct.pack(">H", 100)  # same xid, elapsed 1 s
    assert c.get_timer() == 4500
    t = 4500
    for _ in range(20):  # doubling up to INF_MAX_RT
        c.datagrams_to_send(t)
        t = c.get_timer()
    assert t - c._start > 3600000 and c._rt == dhcp6.INF_MAX_RT


def test_client_jitter_stays_within_ten_percent():
    lo = dhcp6.Dhcp6Client(MAC, Rand(b"\0\0\0" + b"\x00\x00" * 4), 0, delay_ms=0)
    lo.datagrams_to_send(0)
    hi = dhcp6.Dhcp6Client(MAC, Rand(b"\0\0\0" + b"\xff\xff" * 4), 0, delay_ms=0)
    hi.datagrams_to_send(0)
    assert lo.get_timer() == 900 and 1099 <= hi.get_timer() <= 1100


def test_client_with_realm_asks_for_identified_information():
    c = dhcp6.Dhcp6Client(MAC, Rand(b"\x00\x00\x05"), 0, delay_ms=0, hnidf="example.test")
    msg = c.datagrams_to_send(0)[0][0]
    assert msg[24:28] == unhex("00060010") and msg[28:30] == unhex("0045")  # ORO starts with IDINF
    assert msg.endswith(opt(49, encode_name("example.test")))


def test_client_ignores_hostile_then_takes_good_reply():
    c = dhcp6.Dhcp6Client(MAC, Rand(b"\x00\x00\x05"), 0, delay_ms=0)
    c.datagrams_to_send(0)
    assert not c.receive(b"\x07\x00\x00\x05\x00\x46\xff\xff", 10)
    assert not c.receive(reply(6, udinf(HAA)), 11)
    assert c.ignored == 2 and not c.done and "offset" in c.last_error
    assert c.receive(reply(5, udinf(HNP, HAA)), 12)
    assert c.done and c.result["ha"] == [HA] and c.get_timer() is None
    assert c.datagrams_to_send(5000) == []


def test_client_reply_without_information_ends_with_error_after_a_grace():
    c = dhcp6.Dhcp6Client(MAC, Rand(b"\x00\x00\x05"), 0, delay_ms=0)
    c.datagrams_to_send(0)
    assert not c.receive(reply(5), 3)
    assert not c.done and c.get_timer() == 503
    assert c.datagrams_to_send(1000) == []  # no more retransmissions
    c.handle_timer(502)
    assert not c.done
    c.handle_timer(503)
    assert c.done and c.result is None and "RFC 6610" in c.error


def test_client_better_reply_within_the_grace_wins():
    c = dhcp6.Dhcp6Client(MAC, Rand(b"\x00\x00\x05"), 0, delay_ms=0)
    c.datagrams_to_send(0)
    c.receive(reply(5, HAA), 3)  # a rogue server's bare options
    assert c.receive(reply(5, udinf(HNP, HAA)), 40)
    assert c.done and c.result["ha"] == [HA]
