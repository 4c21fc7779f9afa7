"""Roaming the board between networks, the way a Wi-Fi station re-associates, and stamping when
its new address became usable.

  static  the address is assigned at the instant of the roam (what mobility itself costs)
  auto    SLAAC from radvd's router advertisements (the board namespace's kernel), and for IPv4
          the board itself (board_addresses: the MN's link adapter, boards/unix/dna.py) or, for
          a board that cannot, busybox udhcpc started here, as a board's network stack would
"""
import os
import sys
import time

from .eventlog import EventProc
from .topology import HOA, NETWORKS

NET_FAMILIES = {"apA": {6}, "apB": {4}, "apC": {4, 6}, "home": {6}}
IFA_F_TENTATIVE, IFA_F_DADFAILED = 0x40, 0x08

# udhcpc calls this with $1 = deconfig|bound|renew|leasefail; our own, because Debian's default
# script rewrites /etc/resolv.conf (shared with the root namespace)
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface" ;;
  bound|renew)
    # the route first (onlink), so the address is usable the instant it appears, as a board's
    # stack applies a lease in one go
    [ -n "$router" ] && ip -4 route replace default via "${router%% *}" dev "$interface" onlink
    ip -4 addr replace "$ip/$mask" dev "$interface"
    ;;
esac
exit 0
"""


def instrument_argv(argv):
    """The bench's measuring processes (address watcher, probes, sniffer) run at a real-time
    priority when the system allows it, so that their time stamps do not wait for a CPU behind
    the board under test on a 2-core machine. They sleep almost all the time (the kernel also
    caps real-time tasks at 95 % of a CPU)."""
    global _CHRT_OK
    if _CHRT_OK is None:
        import shutil
        import subprocess
        # a container without CAP_SYS_NICE refuses it: then the instruments run as usual
        _CHRT_OK = bool(shutil.which("chrt")) and subprocess.run(
            ["chrt", "-f", "20", "true"], capture_output=True).returncode == 0
    return (["chrt", "-f", "20"] + argv) if _CHRT_OK else argv


_CHRT_OK = None


def families_for(transports):
    """Address families a board with these transports can use."""
    fams = set()
    for t in transports:
        fams.add(4 if t == "udp4" else 6)
    return fams


def networks_for(transports):
    """The access networks (in roaming order) a board with these transports can use."""
    fams = families_for(transports)
    return [n for n in ("apA", "apB", "apC") if NET_FAMILIES[n] & fams]


class Roamer:
    def __init__(self, bench, addressing="static", families=(4, 6), board_addresses=False):
        if addressing not in ("static", "auto"):
            raise ValueError("addressing must be static or auto")
        self.bench = bench
        # auto with board_addresses: the board's own stand-in (the MN's link adapter) runs DHCPv4,
        # the bench no udhcpc (SLAAC stays the board kernel's, as on a board's stack)
        self.board_addresses = board_addresses
        self.addressing = addressing
        self.families = set(families)
        self._watch = None            # the address watcher's EventProc (its events have their own "t")
        self._dhcp = None
        if addressing == "static":
            # the address comes from the bench at the instant of the roam, not from RAs
            bench.ns.sysctls("board", [("net.ipv6.conf.wlan0.accept_ra", 0), ("net.ipv6.conf.wlan0.autoconf", 0)])
        self.script = bench.path("udhcpc.sh")
        with open(self.script, "w") as f:
            f.write(UDHCPC_SCRIPT)
        os.chmod(self.script, 0o755)

    @property
    def events(self):
        """The address watcher's events (dicts with "t", when the kernel announced the change)."""
        return self._watch.events if self._watch else []

    def start(self, timeout=5.0):
        import subprocess
        p = self.bench.popen("board", instrument_argv([sys.executable, "-u", "-m", "roam6_hil.addrwatch", "wlan0"]),
                             stdout=subprocess.PIPE, text=True)
        self._watch = EventProc(self.bench, p, stamp=False)
        first = self._watch.readline(timeout)
        if not (first or "").startswith("{"):
            raise RuntimeError("address watcher did not start: %r" % first)
        return self

    def _wait_addr(self, since, fams, timeout):
        """First usable global address of a family in `fams` announced after `since`."""
        def usable(ev):
            if ev["ev"] != "addr" or ev["t"] < since or not ev["added"] or ev["family"] not in fams:
                return False
            return not (ev["family"] == 6 and (ev["addr"].startswith("fe80")
                                               or ev["flags"] & (IFA_F_TENTATIVE | IFA_F_DADFAILED)))
        return self._watch.wait_for(usable, timeout)

    def _stop_dhcp(self):
        if self._dhcp is not None:
            self.bench.ns.stop(self._dhcp, grace=0.2)
            self.bench.ns.procs.remove(self._dhcp)
            self._dhcp = None

    def roam(self, net, timeout=5.0, wait=True):
        """Move the board to `net`. Returns a dict of time.monotonic() stamps: t_down (link lost),
        t_link_up (associated), t_addr (an address the board can use is there; None if none came
        within `timeout`), and addr (that address)."""
        if net not in NETWORKS:
            raise ValueError("unknown network %r" % net)
        self._stop_dhcp()
        t_down = self.bench.detach() if self.bench.network is not None else time.monotonic()
        if self.addressing == "auto" and net == "home":
            # at home the board also holds its configured home address (SLAAC gives another one),
            # there before the link is: the MN takes any home-prefix address as "at home" and
            # opens its socket from the HoA at once (SLAAC's address may come first)
            self.bench.ns.shell("board").do(["addr add %s/64 dev wlan0 nodad" % HOA])
        st = self.bench.attach(net, addressing="static" if self.addressing == "static" else "none")
        out = {"net": net, "t_down": t_down, "t_link_up": st["link_up"], "t_addr": st.get("addr"), "addr": None}
        fams = NET_FAMILIES[net] & self.families
        if self.addressing == "auto" and 4 in fams and not self.board_addresses:
            self._dhcp = self.bench.popen("board", ["busybox", "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "1",
                                                    "-i", "wlan0", "-s", self.script],
                                          stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))
        # "usable" = when the kernel announced it (the MN hears the same netlink event); with
        # static addressing that is a little before our `ip` call returns
        if not wait:        # the board's own stack is not running yet: it addresses itself once it is
            return out
        ev = self._wait_addr(t_down, fams, timeout)
        if ev:
            out["addr"] = ev["addr"]
            out["t_addr"] = ev["t"]
        elif self.addressing == "auto":
            out["t_addr"] = None
        return out

    def stop(self):
        self._stop_dhcp()
        if self._watch is not None:
            self._watch.stop(grace=0.3)
