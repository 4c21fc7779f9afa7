"""Make before break at a switch of transport (node/switchover.py), on real loopback sockets: a
stand-in HA (two UDP sockets, udp4 and udp6) and the node's real uplink, driver and registration.
The HA keeps sending to the old CoA until it has the new BU: that still reaches the node; the
node's data goes over the old transport while the new BU waits (MAX_UPDATE_RATE), over the new
one once it has left; the BA closes the old one and nothing of it stays."""
import asyncio
import socket

from roam6.crypto import mnha_auth_data
from roam6.node.config import parse_config
from roam6.node.driver import MobileNode
from roam6.node.transport import UdpTransport, sockaddr
from roam6.wire.addr import ip6_from_text
from roam6.wire.binding import mac_coa
from roam6.wire.ipv6 import build_ipv6
from roam6_codec import mhopts as mo
from roam6_codec.mh import BindingAck
from support import fresh_state_file

KEY = "000102030405060708090a0b0c0d0e0f"
HOA = ip6_from_text("2001:db8:aa::100")
HA = ip6_from_text("2001:db8:aa::1")
LO4 = bytes([127, 0, 0, 1])
LO6 = bytes(15) + b"\x01"


def _bound(family, host):
    """A non-blocking UDP socket on loopback and its port (MicroPython has no getsockname)."""
    import random
    for _ in range(20):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setblocking(False)
        port = 40000 + random.getrandbits(13)
        try:
            s.bind(sockaddr(host, port))
            return s, port
        except OSError:
            s.close()
    raise OSError("no free loopback port")


def _recv(s):
    """(data, address) of every datagram waiting on s."""
    got = []
    while True:
        try:
            got.append(s.recvfrom(2048))
        except OSError:
            return got


def _ba(reg, seq, ts, coa):
    opts = [mo.MNIdentifier(1, b"b@example.test"), mo.ReplayProtection(ts), mo.MobilityAuth(1, 4096, None)]
    mh = BindingAck(0, 0, seq, 150, opts).encode(
        src=HA, dst=HOA, mac=lambda p: mnha_auth_data(bytes.fromhex(KEY), mac_coa(coa), HOA, p))
    return build_ipv6(HA, HOA, 135, mh)


def _data(tag):
    """An inner IPv6 packet to the HoA (UDP, no checksum checked by the stand-in's reader)."""
    return build_ipv6(ip6_from_text("2001:db8:ff::9"), HOA, 17, bytes([0, 9, 0, 9, 0, 9, 0, 0]) + tag)


