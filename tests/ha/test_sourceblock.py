"""Hosts that keep failing (ha/sourceblock.py): blocked before the HMAC in the cache, then in the
listener's kernel filter (ha/listenfilter.py block_prefix) on real loopback sockets; a bound MN's
own peer is never blocked, and a block ends HOLD_MS after the last failure seen."""
import socket

from roam6_host.ha import listenfilter as lf
from roam6_host.ha.sourceblock import BAD, FAIL_BURST, HOLD_MS, KERNEL_SAMPLE, NOISY, SourceBlock

from test_listenfilter import _bu, _count


class _B:
    def __init__(self, transport, peer):
        self.transport, self.peer = transport, peer


def test_a_host_is_blocked_after_its_burst_of_failures_and_released_hold_ms_after_the_last():
    sb = SourceBlock()
    src = ("udp4", "198.18.2.10", 1234)
    for i in range(FAIL_BURST):
        sb.failure(src[1], BAD, 1000)
        assert sb.level(src[1], 1000) == 0, i
    assert not sb.bu_blocked(src, None, 1000)
    sb.failure(src[1], BAD, 1000)
    assert sb.level(src[1], 1000) == BAD and sb.changed and sb.get_timer() == 1000 + HOLD_MS
    assert sb.bu_blocked(src, None, 1001) and sb.bu_blocked(("udp4", src[1], 999), None, 1001)
    # the port and address its HoA is bound to: never (its refreshes); another port of that host: yes
    assert not sb.bu_blocked(src, _B("udp4", (src[1], 1234)), 1001)
    assert sb.bu_blocked(src, _B("udp4", (src[1], 1235)), 1001)
    assert not sb.bu_blocked(("udp4", "198.18.2.11", 1), None, 1001)     # other hosts: untouched
    for _ in range(3):                              # still flooding while blocked: the block holds
        sb.failure(src[1], BAD, 1500)
    sb.handle_timer(1000 + HOLD_MS)
    assert sb.level(src[1], 1000 + HOLD_MS) == BAD
    sb.changed = False
    sb.handle_timer(1500 + HOLD_MS)
    assert sb.level(src[1], 1500 + HOLD_MS) == 0 and sb.changed and sb.get_timer() is None
    # a device's retransmissions (1/s) never block its host
    sb2 = SourceBlock()
    for t in range(0, 60000, 1000):
        sb2.failure("192.0.2.7", BAD, t)
    assert not sb2.blocked


def test_while_a_flood_is_on_three_failures_in_a_burst_block():
    from roam6_host.ha.sourceblock import FLOOD_FAILS
    sb = SourceBlock()
    for i in range(FLOOD_FAILS - 1):
        sb.failure("198.18.2.30", BAD, 0, flood=True)
    assert not sb.level("198.18.2.30", 0)
    sb.failure("198.18.2.30", BAD, 0, flood=True)
    assert sb.level("198.18.2.30", 0) == BAD
    for t in range(0, 20000, 1000):                 # one a second, flood or not: never
        sb.failure("192.0.2.8", BAD, t, flood=True)
    assert not sb.level("192.0.2.8", 20000)


def test_the_driver_drops_a_blocked_hosts_datagrams_before_parsing_but_its_bound_peers():
    from test_listenfilter import HOA
    sb = SourceBlock()
    for _ in range(FAIL_BURST + 1):
        sb.failure("198.18.2.40", BAD, 0)
        sb.failure("198.18.2.41", NOISY, 0)
    data = b"\x60" + bytes(7) + HOA + bytes(16) + bytes(20)
    bound = {HOA: _B("udp4", ("198.18.2.40", 5000))}
    assert sb.drop_datagram(data, "udp4", ("198.18.2.40", 5001), bound, 1)
    assert not sb.drop_datagram(data, "udp4", ("198.18.2.40", 5000), bound, 1)   # where its HoA is bound
    assert not sb.drop_datagram(data, "udp4", ("198.18.2.42", 5000), {}, 1)      # not blocked
    assert sb.drop_datagram(data, "udp4", ("198.18.2.41", 1), {}, 1)             # noisy: not a BU
    assert not sb.drop_datagram(_bu(4096), "udp4", ("198.18.2.41", 1), {}, 1)    # noisy: a BU passes
    assert sb.drop_datagram(_bu(4096), "udp4", ("198.18.2.40", 1), {}, 1)        # bad: a BU too
    assert not sb.drop_datagram(data, "udp4", ("198.18.2.40", 5001), bound, 5000)  # over
    assert "198.18.2.40" not in sb.blocked and sb.changed


def test_noisy_hosts_keep_their_bus():
    sb = SourceBlock()
    for _ in range(FAIL_BURST + 1):
        sb.failure("198.18.2.20", NOISY, 0)
    assert sb.level("198.18.2.20", 1) == NOISY
    assert not sb.bu_blocked(("udp4", "198.18.2.20", 5), None, 1)
    sb.failure("198.18.2.20", BAD, 2)               # then a bad MAC: BAD
    assert sb.bu_blocked(("udp4", "198.18.2.20", 5), None, 3)


