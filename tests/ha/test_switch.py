"""The HA's Home Agent Switch (ha/switch.py): the signed message, read back by the MN's own
decoder (roam6.node.haswitch.parse_switch) and the host codec; the Switcher's pacing (RFC 5142
INITIAL-/MAX-HA-SWITCH-TIMEOUT, 1/s per device), end on deregistration, deadline."""
from roam6.node.haswitch import parse_switch
from roam6_codec.mh import HomeAgentSwitch, decode_mh
from roam6.wire.ipv6 import decode_ipv6

from ha_helpers import HA, HOA, KEY, NAT_SRC, SPI, T0, a6, bu4, exchange, make_cache
from roam6_host.ha.switch import Switcher

HA2 = a6("2001:db8:aa::2")


def bound_cache():
    c = make_cache(dad_ms=0)
    exchange(c, bu4(1), NAT_SRC, T0, wall=T0)
    c.handle_timer(T0 + 10)
    c.datagrams_to_send(T0 + 10)
    assert HOA in c.bindings
    return c


def test_switch_is_signed_and_the_mn_reads_it():
    c = bound_cache()
    sw = Switcher(c)
    sw.start([HOA], [HA2], T0 + 100, 60000)
    (dgram, dest), = sw.datagrams_to_send(T0 + 100, T0 + 100)
    assert dest == NAT_SRC
    pkt = decode_ipv6(dgram)
    assert pkt.src == HA and pkt.dst == HOA and pkt.nh == 135
    msg = decode_mh(pkt.payload)
    assert isinstance(msg, HomeAgentSwitch) and msg.addresses == [HA2]
    targets, bra, ts = parse_switch(pkt.payload, KEY, SPI, HOA)
    assert targets == [HA2] and bra == 149 and ts >> 32 == (T0 + 100) // 1000 + 2208988800
    assert parse_switch(pkt.payload, bytes(16), SPI, HOA) is None       # another key: refused


def test_pacing_retransmission_and_end():
    c = bound_cache()
    sw = Switcher(c)
    t = T0 + 100
    sw.start([HOA], [HA2], t, 60000)
    sent = []
    now = t
    while now < t + 60000:
        if sw.datagrams_to_send(now, now):
            sent.append(now - t)
        nxt = sw.get_timer()
        if nxt is None:
            break
        now = max(now + 1, nxt)
    assert sent[:4] == [0, 5000, 15000, 35000] and sent[4] == 55000      # 5 s, doubling, 20 s cap
    p = sw.progress(now)
    assert p["moved"] == 0 and p["not_moved"] == ["2001:db8:aa::100"] and p["over"]

    c2 = bound_cache()
    sw2 = Switcher(c2)
    sw2.start([HOA], [HA2], t, 60000)
    assert len(sw2.datagrams_to_send(t, t)) == 1
    del c2.bindings[HOA]                                  # the MN deregistered here
    p = sw2.progress(t + 10)
    assert p["moved"] == 1 and p["not_moved"] == [] and p["over"] and sw2.get_timer() is None
    assert sw2.datagrams_to_send(t + 5000, t + 5000) == []


def test_cli_mistakes_are_one_line_errors():
    import subprocess
    import sys
    for args, want in ((["--all"], "--to"), (["--all", "--nai", "x@y", "--to", "2001:db8:aa::2"], "exactly one"),
                       (["--to", "2001:db8:aa::2"], "exactly one"),
                       (["--all", "--to", "2001:db8:aa::2", "--tun", "r6nosuchtun"], "no home agent")):
        r = subprocess.run([sys.executable, "-m", "roam6_host", "ha", "switch"] + args, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode != 0 and want in r.stderr + r.stdout and "Traceback" not in r.stderr, (args, r.stderr)
