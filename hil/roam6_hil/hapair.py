"""A second home agent on the bench's home link (issue 14: Home Agent Switch, HA discovery): the
namespace <prefix>ha2 with a veth into the `home` bridge, HA2 2001:db8:aa::2 / 198.18.9.2 (that
IPv4 subnet on the home link too, routed by the core through the `ha` namespace), and `roam6 ha`
started there. Used by scenarios/ha_switch.py, scenarios/ha_discovery.py and tests/e2e."""
import os
import subprocess
import sys

from .eventlog import EventProc
from .topology import HA_ADDR

HA2, HA2_V4 = "2001:db8:aa::2", "198.18.9.2"


def add_ha2_host(bench):
    """Namespace ha2 on the home link (see the module's docstring)."""
    ns = bench.ns
    ns.add("ha2")
    # no DAD on this host's links, as on the bench's other namespaces (topology.FORWARDING): a fresh
    # veth's link-local address is tentative for ~1 s, and meanwhile the kernel sends no Neighbor
    # Solicitation from it, so HA2 could not resolve its router and held the first bound MNs' packets
    # until the 1 s retransmission (a long-running HA host has its link-local address long since)
    ns.sysctls("ha2", [("net.ipv6.conf.default.accept_dad", 0), ("net.ipv6.conf.all.accept_dad", 0)])
    ns._run(["ip", "link", "add", "h2", "netns", ns.full("ha2"), "type", "veth", "peer", "name", "h2b",
             "netns", ns.full("ha")], True, 10)
    bench.ip("ha", "link", "set", "h2b", "master", "home", "up")
    bench.ip("ha", "addr", "add", "198.18.9.1/24", "dev", "home")
    bench.ip("ha2", "link", "set", "h2", "up")
    bench.ip("ha2", "addr", "add", HA2 + "/64", "dev", "h2", "nodad")
    bench.ip("ha2", "addr", "add", HA2_V4 + "/24", "dev", "h2")
    bench.ip("ha2", "-4", "route", "add", "default", "via", "198.18.9.1")
    bench.ip("ha2", "-6", "route", "add", "default", "via", HA_ADDR)
    bench.ip("core", "-4", "route", "add", "198.18.9.0/24", "via", "198.18.1.2")
    bench.run("ha", ["sysctl", "-qw", "net.ipv4.ip_forward=1"])


def start_ha2(bench, conf, timeout=10.0):
    """`roam6 ha --config conf` in namespace ha2; its EventProc once ready (RuntimeError if not)."""
    p = bench.popen("ha2", [sys.executable, "-u", "-m", "roam6_host", "ha", "--config", conf],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ha = EventProc(bench, p, os.path.join(os.path.dirname(conf), "ha.log"))
    ev = ha.wait_for(lambda e: e["ev"] in ("ready", "error"), timeout)
    if ev is None or ev["ev"] != "ready":
        ha.stop()
        raise RuntimeError("HA2 did not start:\n" + ha.tail())
    return ha
