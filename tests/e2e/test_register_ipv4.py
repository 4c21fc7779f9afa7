"""The IPv4 home address end to end (RFC 5555, issue 15): the real MicroPython MN asks for an IPv4
HoA (0.0.0.0), the real `roam6 ha` assigns one from its pool; IPv4 UDP both ways and ping from the
correspondent over IPv4 only, over udp4 (IPv4 CoA behind NAT: IPv4-in-UDP), udp6 (IPv6 CoA:
IPv4-in-IPv6-UDP) and ip6 (IPv4-in-IPv6, next header 4); proxy ARP answers for it on the home link;
a roam moves both HoAs in one BU;
an inner IPv4 source that is not a bound IPv4 HoA is dropped and logged; the lease survives an
HA restart. (`roam6 hil run register --family ipv4` is the bench form of the first checks.)"""
import json
import secrets
import signal
import subprocess
import sys
import time

import pytest

from roam6_hil.scenarios import register as R
from roam6_hil.topology import CN_ADDR4, HA_IPV4, STATIC

MN_HEAP = "64K"
HOA4 = "198.18.50.100"            # the first address of the bench's pool (topology.HOME4_POOL)

def cn4_traffic(bench, ns="cn", n=10):
    return R.cn4_traffic(bench, HOA4, ns, n)


def ping4(bench, ns="cn", count=3):
    return R.ping4(bench, HOA4, ns, count)


def start(bench, transport, key):
    # a proxy ARP entry a killed HA would leave behind: the HA removes it at start
    bench.ip("ha", "neigh", "add", "proxy", "198.18.50.150", "dev", "home")
    ha = R.start_ha(bench, R.write_ha_config(bench, key, ipv4_home=True))
    assert "198.18.50.150" not in bench.ip("ha", "-4", "neigh", "show", "proxy", "dev", "home").stdout
    _net, coa = R.attach_for(bench, transport)
    path = R.write_mn_config(bench, key, transport, sensor_interval_ms=0)
    with open(path) as f:
        cfg = json.load(f)
    cfg["ipv4_hoa"] = "0.0.0.0"                       # ask the HA for one
    with open(path, "w") as f:
        json.dump(cfg, f)
    mn = R.start_mn(bench, path, heap="100K" if transport == "ip6" else MN_HEAP,   # (ip6: unix only)
                    extra=["--coa", coa, "--transport", transport])
    return ha, mn


def bound4(mn, ha, timeout=10):
    ev = mn.wait_for(lambda e: e.get("ev") in ("ipv4", "error"), timeout)
    assert ev is not None and ev["ev"] == "ipv4" and ev["status"] == 0, (ev, mn.tail())
    assert ev["hoa4"] == HOA4
    hb = ha.wait_for(lambda e: e.get("ev") == "ipv4_bound", 3)
    assert hb and hb["hoa4"] == HOA4, ha.tail()
    return ev


@pytest.mark.parametrize("transport", ["udp4", "udp6", "ip6"])
def test_ipv4_hoa_udp_both_ways_and_ping(bench, transport):
    key = secrets.token_hex(16)
    ha, mn = start(bench, transport, key)
    try:
        bound4(mn, ha)
        t = cn4_traffic(bench)
        assert t["echoed"] >= 9 and t["from"] == [HOA4], t     # CN -> IPv4 HoA -> back from it
        assert ping4(bench) >= 2
        # the IPv6 HoA works beside it
        assert R.cn_traffic(bench, n=10, listen_s=2.5)["echoed"] >= 9
        # the HA's kernel state: a /32 into the TUN and a proxy ARP entry on the home link
        assert "r6tun" in bench.ip("ha", "-4", "route", "show", HOA4).stdout
        assert HOA4 in bench.ip("ha", "-4", "neigh", "show", "proxy", "dev", "home").stdout
    finally:
        mn.stop()
        ha.stop()
    # a clean stop takes the route and the proxy entry away
    assert HOA4 not in bench.ip("ha", "-4", "neigh", "show", "proxy", "dev", "home").stdout


FORGE4 = r"""
import socket, struct, sys
src, dst = socket.inet_aton(sys.argv[1]), socket.inet_aton(sys.argv[2])
def csum(b):
    s = sum(struct.unpack(">%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
udp = struct.pack(">HHHH", 9002, 9555, 14, 0) + b"forged"        # UDP checksum 0: none (IPv4)
hdr = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst))
hdr[10:12] = struct.pack(">H", csum(bytes(hdr)))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[3], 0))
s.sendto(bytes(hdr) + udp, (sys.argv[4], 4191))
"""

LISTEN = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9555)); s.settimeout(2.5)
try:
    print(s.recvfrom(100)[0])
except socket.timeout:
    print("nothing")
