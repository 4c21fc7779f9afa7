"""Hypothesis: whatever a DHCPv6 server or DNS server sends, the parsers return a result or raise
wire.errors.DecodeError — nothing else escapes, nothing loops — and the clients never crash."""
import struct

from hypothesis import given, settings, strategies as st

from roam6.wire.errors import DecodeError
from roam6.bootstrap import dhcp6, dns

DUID = dhcp6.duid_ll(b"\x02\x00\x00\x00\x00\x01")


def tlv(code, data):
    return struct.pack(">HH", code, len(data)) + data


# DHCPv6 Replies built from plausible pieces (so the fuzzing reaches deep into the containers)
sub = st.one_of(
    st.builds(tlv, st.sampled_from([49, 71, 72, 73, 1234]), st.binary(max_size=24)),
    st.builds(lambda p, a: tlv(71, bytes([p]) + a), st.integers(0, 255), st.binary(min_size=16, max_size=16)),
    st.builds(lambda a: tlv(72, a), st.binary(min_size=16, max_size=16)),
    st.binary(max_size=6),
)
container = st.builds(lambda code, subs: tlv(code, b"".join(subs)), st.sampled_from([50, 69, 70]),
                      st.lists(sub, max_size=4))
top = st.one_of(container, st.builds(tlv, st.sampled_from([1, 2, 13, 32, 83, 70]), st.binary(max_size=20)),
                st.just(tlv(1, DUID)), st.just(tlv(2, b"\x00\x03\x00\x01abcdef")), st.binary(max_size=5))


@settings(max_examples=200, deadline=None)
@given(st.lists(top, max_size=6), st.sampled_from([7, 7, 7, 11]))
def test_dhcpv6_reply_parser_never_escapes(opts, mtype):
    buf = bytes([mtype]) + b"\x00\x00\x05" + b"".join(opts)
    try:
        info = dhcp6.parse_reply(buf, 5, DUID, "example.test")
    except DecodeError as e:
        assert 0 <= e.offset <= len(buf)
        return
    if info is not None:
        assert info["ha"] or info["ha_ipv4"] or info["ha_fqdn"]
        assert all(len(a) == 16 for a in info["ha"]) and all(len(a) == 4 for a in info["ha_ipv4"])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_dhcpv6_client_survives_any_datagram(data):
    c = dhcp6.Dhcp6Client(b"\x02\x00\x00\x00\x00\x01", lambda n: b"\x00" * (n - 1) + b"\x05", 0, delay_ms=0)
    c.datagrams_to_send(0)
    c.receive(data, 1)
    assert c.done is False or c.result is not None


name = st.lists(st.sampled_from([b"\x02ha", b"\x07example", b"\x04test", b"\xc0\x0c", b"\xc0\x10", b"\xff", b"\x3f"]),
                max_size=4).map(lambda parts: b"".join(parts) + b"\x00")
rr = st.builds(lambda n, t, d: n + struct.pack(">HHIH", t, 1, 60, len(d)) + d, name,
               st.sampled_from([1, 5, 28, 33, 99]), st.binary(max_size=24))


@settings(max_examples=200, deadline=None)
@given(st.lists(rr, max_size=5), st.integers(0, 5), st.integers(0, 0xFFFF))
def test_dns_response_parser_never_escapes(rrs, count, flags):
    q = dns.encode_name("_mip6._ipv6.example.test") + struct.pack(">HH", 33, 1)
    buf = struct.pack(">HHHHHH", 7, flags | 0x8000, 1, count, 0, len(rrs)) + q + b"".join(rrs)
    try:
        rcode, recs = dns.parse_response(buf, 7, "_mip6._ipv6.example.test", 33)
    except DecodeError as e:
        assert 0 <= e.offset <= len(buf)
        return
    assert 0 <= rcode <= 15
    for n, t, d in recs:
        assert isinstance(n, str) and len(n) <= 255


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 200))
def test_read_name_terminates_on_anything(buf, off):
    try:
        n, end = dns.read_name(buf, off)
    except DecodeError:
        return
    assert end <= len(buf) and len(n) <= 255
