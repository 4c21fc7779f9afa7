"""DNS query builder, response parser and RFC 5026 SRV client (roam6.bootstrap.dns)."""
import struct

from support import Rand, raises, unhex
from roam6.wire.errors import DecodeError
from roam6.bootstrap import dns

SRVNAME = "_mip6._ipv6.example.test"
V6 = unhex("20010db800aa00000000000000000001")
V4 = unhex("c6120102")
SERVER = unhex("c0000201")


def header(qid, an=0, ns=0, ar=0, flags=0x8180):
    return struct.pack(">HHHHHH", qid, flags, 1, an, ns, ar)


def question(name, qtype):
    return dns.encode_name(name) + struct.pack(">HH", qtype, 1)


def rr(name_bytes, rtype, rdata, rclass=1):
    return name_bytes + struct.pack(">HHIH", rtype, rclass, 300, len(rdata)) + rdata


def srv_answer(qid, with_additional=True, target=b"\x02ha\xc0\x18"):
    # the question name starts at offset 12; "example.test" sits at 12 + 6 + 6 = 24 (0x18)
    body = header(qid, 1, 0, 2 if with_additional else 0) + question(SRVNAME, dns.SRV)
    body += rr(b"\xc0\x0c", dns.SRV, struct.pack(">HHH", 0, 5, 4191) + target)
    if with_additional:
        body += rr(b"\x02ha\xc0\x18", dns.AAAA, V6) + rr(b"\x02ha\xc0\x18", dns.A, V4)
    return body


def test_build_query_bytes():
    q = dns.build_query(0xBEEF, "_mip6._ipv6.example.test", dns.SRV)
    assert q == unhex("beef 0100 0001 0000 0000 0000"
                      "055f6d697036 055f69707636 076578616d706c65 0474657374 00 0021 0001")


def test_encode_name_rejects_bad_names():
    assert "labels" in str(raises(ValueError, dns.encode_name, "a..b"))
    assert "labels" in str(raises(ValueError, dns.encode_name, "x" * 64 + ".test"))
    assert "255" in str(raises(ValueError, dns.encode_name, ".".join(["abcdefg"] * 40)))
    assert dns.encode_name("ha.example.test.") == dns.encode_name("ha.example.test")


def test_parse_srv_with_compressed_names_and_additional_records():
    rcode, recs = dns.parse_response(srv_answer(7), 7, SRVNAME, dns.SRV)
    assert rcode == 0
    assert recs == [(SRVNAME, dns.SRV, (0, 5, 4191, "ha.example.test")),
                    ("ha.example.test", dns.AAAA, V6), ("ha.example.test", dns.A, V4)]


def test_read_name_rejects_loops_and_forward_pointers():
    buf = header(1) + b"\xc0\x0c"  # points at itself
    assert "pointer" in raises(DecodeError, dns.read_name, buf, 12).reason
    buf = header(1) + b"\x01a\xc0\x0c"  # points back to its own start: a loop
    assert "pointer" in raises(DecodeError, dns.read_name, buf, 12).reason
    buf = header(1) + b"\xc0\x0e\x01a\x00"  # forwards
    assert "pointer" in raises(DecodeError, dns.read_name, buf, 12).reason
    buf = header(1) + b"\x01a\x00" + b"\xc0\x0c"
    assert dns.read_name(buf, 15) == ("a", 17)
    # a long backwards chain is cut off by the jump limit
    chain = bytearray(header(1) + b"\x00")
    for i in range(40):
        chain += struct.pack(">H", 0xC000 | (len(chain) - 2 if i else 12))
    assert "pointer" in raises(DecodeError, dns.read_name, bytes(chain), len(chain) - 2).reason
    assert "label type" in raises(DecodeError, dns.read_name, header(1) + b"\x45a", 12).reason
    assert "non-printable" in raises(DecodeError, dns.read_name, header(1) + b"\x01\x00\x00", 12).reason
    assert "255" in raises(DecodeError, dns.read_name, header(1) + (b"\x3f" + b"a" * 63) * 5 + b"\x00", 12).reason


def test_parse_response_rejects_foreign_and_broken_answers():
    good = srv_answer(7)
    cases = [
        (good[:11], "header"),
        (good, "id"),  # asked with another id below
        (header(7, flags=0x0100) + good[12:], "response"),
        (header(7, flags=0x8380) + good[12:], "TC"),
        (header(7, 1, 0, 2) + question("_mip6._ipv6.other.test", dns.SRV) + good[42:], "another question"),
        (good[:-3], "past the end"),
        (good[:50], "cut short"),
        (header(7, 1) + question(SRVNAME, dns.SRV) + rr(b"\xc0\x0c", dns.AAAA, V4), "length 4"),
        (header(7, 1) + question(SRVNAME, dns.SRV) + rr(b"\xc0\x0c", dns.SRV, b"\0\0\0\0\0\0\x02ha\x00\x00"), "fill"),
        (header(7, 1) + question(SRVNAME, dns.SRV) + rr(b"\xc0\x0c", dns.SRV, b"\0\0"), "too short"),
    ]
    for i, (buf, why) in enumerate(cases):
        e = raises(DecodeError, dns.parse_response, buf, 8 if i == 1 else 7, SRVNAME, dns.SRV)
        assert why in e.reason, (why, e.reason)


def test_every_corruption_gives_records_or_decode_error():
    buf = srv_answer(7)
    for n in range(len(buf)):
        try:
            dns.parse_response(buf[:n], 7, SRVNAME, dns.SRV)
        except DecodeError:
            pass
    for i in range(len(buf)):
        for v in (0, 0x3F, 0xC0, 0xFF):
            b = bytearray(buf)
            b[i] = v
            try:
                dns.parse_response(bytes(b), 7, SRVNAME, dns.SRV)
            except DecodeError:
                pass


