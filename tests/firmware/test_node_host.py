"""The HoA's user-space IPv6 host (roam6.node.host): UDP sockets and ping, checked with the codec."""
from support import raises

from roam6.node.host import Host
from roam6.wire.addr import ip6_from_text
from roam6.wire.checksum import checksum6
from roam6_codec.icmp6 import EchoReply, EchoRequest, decode_icmp6
from roam6.wire.ipv6 import build_ipv6, decode_ipv6
from roam6_codec.udp import build_udp, decode_udp, udp_checksum_ok

HOA = ip6_from_text("2001:db8:aa::100")
CN = ip6_from_text("2001:db8:f3::2")


def make():
    out = []
    h = Host(HOA, lambda p: out.append(bytes(p)) or True)
    return h, out


def feed(h, pkt):
    buf = bytearray(1500)
    buf[:len(pkt)] = pkt
    return h.input(buf, len(pkt))


def test_sendto_builds_checked_ipv6_udp():
    h, out = make()
    s = h.socket()
    s.bind(9000)
    assert s.sendto(b"hello", ("2001:db8:f3::2", 9001)) == 5
    s.sendto(b"x" * 300, (CN, 9001))
    p = decode_ipv6(out[0])
    assert p.src == HOA and p.dst == CN and p.nh == 17 and p.hop_limit == 64
    u = decode_udp(p.payload)
    assert (u.sport, u.dport, bytes(u.payload)) == (9000, 9001, b"hello")
    assert udp_checksum_ok(HOA, CN, p.payload)
    p2 = decode_ipv6(out[1])
    assert bytes(decode_udp(p2.payload).payload) == b"x" * 300 and udp_checksum_ok(HOA, CN, p2.payload)


def test_unbound_socket_gets_an_ephemeral_port():
    h, out = make()
    s = h.socket()
    s.sendto(b"a", (CN, 1))
    assert s.port >= 49152
    t = h.socket()
    t.bind(0)
    assert t.port != s.port


def test_port_in_use():
    h, out = make()
    a = h.socket()
    a.bind(7)
    b = h.socket()
    raises(OSError, b.bind, 7)
    a.close()
    b.bind(7)


def test_receive_delivers_payload_and_source():
    h, out = make()
    s = h.socket()
    s.bind(9000)
    pkt = build_ipv6(CN, HOA, 17, build_udp(5555, 9000, b"R6PDdata", src=CN, dst=HOA))
    assert feed(h, pkt)
    data, (src, sport) = s.recvfrom_nowait()
    assert data == b"R6PDdata" and src == CN and sport == 5555
    assert s.recvfrom_nowait() is None


def test_bad_checksum_or_other_port_is_dropped():
    h, out = make()
    s = h.socket()
    s.bind(9000)
    u = bytearray(build_udp(5555, 9000, b"data", src=CN, dst=HOA))
    u[6] ^= 0xFF
    assert not feed(h, build_ipv6(CN, HOA, 17, bytes(u)))
    assert not feed(h, build_ipv6(CN, HOA, 17, build_udp(5555, 9001, b"data", src=CN, dst=HOA)))
    assert not feed(h, build_ipv6(CN, HOA, 17, build_udp(5555, 9000, b"data")))   # no checksum
    assert s.recvfrom_nowait() is None


def test_queue_is_bounded():
    h, out = make()
    s = h.socket()
    s.bind(9000)
    pkt = build_ipv6(CN, HOA, 17, build_udp(1, 9000, b"z", src=CN, dst=HOA))
    for i in range(20):
        feed(h, pkt)
    n = 0
    while s.recvfrom_nowait() is not None:
        n += 1
    assert n == 8 and s.dropped == 12


def test_echo_request_is_answered():
    h, out = make()
    req = EchoRequest(ident=7, seq=3, data=b"ping-data").encode(src=CN, dst=HOA)
    assert feed(h, build_ipv6(CN, HOA, 58, req))
    p = decode_ipv6(out[0])
    assert p.src == HOA and p.dst == CN and p.nh == 58
    assert checksum6(HOA, CN, 58, p.payload) == 0
    r = decode_icmp6(p.payload)
    assert isinstance(r, EchoReply) and r.ident == 7 and r.seq == 3 and bytes(r.data) == b"ping-data"


def test_other_icmp_and_truncated_input_ignored():
    h, out = make()
    rep = EchoReply(ident=7, seq=3).encode(src=CN, dst=HOA)
    assert not feed(h, build_ipv6(CN, HOA, 58, rep))
    bad = bytearray(build_ipv6(CN, HOA, 58, EchoRequest(1, 1).encode(src=CN, dst=HOA)))
    bad[-1] ^= 1
    assert not feed(h, bytes(bad))
    for n in (0, 10, 40, 47):
        assert not h.input(bytearray(1500), n)
    assert out == []


def test_awaited_recvfrom_wakes_on_delivery_and_can_be_cancelled():
    import asyncio
    h, out = make()
    s = h.socket()
    s.bind(9000)
    got = []

    def pkt(data):
        return build_ipv6(CN, HOA, 17, build_udp(5555, 9000, data, src=CN, dst=HOA))

    async def reader():
        while True:
            data, _addr = await s.recvfrom()
            got.append(data)

    async def main():
        t = asyncio.create_task(reader())
        await asyncio.sleep(0.01)
        assert got == []                  # parked: nothing queued yet
        feed(h, pkt(b"one"))
        feed(h, pkt(b"two"))
        await asyncio.sleep(0.01)
        feed(h, pkt(b"three"))
        await asyncio.sleep(0.01)
        assert got == [b"one", b"two", b"three"], got
        t.cancel()
        await asyncio.sleep(0.01)
        assert t.done()
        feed(h, pkt(b"late"))             # nobody waits: it queues, nothing runs
        await asyncio.sleep(0.01)
        assert got == [b"one", b"two", b"three"] and s.recvfrom_nowait()[0] == b"late"

    asyncio.run(main())


def test_ipv6_only_host_refuses_an_ipv4_destination():
    """A node with no IPv4 HoA: an IPv4 destination (text or 4 bytes) is OSError EAFNOSUPPORT
    (97), nothing is sent (node/host.py; the same from host4.py's sendto, which a process that
    loaded host4 has on the class, for a host it did not attach to)."""
    sent = []
    h = Host(HOA, lambda p: sent.append(bytes(p)) or True)
    s = h.socket()
    s.bind(9000)
    for dst in ("198.18.3.2", bytes([198, 18, 3, 2])):
        e = raises(OSError, s.sendto, b"x", (dst, 9001))
        assert e.args[0] == 97
    assert not sent
    assert s.sendto(b"six", ("2001:db8:f3::2", 9001)) == 3 and len(sent) == 1
