"""The MN's side of the Home Agent Switch (RFC 5142, docs/PROTOCOL-NOTES.md §11.14) and its list of
HAs (CONTRACTS.md §5): the host's codec (roam6_codec) builds the messages, the oracle; the node's
real demultiplexer takes them. An authenticated switch moves the node to the named HA; a forged,
malformed or replayed one is ignored and counted."""
import asyncio
import os

from roam6.crypto import mnha_auth_data
from roam6.node import haswitch
from roam6.node.config import ConfigError, parse_config
from roam6.node.driver import MobileNode
from roam6.wire.addr import ip6_from_text
from roam6.wire.ipv6 import build_ipv6
from roam6_codec import mhopts as mo
from roam6_codec.mh import BindingAck, HomeAgentSwitch
from support import fresh_state_file, raises

KEY = "000102030405060708090a0b0c0d0e0f"
HOA = ip6_from_text("2001:db8:aa::100")
HA = ip6_from_text("2001:db8:aa::1")
HA2 = ip6_from_text("2001:db8:aa::2")
V4COA = bytes([192, 0, 2, 50])
NTP0 = 3900000000 << 32


def switch_mh(targets=(HA2,), ts=NTP0, spi=4096, key=KEY, flip=False, auth=True, src=HA):
    opts = [mo.BindingRefreshAdvice(10)]
    if ts is not None:
        opts.append(mo.ReplayProtection(ts))
    if auth:
        opts.append(mo.MobilityAuth(1, spi, None))
    k = bytes.fromhex(key)

    def mac(p):
        m = bytearray(mnha_auth_data(k, HOA, HOA, p))
        m[-1] ^= 1 if flip else 0        # a forged MAC (the MH checksum stays right)
        return bytes(m)
    return HomeAgentSwitch(list(targets), opts).encode(src=src, dst=HOA, mac=mac if auth else None)


def test_parse_switch_reads_an_authentic_one():
    r = haswitch.parse_switch(switch_mh((HA2, HA)), bytes.fromhex(KEY), 4096, HOA)
    assert r == ([HA2, HA], 10, NTP0)


def test_parse_switch_refuses_forged_or_malformed():
    k = bytes.fromhex(KEY)
    assert haswitch.parse_switch(switch_mh(flip=True), k, 4096, HOA) is None        # MAC
    assert haswitch.parse_switch(switch_mh(spi=4097), k, 4096, HOA) is None         # another SA
    assert haswitch.parse_switch(switch_mh(key="ff" * 16), k, 4096, HOA) is None    # another key
    assert haswitch.parse_switch(switch_mh(ts=None), k, 4096, HOA) is None          # no timestamp
    assert haswitch.parse_switch(switch_mh(auth=False), k, 4096, HOA) is None       # unsigned
    m = bytearray(switch_mh())
    m[6] = 9                                                                         # # of Addresses
    assert haswitch.parse_switch(m, k, 4096, HOA) is None
    assert haswitch.parse_switch(switch_mh()[:30], k, 4096, HOA) is None            # truncated
    assert haswitch.parse_switch(switch_mh() + b"\0\0", k, 4096, HOA) is None       # auth not last


def make(name, extra=None):
    path = fresh_state_file(name)
    raw = {"nai": "b@example.test", "spi": 4096, "key": KEY, "hoa": "2001:db8:aa::100",
           "home_prefix": "2001:db8:aa::/64", "ha": ["2001:db8:aa::1", "2001:db8:aa::2"],
           "ha_ipv4": ["198.18.1.2", "198.18.1.3"], "transports": ["udp4"], "state_file": path}
    raw.update(extra or {})
    cfg = parse_config(raw)
    lines = []
    node = MobileNode(cfg, lambda ev, **f: lines.append((ev, f)))
    node.send_packet = lambda pkt: True
    opened = []

    def fake_open(name, coa):           # test double: 192.0.2.50 is no address of this machine
        opened.append((name, coa, node.cfg.ha_ipv4))
        return None if len(opened) > 100 else object()
    node.uplink.open = fake_open
    return node, lines, path, opened


def feed(node, pkt):
    node.rx[:len(pkt)] = pkt
    node.packet_in(len(pkt))