"""

LINK_HEAP = "100K"   # the MN with the netlink link adapter (as test_register's roaming test)


def test_roams_move_both_hoas_proxy_arp_spoofed_source_and_ha_restart(bench):
    key = secrets.token_hex(16)
    ha = R.start_ha(bench, R.write_ha_config(bench, key, nat_refresh=4, ipv4_home=True))
    R.attach_for(bench, "udp4")
    path = R.write_mn_config(bench, key, "udp4", sensor_interval_ms=0)
    with open(path) as f:
        cfg = json.load(f)
    cfg.update({"transports": ["udp6", "udp4"], "ipv4_hoa": "0.0.0.0"})
    with open(path, "w") as f:
        json.dump(cfg, f)
    mn = R.start_mn(bench, path, heap=LINK_HEAP)
    ha2 = None
    try:
        bound4(mn, ha)
        # a neighbour on the home link reaches the IPv4 HoA through the HA's proxy ARP
        bench.ns.add("h4")
        subprocess.run(["ip", "link", "add", "name", "eth0", "netns", bench.full("h4"), "type", "veth", "peer",
                        "name", "toh4", "netns", bench.full("air")], check=True, capture_output=True)
        bench.ip("air", "link", "set", "toh4", "master", "airH", "up")
        bench.ns.batch("h4", ["addr add 198.18.50.7/24 dev eth0", "link set eth0 up", "link set lo up"])
        assert ping4(bench, "h4") >= 2
        neigh = bench.ip("h4", "neigh", "show", HOA4).stdout
        assert "02:00:00:00:aa:01" in neigh.lower(), neigh         # the HA's home bridge answered
        # an IPv4 source that is no bound IPv4 HoA, tunnelled to the HA: dropped and logged
        lis = bench.popen("cn", [sys.executable, "-c", LISTEN], stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        bench.run("board", [sys.executable, "-c", FORGE4, "198.18.50.150", CN_ADDR4,
                            STATIC["apB"]["v4"][0].split("/")[0], HA_IPV4], timeout=10)
        assert lis.communicate(timeout=10)[0].strip() == "nothing"
        drop = ha.wait_for(lambda e: e.get("ev") == "dropped" and "inner IPv4 source" in e.get("reason", ""), 3)
        assert drop and "198.18.50.150" in drop["reason"], ha.tail()
        # roams: apA (IPv6 CoA: IPv4-in-IPv6) then apB again (IPv4 + NAT); one BU moves both HoAs
        for net, tr in (("apA", "udp6"), ("apB", "udp4")):
            mn.mark()
            ha.mark()
            bench.attach(net)
            reg = mn.wait_for(lambda e: e.get("ev") in ("registered", "error"), 10)
            assert reg is not None and reg["ev"] == "registered" and reg["transport"] == tr, mn.tail()
            moved = ha.wait_for(lambda e: e.get("ev") == "binding_moved", 3)
            assert moved and moved["transport"] == tr
            assert not [e for e in ha.events if e.get("ev", "").startswith("ipv4_")]   # the same IPv4 HoA
            t = cn4_traffic(bench)
            assert t["echoed"] >= 9 and t["from"] == [HOA4], (net, t)
        # the HA restarts: the lease is kept, the MN gets the same IPv4 HoA back
        ha.stop()
        mn.mark()
        ha2 = R.start_ha(bench, R.write_ha_config(bench, key, nat_refresh=4, ipv4_home=True))
        ev = mn.wait_for(lambda e: e.get("ev") == "ipv4", 40)
        assert ev is not None and ev["status"] == 0 and ev["hoa4"] == HOA4, mn.tail()
        assert cn4_traffic(bench)["echoed"] >= 9
        # SIGHUP with a keys file giving the board a static IPv4 HoA: a bad one (outside the
        # prefix) is refused whole; a good one takes the pool address away at once, and the MN
        # has the new one after two BUs (130 for the old, then its configured 0.0.0.0 again)
        keys = bench.path("ha", "ha-keys.json")
        with open(keys) as f:
            doc = json.load(f)
        for v4, then in (("10.1.2.3", "error"), ("198.18.50.30", "keys_reloaded")):
            doc["sas"][0]["ipv4_hoa"] = v4
            with open(keys, "w") as f:
                json.dump(doc, f)
            ha2.mark()
            ha2.p.send_signal(signal.SIGHUP)
            ev = ha2.wait_for(lambda e: e.get("ev") == then, 5)
            assert ev is not None, ha2.tail()
            if then == "error":
                assert "outside ipv4_home_prefix" in ev["reason"] and ha2.alive()
                assert not [e for e in ha2.events if e.get("ev", "").startswith("ipv4_")]   # nothing changed
        rel = ha2.wait_for(lambda e: e.get("ev") == "ipv4_released", 3)
        assert rel and rel["reason"] == "reassigned" and rel["hoa4"] == HOA4, ha2.tail()
        got = []
        for net in ("apA", "apB"):
            mn.mark()
            bench.attach(net)
            assert mn.wait_for(lambda e: e.get("ev") in ("registered", "error"), 10)["ev"] == "registered"
            ev = mn.wait_for(lambda e: e.get("ev") == "ipv4", 3)
            got.append(ev and (ev["status"], ev["hoa4"]))
        assert got == [(130, None), (0, "198.18.50.30")], (got, mn.tail())
        assert R.cn4_traffic(bench, "198.18.50.30")["echoed"] >= 9
    finally:
        mn.stop()
        if ha2 is not None:
            ha2.stop()
        ha.stop()
