"""The real MN (MicroPython unix port, firmware from the tree) with "security": "ipsec" and
"more_hoas" (node/ipsecmore.py): after the primary HoA's CHILD_SA it asks one CREATE_CHILD_SA per
further HoA (transport mode, TSi = that HoA, protocol 135) and registers each HoA over its own SA,
against the HA's own IPsec side (ha/ipsecmh.py with the real BindingCache: the keys file's
"more_hoas" device), over UDP 4500 / 4191 on a random loopback address. After both HoAs are bound
the MN moves to another care-of address (127.0.0.2): both bindings follow. A ping to the further
HoA through the tunnel is answered from it (its own Host). Loopback only.
The config refusals (no IPsec, a board without the module) are in tests/firmware/test_ipsecmore_config.py."""
import json
import os
import random
import socket
import struct
import sys
import threading
import time

from roam6.wire.binding import ipv6_packet
from roam6.wire.checksum import checksum6

from roam6_host.footprint_run import events_of, run_until
from roam6_host.ha.cache import BindingCache
from roam6_host.ha.ipsecconf import IpsecPeer
from roam6_host.ha.ipsecmh import IpsecHA

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAI = "mn-more@example.test"
HOA, HOA_B, HA6 = "2001:db8:aa::100", "2001:db8:aa::101", "2001:db8:aa::1"


def a6(t):
    return socket.inet_pton(socket.AF_INET6, t)


class LoopbackHA:
    """ha/ipsecmh.IpsecHA + BindingCache on UDP 4500 (IKE) and 4191 (the udp4 tunnel), one thread."""

    def __init__(self, psk, ha_v4):
        self.cache = BindingCache(a6(HA6), a6(HA6)[:8], {})
        self.ipsec = IpsecHA([IpsecPeer(NAI.encode(), psk, a6(HOA), [a6(HOA_B)])], a6(HA6), "ha.test", self.now())
        for sa in list(self.ipsec.cache_sas.values()) + list(self.ipsec.more_sas.values()):
            self.cache.add_sa(sa)
        self.tun = self                  # what on_signal writes payload into (the HA's TUN)
        self.socks = {}
        for port in (4191, 4500):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((ha_v4, port))
            s.settimeout(0.02)
            self.socks[port] = s
        self.peer4191 = None
        self.echo_replies = []
        self.lock = threading.Lock()
        self.stop = False
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    @staticmethod
    def now():
        return time.monotonic_ns() // 1_000_000

    def _flush(self, now):
        pass

    def write(self, inner):              # payload out of the tunnel: keep the echo replies
        if len(inner) >= 48 and inner[6] == 58 and inner[40] == 129:
            self.echo_replies.append(bytes(inner[8:24]))

    def _loop(self):
        while not self.stop:
            for port, s in list(self.socks.items()):
                try:
                    data, peer = s.recvfrom(4096)
                except socket.timeout:
                    continue
                except OSError:
                    return
                now = self.now()
                with self.lock:
                    if port == 4500:
                        self.ipsec.ike_receive(data, peer, 4500, now)
                        outs = [(d, p) for d, p, _port in self.ipsec.ike_datagrams(now)]
                    else:
                        self.peer4191 = peer
                        if not self.ipsec.on_signal(self, data, ("udp4", peer[0], peer[1]), now):
                            self.write(data)     # payload in clear (as the HA's driver forwards it)
                        outs = [(d, (dst[1], dst[2])) for d, dst in self.cache.datagrams_to_send(now)]
                for d, p in outs:
                    s.sendto(bytes(d), p)

    def ping(self, hoa, ident):
        """An ICMPv6 echo request from a correspondent to `hoa`, down the tunnel as the HA would."""
        src = a6("2001:db8:cc::9")
        icmp = bytearray(struct.pack(">BBHHH", 128, 0, 0, ident, 1) + b"ping")
        struct.pack_into(">H", icmp, 2, checksum6(src, hoa, 58, icmp))
        self.socks[4191].sendto(bytes(ipv6_packet(src, hoa, 58, icmp)), self.peer4191)

    def close(self):
        self.stop = True
        self.t.join(2)
        for s in self.socks.values():
            s.close()


