"""The HA's Binding Revocation (roam6_host.aaa.revocation) against the MN's (roam6.core.revocation):
the BRI the HA builds is accepted by the MN, the MN's BRA ends the HA's retransmissions, which are
paced (1, 2, 4 s) and bounded; a forged or unexpected BRA is ignored and counted."""
from roam6.core import revocation as MNR
from roam6.core.registration import Registration
from roam6.wire.addr import ip6_from_text
from roam6.wire.ipv6 import decode_ipv6

from roam6_host.aaa import revocation as HAR
from roam6_host.ha.cache import Binding
from roam6_host.ha.sa import SA

KEY = bytes(range(16))
HOA = ip6_from_text("2001:db8:aa::100")
HA = ip6_from_text("2001:db8:aa::1")
V4COA = bytes([192, 0, 2, 100])
NAI = b"board1@example.test"


class Cache:
    ha = HA

    def __init__(self):
        self._out = []


class Log:
    def __init__(self):
        self.lines = []

    def __call__(self, ev, **kw):
        self.lines.append((ev, kw))

    def once(self, _key, ev, **kw):
        self.lines.append((ev, kw))


def setup():
    cache, log = Cache(), Log()
    rv = HAR.Revocations(cache, log)
    b = Binding(HOA, 4096)
    b.coa, b.transport, b.peer = b"\0" * 10 + b"\xff\xff" + V4COA, "udp4", ("198.18.12.2", 40000)
    sa = SA(NAI, 4096, KEY, HOA)
    mn = Registration(NAI, 4096, KEY, HOA, HA, ntp_offset_ms=0)
    mn.move(V4COA, "udp4", 0)
    mn.datagrams_to_send(0)
    MNR._last[0] = 0
    return cache, log, rv, sa, b, mn


def mn_now():
    """The MN's `now` for which its RFC 4285 clock (ntp_offset_ms 0) reads the wall clock: its
    timestamp check then sees the HA's fresh one."""
    import time
    return (time.time_ns() // 1_000_000) + MNR_NTP_MS


MNR_NTP_MS = 2208988800 * 1000


def test_bri_accepted_by_the_mn_and_its_bra_ends_the_retransmissions():
    cache, log, rv, sa, b, mn = setup()
    rv.start(sa, b, 0)
    (pkt, dest), = cache._out
    assert dest == ("udp4", "198.18.12.2", 40000)
    got = MNR.receive_bri(mn, decode_ipv6(pkt).payload, HA, mn_now())
    assert got is not None and got[1] == 1 and got[2] is True
    bra = bytes(MNR.ipv6_packet(HOA, HA, 135, got[0]))
    assert rv.is_revocation(bra)
    assert rv.get_timer() == 1000
    assert rv.receive(bra, ("udp4", "198.18.12.2", 40000), 10) is True
    assert rv.pending == {} and rv.stats["bra_received"] == 1 and rv.get_timer() is None
    assert log.lines[-1][0] == "bra_received" and log.lines[-1][1]["status"] == 0


def test_retransmissions_paced_and_bounded():
    cache, log, rv, sa, b, _mn = setup()
    rv.start(sa, b, 0)
    sent_at = [0]
    now = 0
    while rv.pending:
        now = rv.get_timer()
        n = len(cache._out)
        rv.handle_timer(now)
        if len(cache._out) > n:
            sent_at.append(now)
    assert sent_at == [0, 1000, 3000, 7000] and now == 15000
    assert rv.stats["bri_sent"] == HAR.TRIES and rv.stats["bri_unanswered"] == 1
    assert log.lines[-1][0] == "bri_unanswered"
    # each repeat carries a fresh timestamp (the MN refuses a replayed one)
    ts = [bytes(decode_ipv6(p).payload) for p, _d in cache._out]
    assert len(set(ts)) == len(ts)


def test_forged_or_unexpected_bra_ignored_and_counted():
    cache, log, rv, sa, b, mn = setup()
    rv.start(sa, b, 0)
    (pkt, _dest), = cache._out
    good = MNR.receive_bri(mn, decode_ipv6(pkt).payload, HA, mn_now())[0]
    forged = bytearray(good)
    forged[-1] ^= 1
    forged[4] = forged[5] = 0
    import struct
    from roam6.wire.checksum import checksum6
    struct.pack_into(">H", forged, 4, checksum6(HOA, HA, 135, forged))
    wrong_seq = bytearray(good)
    wrong_seq[9] ^= 0x55
    bad = [bytes(MNR.ipv6_packet(HOA, HA, 135, forged)),          # MAC wrong
           bytes(MNR.ipv6_packet(HOA, HA, 135, wrong_seq)),       # checksum (and seq) wrong
           bytes(MNR.ipv6_packet(HOA, HA, 135, good))[:60],       # truncated
           pkt]                                                   # a BRI echoed back
    for p in bad:
        assert rv.receive(p, ("udp4", "x", 1), 5) is True
    assert len(rv.pending) == 1 and rv.stats["bra_ignored"] == len(bad)
    assert rv.receive(bytes(MNR.ipv6_packet(HOA, HA, 135, good)), ("udp4", "x", 1), 6) is True
    assert rv.pending == {}


def test_bra_over_ip6_with_the_home_address_option():
    """ip6: the BRI goes to the CoA with a type 2 routing header, the BRA comes from the CoA with a
    Home Address option (its checksum over HoA -> HA): both sides agree."""
    cache, _log, rv, sa, b, _mn = setup()
    coa = ip6_from_text("2001:db8:a1::55")
    b.coa, b.transport, b.peer = coa, "ip6", ("2001:db8:a1::55", 0)
    mn = Registration(NAI, 4096, KEY, HOA, HA, ntp_offset_ms=0)
    mn.move(coa, "ip6", 0)
    mn.datagrams_to_send(0)
    rv.start(sa, b, 0)
    (pkt, dest), = cache._out
    p = decode_ipv6(pkt)
    assert dest == ("ip6", "2001:db8:a1::55", 0) and p.dst == coa and p.rh2 == HOA
    node = type("N", (), {})()
    node.reg, node.uplink, sent = mn, None, []
    node.log = lambda *a, **k: None
    tr = type("T", (), {"send_mh": lambda self, x: sent.append(bytes(x))})()
    node.uplink = type("U", (), {"active": tr})()
    MNR._last[0] = 0
    assert MNR.node_bri(node, p.payload, HA, mn_now()) is True
    bra, = sent
    assert bra[8:24] == coa and rv.is_revocation(bra)
    rv.receive(bra, ("ip6", "2001:db8:a1::55", 0), 5)
    assert rv.pending == {} and rv.stats["bra_received"] == 1