def test_switch_keeps_the_old_transport_until_the_ba():
    path = fresh_state_file("r6mbb")
    cfg = parse_config({"nai": "b@example.test", "spi": 4096, "key": KEY, "hoa": "2001:db8:aa::100",
                        "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1", "ha_ipv4": "127.0.0.1",
                        "transports": ["udp6", "udp4"], "state_file": path})
    lines = []
    node = MobileNode(cfg, lambda ev, **f: lines.append((ev, f)))
    ha4, p4 = _bound(socket.AF_INET, "127.0.0.1")
    ha6, p6 = _bound(socket.AF_INET6, "::1")
    up = node.uplink
    up.transports["udp4"] = t4 = UdpTransport("udp4", "127.0.0.1", p4)   # the stand-in HA's ports
    up.transports["udp6"] = t6 = UdpTransport("udp6", "::1", p6)
    seen = []                                  # the inner packets the node read, in order
    six = node.packet_in

    def packet_in(n):
        seen.append(bytes(node.rx[:n]))
        six(n)
    node.packet_in = packet_in                 # (before any open: the reading tasks take it)
    reg = node.reg

    async def pause():
        for _ in range(20):                    # loopback: the reading tasks' turn
            await asyncio.sleep(0.002)

    def ba_now(coa):
        seq, _at, ts = reg.sent[-1]
        pkt = _ba(reg, seq, ts, coa)
        node.rx[:len(pkt)] = pkt
        six(len(pkt))

    async def run():
        node.moved(LO4, "udp4")                                  # BU 1 on udp4
        (bu1, mn4), = _recv(ha4)
        ba_now(LO4)
        assert reg.bound and up.old is None
        # a preference change (the IPv4 CoA still on): udp6, BU 2 leaves at once
        node.moved(LO6, "udp6")
        assert up.active is t6 and up.old is not None and up.old[0] is t4
        assert len(_recv(ha6)) == 1
        ha4.sendto(_data(b"late4"), mn4)       # the HA, without the new BU yet: to the old CoA
        await pause()
        assert _data(b"late4") in seen, "a packet to the old CoA was lost at the switch"
        assert node.send_packet(_data(b"up6")) and [d for d, _ in _recv(ha6)] == [_data(b"up6")]
        # back to udp4 (BU 3) and to udp6 again: BU 4 waits (MAX_UPDATE_RATE: 3 a second)
        node.moved(LO4, "udp4")
        (_bu3, mn4), = _recv(ha4)
        assert t6.sock is not None and up.old[0] is t6      # the one before is kept now
        node.moved(LO6, "udp6")
        assert _recv(ha6) == [] and t4.sock is not None and up.old[0] is t4
        assert node.send_packet(_data(b"up4")), "data has no way while the BU waits"
        assert [d for d, _ in _recv(ha4)] == [_data(b"up4")]   # over udp4, still bound at the HA
        ha4.sendto(_data(b"down4"), mn4)
        await pause()
        assert _data(b"down4") in seen
        node._ms += 1000                        # a second later (the node's clock): BU 4 leaves
        reg.handle_timer(node.now())
        node.flush()
        assert len(_recv(ha6)) == 1 and up.old is not None
        assert node.send_packet(_data(b"up6b")) and [d for d, _ in _recv(ha6)] == [_data(b"up6b")]
        kept = up.old[1]
        ba_now(LO6)                             # the BA: the old transport closed, its task ended
        assert reg.bound and up.old is None and t4.sock is None and t6.sock is not None
        assert len(up.tasks) == 1
        await pause()
        assert kept and all(t.done() for t in kept)

    try:
        asyncio.run(run())
    finally:
        for t in (t4, t6):
            t.close()
        ha4.close()
        ha6.close()
    import os
    os.remove(path)


def test_the_kept_transport_is_closed_by_the_bound_without_a_ba():
    path = fresh_state_file("r6mbb2")
    cfg = parse_config({"nai": "b@example.test", "spi": 4096, "key": KEY, "hoa": "2001:db8:aa::100",
                        "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1", "ha_ipv4": "127.0.0.1",
                        "transports": ["udp6", "udp4"], "state_file": path})
    node = MobileNode(cfg, lambda ev, **f: None)
    ha4, p4 = _bound(socket.AF_INET, "127.0.0.1")
    ha6, p6 = _bound(socket.AF_INET6, "::1")
    up = node.uplink
    up.transports["udp4"] = t4 = UdpTransport("udp4", "127.0.0.1", p4)
    up.transports["udp6"] = t6 = UdpTransport("udp6", "::1", p6)

    async def run():
        node.moved(LO4, "udp4")
        node.moved(LO6, "udp6")                 # no BA ever (the old link lost, say)
        assert up.old[0] is t4 and t4.sock is not None
        node._ms += 1000                        # the first retransmission: still kept
        node.reg.handle_timer(node.now())
        node.flush()
        assert up.old is not None and t4.sock is not None
        node._ms += 2000                        # past the bound: closed at the next one
        node.reg.handle_timer(node.now())
        node.flush()
        assert up.old is None and t4.sock is None and t6.sock is not None

    try:
        asyncio.run(run())
    finally:
        for t in (t4, t6):
            t.close()
        ha4.close()
        ha6.close()
    import os
    os.remove(path)
