"""The node's driver: events in the §7 log, BAs through packet_in, garbage of every shape into
packet_in never raising (a hostile packet must not stop the MN), and movement decisions through the
uplink (a real UDP socket on loopback) to the registration."""
import asyncio
import os

from roam6.crypto import mnha_auth_data
from roam6.node.config import parse_config
from roam6.node.driver import MobileNode
from roam6_codec import mhopts as mo
from roam6.wire.addr import ip6_from_text
from roam6.wire.ipv6 import build_ipv6
from roam6_codec.mh import BindingAck
from support import BU, BUL as S, fresh_state_file

KEY = "000102030405060708090a0b0c0d0e0f"
HOA = ip6_from_text("2001:db8:aa::100")
HA = ip6_from_text("2001:db8:aa::1")
V4COA = bytes([192, 0, 2, 50])


def make():
    path = fresh_state_file("r6drv")
    cfg = parse_config({"nai": "b@example.test", "spi": 4096, "key": KEY, "hoa": "2001:db8:aa::100",
                        "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1", "ha_ipv4": "198.18.1.2",
                        "transports": ["udp4"], "state_file": path})
    lines = []
    node = MobileNode(cfg, lambda ev, **f: lines.append((ev, f)))
    return node, lines, path


def feed(node, pkt):
    node.rx[:len(pkt)] = pkt
    node.packet_in(len(pkt))


def ba_for(req, status=0):
    opts = [mo.MNIdentifier(1, b"b@example.test"), mo.ReplayProtection(req.timestamp),
            mo.NATDetection(True, 110), mo.MobilityAuth(1, 4096, None)]
    coa = b"\0" * 10 + b"\xff\xff" + V4COA
    mh = BindingAck(status, 0, req.seq, 150, opts).encode(
        src=HA, dst=HOA, mac=lambda p: mnha_auth_data(bytes.fromhex(KEY), coa, HOA, p))
    return build_ipv6(HA, HOA, 135, mh)


def test_bu_ba_registered_in_the_event_log_and_state_saved():
    node, lines, path = make()
    assert lines[0][0] == "start" and lines[0][1]["hoa"] == "2001:db8:aa::100"
    node.reg.move(V4COA, "udp4", node.now())
    node.flush()                               # no transport open: the BU is built and logged
    seq, _at, ts = node.reg.sent[-1]
    req = BU((seq, 150, V4COA, ts, False))
    bu = [f for ev, f in lines if ev == "bu"]
    assert bu and bu[0]["seq"] == req.seq and bu[0]["coa"] == "192.0.2.50" and bu[0]["lifetime"] == 600
    with open(path) as f:
        assert '"seq"' in f.read()             # the reservation went to disk before the BU
    feed(node, ba_for(req))
    kinds = [ev for ev, f in lines]
    assert "ba" in kinds and "registered" in kinds and node.reg.bound
    ba = [f for ev, f in lines if ev == "ba"][0]
    assert ba["status"] == 0 and ba["seq"] == req.seq and ba["bu_ba_ms"] >= 0
    os.remove(path)


def test_garbage_into_packet_in_never_raises():
    node, lines, path = make()
    node.reg.move(V4COA, "udp4", node.now())
    node.flush()
    x = 12345
    for n in list(range(0, 100)) + [200, 600, 1280, 1500]:
        pkt = bytearray(n)
        for i in range(n):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            pkt[i] = (x >> 16) & 0xFF
        if n >= 40:
            pkt[0] = 0x60
            pkt[24:40] = HOA                   # addressed to the HoA, so it is parsed further
            pkt[6] = (135, 17, 58, 41, 0)[n % 5]
            pkt[4] = (n - 40) >> 8
            pkt[5] = (n - 40) & 0xFF
        feed(node, bytes(pkt))
    assert node.reg.state == 1            # still registering: nothing of that was a BA
    os.remove(path)


def test_decisions_go_through_the_uplink_to_the_registration():
    path = fresh_state_file("r6drv2")
    cfg = parse_config({"nai": "b@example.test", "spi": 4096, "key": KEY, "hoa": "2001:db8:aa::100",
                        "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1", "ha_ipv4": "127.0.0.2",
                        "transports": ["udp4"], "state_file": path})
    lines = []
    node = MobileNode(cfg, lambda ev, **f: lines.append((ev, f)))
    lo = bytes([127, 0, 0, 1])

    async def decide():                        # the uplink starts its reading task: a loop runs
        node.moved(lo, "udp4")
        node.moved(lo, "udp6")                 # not in the config: an error, nothing changes
        assert node.uplink.active.name == "udp4" and node.uplink.active.sent == 1
        node.at_home()                         # the HoA is not this host's: udp6 cannot open
        assert node.uplink.active.name == "udp4" and node.host.home is None
        node.detached()

    asyncio.run(decide())
    node.uplink.active.close()
    got = [(ev, f.get("state") or f.get("reason") or f.get("transport")) for ev, f in lines[1:]]
    assert got[:2] == [("link", "moved"), ("bu", "udp4")], got
    assert got[2][0] == "error" and "udp6" in got[2][1], got
    assert got[3][0] == "error" and "udp6 from 2001:db8:aa::100" in got[3][1], got
    assert got[4] == ("link", "detached") and len(got) == 5, got
    assert node.reg.state == S.DETACHED and node.reg.coa == lo
    os.remove(path)