MOVER = r"""
import sys
import asyncio
from roam6.node import app
from roam6.wire.addr import ip4_from_text
rc, cfg, plan = app.setup(sys.argv[1:])
from roam6.node.driver import MobileNode
node = MobileNode(cfg)
main = node._main
log = node.log
seen = []

def logged(ev, **f):
    log(ev, **f)
    if ev == "registered" or (ev == "hoa_reg" and f["event"] == "registered"):
        seen.append(ev)
node.log = logged

async def mover():
    while not ("registered" in seen and "hoa_reg" in seen):
        await asyncio.sleep_ms(20)
    print('{"ev": "test_moving"}')
    node.moved(ip4_from_text("127.0.0.2"), "udp4")

async def both(plan):
    asyncio.create_task(mover())
    await main(plan)
node._main = both
node.start(plan)
"""


def test_real_mn_registers_two_home_addresses_and_moves_both(tmp_path):
    ha_v4 = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(1, 254), random.randint(2, 254))
    psk = os.urandom(16)
    cfg = {"nai": NAI, "security": "ipsec", "psk": psk.hex(), "hoa": HOA, "more_hoas": [HOA_B],
           "home_prefix": "2001:db8:aa::/64", "ha": HA6, "ha_ipv4": ha_v4, "transports": ["udp4"],
           "state_file": str(tmp_path / "mn.state")}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "mover.py").write_text(MOVER)
    ha = LoopbackHA(psk, ha_v4)
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    path = [".frozen", os.path.join(ROOT, "firmware"), os.path.join(ROOT, "boards", "unix")]
    env = dict(os.environ, MICROPYPATH=":".join(path))
    pinged = []

    def done(ev):
        regs = [e for e in ev if e["ev"] == "hoa_reg" and e["event"] == "registered"]
        if len(regs) >= 2 and not pinged:         # both bindings followed the move: ping HoA B
            pinged.append(1)
            ha.ping(a6(HOA_B), 7)
        return len(regs) >= 2 and bool(ha.echo_replies)
    try:
        ev, lines = run_until([exe, "-X", "heapsize=256K", str(tmp_path / "mover.py"),
                               str(tmp_path / "config.json"), "--coa", "127.0.0.1"], str(tmp_path), 20,
                              done, env=env)
    finally:
        ha.close()
    out = "".join(lines[-20:])
    kinds = [e["ev"] for e in ev]
    assert "test_moving" in kinds, out
    ike = [e for e in ev if e["ev"] == "ike"]
    hoa_up = [e for e in ike if e["state"] == "hoa_up"]
    assert hoa_up and hoa_up[0]["hoa"] == HOA_B, out
    # HoA B's own SA, not the primary's
    child = [e for e in ike if e["state"] == "child_up"][0]
    assert hoa_up[0]["spi_in"] != child["spi_in"] and hoa_up[0]["spi_out"] != child["spi_out"]
    b_regs = [e for e in ev if e["ev"] == "hoa_reg" and e["event"] == "registered"]
    assert len(b_regs) >= 2 and all(e["hoa"] == HOA_B for e in b_regs), out
    assert [e for e in ev if e["ev"] == "registered"], out
    # the HA: two bindings, each under its own SA, both at the new care-of address after the move
    b1, b2 = ha.cache.bindings[a6(HOA)], ha.cache.bindings[a6(HOA_B)]
    assert b1.spi == ha.ipsec.cache_sas[NAI.encode()].spi
    assert b2.spi == ha.ipsec.more_sas[(NAI.encode(), a6(HOA_B))].spi and b1.spi != b2.spi
    assert b1.peer[0] == "127.0.0.2" and b2.peer[0] == "127.0.0.2", (b1.peer, b2.peer)
    assert ha.ipsec.counts["esp_wrong_sa"] == 0
    # the further HoA answers ICMPv6 echo from itself, through the tunnel
    assert ha.echo_replies == [a6(HOA_B)], out
    assert not [e for e in ev if e["ev"] == "error"], out
    assert events_of(lines) == ev
