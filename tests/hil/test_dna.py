"""The unix board addressing itself with Detecting Network Attachment (boards/unix/dna.py) against
a real dnsmasq (DHCPv4, rapid commit, authoritative), under the real MicroPython unix port: first
visit, revisit (RFC 4436 unicast ARP confirms, INIT-REBOOT behind), and the failure paths: the
address given away meanwhile (NAK), the router changed behind the same key, a stale entry."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from roam6_hil.daemons import dnsmasq_conf
from roam6_host.paths import BOARDS_DIR, FIRMWARE_DIR, micropython_exe

from nshelp import TestNamespaces

HERE = os.path.dirname(os.path.abspath(__file__))
ROUTER_MAC = "02:00:00:00:b1:01"
OTHER = "192.0.2.150"        # reserved in dnsmasq for another host: never ours


@pytest.fixture(scope="module")
def lan(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("namespace tests need root; `make test` runs as root")
    if not shutil.which("dnsmasq"):
        pytest.fail("dnsmasq is not installed: apt-get install dnsmasq (deps/apt.txt)")
    work = str(tmp_path_factory.mktemp("dna"))
    ns = TestNamespaces()
    try:
        ns.add("rtr")
        ns.add("brd")
        for short in ("rtr", "brd"):    # link-local addresses usable at once (no DAD wait)
            ns.sysctls(short, [("net.ipv6.conf.all.accept_dad", 0), ("net.ipv6.conf.default.accept_dad", 0)])
        ns.veth("rtr", "lan", "brd", "wlan0")
        for short, dev, mac in (("rtr", "lan", ROUTER_MAC), ("brd", "wlan0", "02:00:00:00:b0:01")):
            ns.ip(short, "link", "set", dev, "down")
            ns.ip(short, "link", "set", dev, "address", mac)
            ns.ip(short, "link", "set", dev, "up")
        ns.ip("rtr", "addr", "add", "192.0.2.1/24", "dev", "lan")
        ns.ip("rtr", "addr", "add", "2001:db8:1::1/64", "dev", "lan", "nodad")
        conf = os.path.join(work, "dnsmasq.conf")
        with open(conf, "w") as f:
            f.write(dnsmasq_conf("lan", "192.0.2.1", ("192.0.2.100", "192.0.2.200"), "192.0.2.1", work)
                    + "dhcp-host=02:00:00:00:ee:01,%s\n" % OTHER)
        ns.popen("rtr", ["dnsmasq", "-k", "-C", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        yield ns, work
    finally:
        ns.teardown()


def _run(lan, memory, fams="4"):
    ns, work = lan
    ns.run("brd", ["ip", "addr", "flush", "dev", "wlan0", "scope", "global"], check=False)
    ns.run("brd", ["ip", "route", "flush", "dev", "wlan0"], check=False)
    ns.run("brd", ["ip", "-6", "route", "flush", "dev", "wlan0", "scope", "global"], check=False)
    env = dict(os.environ, MICROPYPATH=":".join([".frozen", FIRMWARE_DIR, os.path.join(BOARDS_DIR, "unix")]))
    p = ns.popen("brd", [micropython_exe(), os.path.join(HERE, "dna_run.py"), os.path.join(work, memory), fams],
                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    text, _ = p.communicate(timeout=15)
    assert p.returncode == 0, text
    out = json.loads(text.strip().splitlines()[-1])
    for e in [out] + out["mem"]:
        k = "addr" if e is out else "a"
        if e[k] and len(e[k]) == 8:
            e[k] = ".".join(str(b) for b in bytes.fromhex(e[k]))
    out["on_link"] = ns.run("brd", ["ip", "-o", "addr", "show", "dev", "wlan0"]).stdout
    return out


def _write(work, name, addr, mac, expires):
    with open(os.path.join(work, name), "w") as f:
        json.dump({"v": 1, "nets": [{"k": "4/c0000200/24/" + mac.replace(":", ""), "f": 4,
                                     "a": bytes(int(x) for x in addr.split(".")).hex(), "p": 24, "r": "c0000201",
                                     "m": mac.replace(":", ""), "d": [], "x": expires, "s": "c0000201"}]}, f)


ROUTER_LL = "fe80000000000000000000fffe00b101"      # EUI-64 of ROUTER_MAC
SLAAC = "20010db8000100000000000000000050"          # 2001:db8:1::50


def _write6(work, name, mac, expires):
    with open(os.path.join(work, name), "w") as f:
        json.dump({"v": 1, "nets": [{"k": "6/x/64/" + mac.replace(":", ""), "f": 6, "a": SLAAC, "p": 64,
                                     "r": ROUTER_LL, "m": mac.replace(":", ""), "d": [], "x": expires}]}, f)


def test_ipv6_known_link_reuses_the_address_optimistic(lan):
    """RFC 6059: a unicast NS to the remembered router's link-local address at its MAC; its
    solicited NA confirms the link and the address goes on at once, optimistic (RFC 4429)."""
    _write6(lan[1], "mem-v6", ROUTER_MAC, int(time.time()) + 600)
    dad = [("net.ipv6.conf.wlan0.accept_dad", 1), ("net.ipv6.conf.wlan0.optimistic_dad", 1),
           ("net.ipv6.conf.wlan0.use_optimistic", 1)]
    lan[0].sysctls("brd", dad)        # DAD on, as on a board's stack: the address shows as optimistic
    try:
        out = _run(lan, "mem-v6", "6")
        # usable as a source while DAD runs (what the MN does with it: a socket bound to it)
        bind = lan[0].run("brd", [sys.executable, "-c", "import socket; s = socket.socket(socket.AF_INET6, "
                                  "socket.SOCK_DGRAM); s.bind(('2001:db8:1::50', 0)); print('bound')"], check=False)
    finally:
        lan[0].sysctls("brd", [(k, 0) for k, _v in dad])
    # reported to movement at once (the kernel itself announces it only once DAD is over)
    assert out["stats"]["v6_confirmed"] == 1 and out["addr"] == SLAAC, out
    assert out["ms"] < 500, out
    assert "2001:db8:1::50/64" in out["on_link"] and "optimistic" in out["on_link"].split("2001:db8:1::50/64")[1]
    assert "bound" in bind.stdout, bind.stderr


def test_ipv6_router_changed_is_a_new_link(lan):
    _write6(lan[1], "mem-v6x", "02:00:00:00:b1:99", int(time.time()) + 600)
    out = _run(lan, "mem-v6x", "6")
    assert out["stats"]["v6_confirmed"] == 0 and out["addr"] is None
    assert "2001:db8:1::50" not in out["on_link"]       # left to the RA/SLAAC of the new link


def test_first_visit_then_revisit(lan):
    first = _run(lan, "mem-a")
    assert first["stats"]["full"] == 1 and first["stats"]["confirmed"] == 0
    assert first["addr"] and first["addr"].startswith("192.0.2.")
    (e,) = first["mem"]
    assert e["a"] == first["addr"] and e["m"] == ROUTER_MAC.replace(":", "")   # the router's MAC learnt
    again = _run(lan, "mem-a")
    assert again["stats"]["confirmed"] == 1 and again["stats"]["full"] == 0 and again["stats"]["nak"] == 0
    assert again["addr"] == first["addr"]
    assert again["stats"]["remembered"] == 1            # the INIT-REBOOT's ACK renewed the lease


def test_address_given_away_meanwhile_nak(lan):
    _write(lan[1], "mem-nak", OTHER, ROUTER_MAC, int(time.time()) + 600)
    out = _run(lan, "mem-nak")
    s = out["stats"]
    assert s["confirmed"] == 1 and s["nak"] == 1 and s["full"] == 1      # within one more exchange
    assert out["addr"] != OTHER and OTHER not in out["on_link"] and out["addr"] in out["on_link"]
    assert [e["a"] for e in out["mem"]] == [out["addr"]]


def test_router_changed_behind_the_same_key(lan):
    _write(lan[1], "mem-rtr", "192.0.2.120", "02:00:00:00:b1:99", int(time.time()) + 600)
    out = _run(lan, "mem-rtr")
    assert out["stats"]["confirmed"] == 0 and out["stats"]["full"] == 1   # another MAC answered: a new network
    macs = [e["m"] for e in out["mem"]]
    assert macs[0] == ROUTER_MAC.replace(":", "")


def test_stale_entry_is_never_used(lan):
    _write(lan[1], "mem-old", OTHER, ROUTER_MAC, int(time.time()) - 1)
    out = _run(lan, "mem-old")
    assert out["dropped"] == 1 and out["stats"]["confirmed"] == 0 and out["stats"]["full"] == 1
    assert out["addr"] != OTHER and OTHER not in out["on_link"]


def test_ipv6_stale_entry_is_never_used(lan):
    """An IPv6 entry past its valid lifetime: dropped on load, never probed, its address never put on."""
    _write6(lan[1], "mem-v6old", ROUTER_MAC, int(time.time()) - 1)
    out = _run(lan, "mem-v6old", "6")
    assert out["dropped"] == 1 and out["stats"]["v6_confirmed"] == 0 and out["addr"] is None
    assert "2001:db8:1::50" not in out["on_link"]


def test_board_preferring_ipv6_reports_ipv6_first_on_a_known_dual_stack_network(lan):
    """Both families remembered for the same router, the board's first transport IPv6 (families
    [6, 4]): the IPv4 address goes on only once the IPv6 one is confirmed, so the MN sends one BU
    (udp6), not one for udp4 and another for udp6 a ms later (MAX_UPDATE_RATE counts both)."""
    first = _run(lan, "mem-dual")                     # learns the IPv4 lease and the router's MAC
    path = os.path.join(lan[1], "mem-dual")
    mem = json.load(open(path))
    _write6(lan[1], "mem-dual6", ROUTER_MAC, int(time.time()) + 600)
    mem["nets"] += json.load(open(os.path.join(lan[1], "mem-dual6")))["nets"]
    json.dump(mem, open(path, "w"))
    out = _run(lan, "mem-dual", "64")
    assert out["stats"]["confirmed"] == 1 and out["stats"]["v6_confirmed"] == 1, out
    assert out["order"] == [6, 4], out
    assert first["addr"] in out["on_link"] and "2001:db8:1::50/64" in out["on_link"]
