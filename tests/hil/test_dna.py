"""The unix board addressing itself with Detecting Network Attachment (boards/unix/dna.py) against
a real dnsmasq (DHCPv4, rapid commit, authoritative), under the real MicroPython unix port: first
visit, revisit (RFC 4436 unicast ARP confirms, INIT-REBOOT behind), and the failure paths: the
address given away meanwhile (NAK), the router changed behind the same key, a stale entry."""
import json
import os
import shutil
import subprocess
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
        ns.veth("rtr", "lan", "brd", "wlan0")
        ns.ip("rtr", "link", "set", "lan", "address", ROUTER_MAC)
        ns.ip("brd", "link", "set", "wlan0", "address", "02:00:00:00:b0:01")
        ns.ip("rtr", "addr", "add", "192.0.2.1/24", "dev", "lan")
        conf = os.path.join(work, "dnsmasq.conf")
        with open(conf, "w") as f:
            f.write(dnsmasq_conf("lan", "192.0.2.1", ("192.0.2.100", "192.0.2.200"), "192.0.2.1", work)
                    + "dhcp-host=02:00:00:00:ee:01,%s\n" % OTHER)
        ns.popen("rtr", ["dnsmasq", "-k", "-C", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        yield ns, work
    finally:
        ns.teardown()


def _run(lan, memory):
    ns, work = lan
    ns.run("brd", ["ip", "addr", "flush", "dev", "wlan0", "scope", "global"], check=False)
    ns.run("brd", ["ip", "route", "flush", "dev", "wlan0"], check=False)
    env = dict(os.environ, MICROPYPATH=":".join([".frozen", FIRMWARE_DIR, os.path.join(BOARDS_DIR, "unix")]))
    p = ns.popen("brd", [micropython_exe(), os.path.join(HERE, "dna_run.py"), os.path.join(work, memory)],
                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    text, _ = p.communicate(timeout=15)
    assert p.returncode == 0, text
    out = json.loads(text.strip().splitlines()[-1])
    out["on_link"] = ns.run("brd", ["ip", "-4", "-o", "addr", "show", "dev", "wlan0"]).stdout
    return out


def _write(work, name, addr, mac, expires):
    with open(os.path.join(work, name), "w") as f:
        json.dump({"v": 1, "nets": [{"k": "4/c0000200/24/" + mac.replace(":", ""), "f": 4,
                                     "a": bytes(int(x) for x in addr.split(".")).hex(), "p": 24, "r": "c0000201",
                                     "m": mac.replace(":", ""), "d": [], "x": expires, "s": "c0000201"}]}, f)


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