def qid_of(datagram):
    return struct.unpack(">H", datagram[:2])[0]


def test_client_srv_with_additional_needs_one_round_trip():
    c = dns.DnsClient([SERVER], Rand(b"\x00\x07"), 0, domain="example.test")
    (q, (dst, port, sport)), = c.datagrams_to_send(0)
    assert (dst, port, sport, qid_of(q)) == (SERVER, 53, 0, 7)
    assert c.datagrams_to_send(1) == []
    assert not c.receive(srv_answer(7), unhex("c0000202"), 5)  # wrong source
    assert c.receive(srv_answer(7), SERVER, 5)
    assert c.done and c.result == {"ha": [V6], "ha_ipv4": [V4], "ha_fqdn": "ha.example.test"}


def answer(qid, name, qtype, *rdatas):
    body = header(qid, len(rdatas)) + question(name, qtype)
    for d in rdatas:
        body += rr(b"\xc0\x0c", qtype, d)
    return body


def test_client_srv_then_aaaa_and_a_queries_sorted_by_priority():
    c = dns.DnsClient([SERVER], Rand(bytes(range(1, 20))), 0, domain="example.test")
    q = c.datagrams_to_send(0)[0][0]
    srv = header(qid_of(q), 2) + question(SRVNAME, dns.SRV)
    srv += rr(b"\xc0\x0c", dns.SRV, struct.pack(">HHH", 20, 0, 0) + dns.encode_name("ha2.example.test"))
    srv += rr(b"\xc0\x0c", dns.SRV, struct.pack(">HHH", 10, 0, 0) + dns.encode_name("ha1.example.test"))
    assert c.receive(srv, SERVER, 1)
    asked = []
    for t in range(2, 20):
        out = c.datagrams_to_send(t)
        if not out:
            break
        q = out[0][0]
        name, off = dns.read_name(q, 12)
        qtype = struct.unpack_from(">H", q, off)[0]
        asked.append((name, qtype))
        v = bytes([len(asked)])
        data = (V6[:15] + v) if qtype == dns.AAAA else (V4[:3] + v)
        if name == "ha2.example.test" and qtype == dns.A:
            c.receive(header(qid_of(q), 0, flags=0x8183) + question(name, qtype), SERVER, t)  # NXDOMAIN
        else:
            assert c.receive(answer(qid_of(q), name, qtype, data), SERVER, t)
    assert asked == [("ha1.example.test", dns.AAAA), ("ha1.example.test", dns.A),
                     ("ha2.example.test", dns.AAAA), ("ha2.example.test", dns.A)]
    assert c.done and c.result["ha_fqdn"] == "ha1.example.test"
    assert c.result["ha"] == [V6[:15] + b"\x01", V6[:15] + b"\x03"] and c.result["ha_ipv4"] == [V4[:3] + b"\x02"]


def test_client_retries_across_servers_then_gives_up():
    s2 = unhex("20010db800a100000000000000000001")
    c = dns.DnsClient([SERVER, s2], Rand(), 100, domain="example.test")
    sent = []
    t = 100
    while not c.done and t < 100000:
        for d in c.datagrams_to_send(t):
            sent.append((t, d[1][0]))
        t = c.get_timer() if c.get_timer() is not None else t
        c.handle_timer(t)
    assert sent == [(100, SERVER), (1100, s2), (2100, SERVER), (3100, s2)]
    assert c.done and c.result is None and "no answer" in c.error


def test_client_ignores_hostile_answers_and_fails_on_nxdomain():
    c = dns.DnsClient([SERVER], Rand(b"\x00\x09"), 0, domain="example.test")
    c.datagrams_to_send(0)
    assert not c.receive(b"\x00\x09\x81", SERVER, 1)
    assert not c.receive(header(9) + b"\xc0\x0c\x00\x21\x00\x01", SERVER, 1)
    assert c.ignored == 2 and not c.done
    assert c.receive(header(9, flags=0x8183) + question(SRVNAME, dns.SRV), SERVER, 2)
    assert c.done and c.result is None and "no SRV" in c.error


def test_client_name_lookup_and_no_servers():
    c = dns.DnsClient([SERVER], Rand(b"\x00\x01\x00\x02"), 0, name="HA.example.test.")
    assert c.datagrams_to_send(0)[0][0]      # the query goes out
    assert c.receive(answer(1, "ha.example.test", dns.AAAA, V6), SERVER, 1)
    c.datagrams_to_send(2)
    assert c.receive(answer(2, "ha.example.test", dns.A), SERVER, 3)  # NODATA
    assert c.result == {"ha": [V6], "ha_ipv4": [], "ha_fqdn": "ha.example.test"}
    c = dns.DnsClient([], Rand(), 0, domain="example.test")
    assert c.done and c.result is None and c.get_timer() is None


def test_timer_without_a_query_in_flight_counts_no_try():
    c = dns.DnsClient([SERVER], Rand(), 0, domain="example.test")
    for t in (0, 5, 10):  # a driver calling handle_timer before datagrams_to_send
        c.handle_timer(t)
    assert not c.done
    assert len(c.datagrams_to_send(10)) == 1
    c.handle_timer(1010)  # first try timed out
    c.handle_timer(1011)  # called again before the retry went out: must not count as a try
    assert not c.done
    assert c.datagrams_to_send(1011)  # the second (last) try
    c.handle_timer(2011)
    assert c.done and "no answer" in c.error