def ba(node, ha):
    seq, _at, ts = node.reg.sent[-1]
    opts = [mo.MNIdentifier(1, b"b@example.test")] + ([mo.ReplayProtection(ts)] if ts is not None else [])
    opts.append(mo.MobilityAuth(1, 4096, None))
    coa = b"\0" * 10 + b"\xff\xff" + V4COA
    mh = BindingAck(0, 0, seq, 150, opts).encode(
        src=ha, dst=HOA, mac=lambda p: mnha_auth_data(bytes.fromhex(KEY), coa, HOA, p))
    return build_ipv6(ha, HOA, 135, mh)


def _rm(path):
    try:
        os.remove(path)
    except OSError:
        pass


def count(lines, ev):
    return len([1 for e, _f in lines if e == ev])


def test_config_takes_a_list_of_has():
    node, _lines, path, _o = make("r6hasw0")
    assert node.cfg.ha == HA and node.cfg.ha_ipv4 == bytes([198, 18, 1, 2])
    assert node.cfg.has == [(HA, bytes([198, 18, 1, 2])), (HA2, bytes([198, 18, 1, 3]))]
    assert raises(ConfigError, make, "r6hasw1", {"ha_ipv4": ["198.18.1.2"]}).field == "ha"
    assert raises(ConfigError, make, "r6hasw2", {"ha": ["2001:db8:aa::1", "nonsense"]}).field == "ha"
    _rm(path)


def test_switch_moves_the_node_forged_and_replayed_ignored():
    async def main():
        node, lines, path, opened = make("r6hasw3")
        reg = node.reg
        reg.timestamps = False
        reg.last_ts = None               # no RFC 4285 clock check here (the MN's clock is the test's)
        reg.move(V4COA, "udp4", node.now())
        node.flush()
        feed(node, ba(node, HA))
        assert reg.bound
        n0 = haswitch.IGNORED[0]
        haswitch._last[0] = 0
        feed(node, build_ipv6(HA, HOA, 135, switch_mh(flip=True)))       # forged: nothing moves
        feed(node, build_ipv6(HA2, HOA, 135, switch_mh(src=HA2)))         # from a stranger
        assert reg.ha == HA and haswitch.IGNORED[0] == n0 + 2 and count(lines, "ha_switch") == 0
        feed(node, build_ipv6(HA, HOA, 135, switch_mh()))
        for _ in range(5):               # the old HA's deregistration, then the move: tasks
            await asyncio.sleep(0)
        assert reg.ha == HA2 and node.cfg.ha_ipv4 == bytes([198, 18, 1, 3])
        assert count(lines, "ha_switch") == 1 and opened[-1] == ("udp4", V4COA, bytes([198, 18, 1, 3]))
        assert not reg.bound and reg.sent                                  # a BU to the new HA
        feed(node, ba(node, HA2))
        assert reg.bound
        feed(node, build_ipv6(HA2, HOA, 135, switch_mh(targets=(HA,), src=HA2)))   # replayed ts
        assert reg.ha == HA2 and haswitch.IGNORED[0] == n0 + 3
        _rm(path)
    asyncio.run(main())


def test_liveness_moves_to_the_next_ha():
    async def main():
        node, lines, path, opened = make("r6hasw4", {"ha_liveness_s": 1})
        reg = node.reg
        reg.move(V4COA, "udp4", node.now())
        node.flush()
        asyncio.create_task(haswitch.watch(node))
        for _ in range(12):
            await asyncio.sleep(0.2)
            if reg.ha == HA2:
                break
        await asyncio.sleep(0)
        assert reg.ha == HA2 and count(lines, "ha_switch") == 1
        _rm(path)
    asyncio.run(main())


def test_liveness_waits_while_a_switch_decides():
    # the new HA refused the BU made before the break (134: the back-off at its cap, as if it were
    # silent): while the make-before-break switch (haswitchmbb) runs its fallback, the HA list's
    # watch must not move the node on to the next HA (the old one); once it is done, it may
    async def main():
        node, lines, path, opened = make("r6hasw5")
        reg = node.reg
        reg.move(V4COA, "udp4", node.now())
        node.flush()
        reg.timeout_ms = reg.max_bindack_ms           # what a 134 leaves (core/bul.py)
        haswitch._busy[0] = 1
        asyncio.create_task(haswitch.watch(node))
        await asyncio.sleep(0.6)
        assert reg.ha == HA and count(lines, "ha_switch") == 0
        haswitch._busy[0] = 0
        for _ in range(6):
            await asyncio.sleep(0.1)
            if reg.ha == HA2:
                break
        assert reg.ha == HA2 and count(lines, "ha_switch") == 1
        _rm(path)
    asyncio.run(main())