def test_the_cache_drops_a_blocked_hosts_bus_before_the_hmac():
    """Forged BUs naming a bound MN's own SPI (`bench attack` wrongkey_own) cost one HMAC each
    until their host is blocked; the bound MN's refresh from its own peer still gets BA 0, and a
    move from the blocked host gets through once the block is over (HOLD_MS after the flood)."""
    from ha_helpers import NAT_SRC, SPI, T0, bu4, exchange, parse_ba
    from test_limits import cache, wrong_key
    c = cache()
    [(ba, _)] = exchange(c, bu4(1, now=T0), NAT_SRC, T0, wall=T0)
    assert parse_ba(ba)[1].status == 0
    atk = "198.18.2.10"
    t = T0 + 500
    for i in range(500):
        exchange(c, wrong_key(2 + i, t), ("udp4", atk, 1024 + i), t, wall=t)
    assert c.sas[SPI].calls <= 2 + 2 * (FAIL_BURST + 1), c.sas[SPI].calls    # verify+sign each, then none
    assert c.limits.block.level(atk, t) == BAD and c.events()[-1].reason.startswith("blocked:")
    t = T0 + 1000
    [(ba, _)] = exchange(c, bu4(600, now=t), NAT_SRC, t, wall=t)          # from its own peer: answered
    assert parse_ba(ba)[1].status == 0
    t = T0 + 1400
    assert exchange(c, bu4(601, now=t), ("udp4", atk, 7), t, wall=t) == []     # a move to there: not yet
    t = T0 + 500 + HOLD_MS + 500
    [(ba, _)] = exchange(c, bu4(602, now=t), ("udp4", atk, 7), t, wall=t)      # one back-off step later
    assert parse_ba(ba)[1].status == 0 and c.bindings[parse_ba(ba)[0].dst].peer == (atk, 7)


def test_blocked_hosts_are_dropped_in_the_kernel_but_a_sample():
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        r.bind(("127.0.0.1", 0))
        r.settimeout(0.1)
        s1.bind(("127.0.0.1", 0))
        s2.bind(("127.0.0.2", 0))
        data = b"\x60" + bytes(100)
        many = ["10.%d.%d.1" % (i // 250, i % 250) for i in range(450)]      # three compare blocks
        bad = [socket.inet_aton(h) for h in many[:300] + ["127.0.0.1"]]
        prog = lf.with_blocks(lf.listener_program(), bad, [], 4)
        assert lf.filter_listener(r, program=prog) is None
        got = _count(r, s1, data, 64 * KERNEL_SAMPLE)
        assert 0 < got < 64 * 4, got                                # ~64: the sample only
        assert _count(r, s2, data, 50) == 50                         # another host
        assert _count(r, s2, b"\x45" + bytes(60), 20) == 0            # the listener's own rule after it
        # noisy: its BUs pass, the rest is sampled
        prog = lf.with_blocks(lf.listener_program(), [], [socket.inet_aton(h) for h in many] +
                              [socket.inet_aton("127.0.0.1")], 4)
        assert lf.filter_listener(r, program=prog) is None
        assert _count(r, s1, _bu(4096), 50) == 50
        bad_proto = bytearray(_bu(4096))
        bad_proto[40] = 58                                          # a "BU" the HA would answer, not take
        assert _count(r, s1, bytes(bad_proto), 32 * KERNEL_SAMPLE) < 32 * 4
        assert _count(r, s1, data, 32 * KERNEL_SAMPLE) < 32 * 4
        assert _count(r, s2, data, 50) == 50
    finally:
        for x in (r, s1, s2):
            x.close()


def test_blocked_ipv6_hosts_in_the_kernel():
    r = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        r.bind(("::1", 0))
        r.settimeout(0.1)
        s.bind(("::1", 0))
        data = b"\x60" + bytes(100)
        other = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
        prog = lf.with_blocks(lf.listener_program(), [other], [], 6)
        assert lf.filter_listener(r, program=prog) is None
        assert _count(r, s, data, 50) == 50
        prog = lf.with_blocks(lf.listener_program(), [other, socket.inet_pton(socket.AF_INET6, "::1")], [], 6)
        assert lf.filter_listener(r, program=prog) is None
        assert _count(r, s, data, 32 * KERNEL_SAMPLE) < 32 * 4
    finally:
        r.close()
        s.close()


def test_ha_status_says_how_many_hosts_are_blocked():
    """`roam6 ha status` (ha/control.py): the blocked hosts in its JSON and its table."""
    from types import SimpleNamespace

    from roam6_host.ha.control import ControlServer, table
    from test_limits import cache
    c = cache()
    for _ in range(FAIL_BURST + 1):
        c.limits.failed(("udp4", "198.18.2.50", 1), 0)
    cfg = SimpleNamespace(tun="r6tun", address_text="2001:db8:aa::1")
    srv = ControlServer.__new__(ControlServer)
    srv.ha = SimpleNamespace(cache=c, cfg=cfg, shield=None, aaa=None, ipsec=None)
    doc = srv.status()
    assert doc["blocked_hosts"]["times_blocked"] == 1 and doc["blocked_hosts"]["kernel_filter_rebuilds"] is None
    assert "1 host(s) blocked for failing now" in table(doc)


def test_a_full_table_is_scanned_at_most_once_a_second():
    """Rotating source addresses fill the bucket table; a new host then costs no scan of it (the
    scan per new host was the lever), the table stays bounded, and a second later it is pruned."""
    from roam6_host.ha import sourceblock as sbm
    sb = SourceBlock()
    scans = []
    real = sbm.TokenBucket.full_at
    sbm.TokenBucket.full_at = lambda self: (scans.append(1), real(self))[1]
    try:
        for i in range(sbm.MAX_HOSTS + 3000):
            sb.failure("10.%d.%d.1" % (i >> 8, i & 255), BAD, 5)
        assert len(sb._buckets) <= sbm.MAX_HOSTS and sb._prune_at == 1005
        assert len(scans) <= sbm.MAX_HOSTS, len(scans)                # one scan, not 3000
        sb.failure("10.250.0.1", BAD, 1005 + 10000)                  # idle since: pruned, room again
        assert "10.250.0.1" in sb._buckets
    finally:
        sbm.TokenBucket.full_at = real
