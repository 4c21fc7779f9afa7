"""The bench plan (docs/CONTRACTS.md §8): namespaces, links, addresses, routes, NAT, and roaming.

    with Bench(prefix="r6t1a2b-") as bench:      # builds everything; always tears down
        bench.attach("apB")                       # board's link onto apB's bridge, static address
        bench.run("board", ["ping", "-c1", "198.18.1.2"])

The board's wlan0 is a veth whose peer (`board`) lives in the namespace `air`. `air` has one bridge
per network (`airA`, `airB`, `airC`, `airH`), each joined by a veth to that network's bridge
(`brA`/`brB`/`brC` in the AP namespaces, `home` in `ha`). Roaming moves the `board` port from one
air bridge to another: the board sees carrier go down and up, like a Wi-Fi re-association. (Moving
a link between namespaces costs ~20 ms on this kernel; re-mastering a port costs ~1 ms.)
"""
import os
import shutil
import subprocess
import tempfile
import time

from .netns import Namespaces, cleanup_prefix, require_root_and_tools

NETWORKS = ("apA", "apB", "apC", "home")
AIR_BRIDGE = {"apA": "airA", "apB": "airB", "apC": "airC", "home": "airH"}
# where each network's bridge lives and what it is called
NET_BRIDGE = {"apA": ("apA", "brA"), "apB": ("apB", "brB"), "apC": ("apC", "brC"), "home": ("ha", "home")}

# the board's addresses with --addressing static, and the network's router (gateway)
STATIC = {
    "apA": {"v6": ("2001:db8:a1::50/64", "2001:db8:a1::1"), "v4": None},
    "apB": {"v6": None, "v4": ("192.0.2.50/24", "192.0.2.1")},
    "apC": {"v6": ("2001:db8:c1::50/64", "2001:db8:c1::1"), "v4": ("198.51.100.50/24", "198.51.100.1")},
    "home": {"v6": ("2001:db8:aa::100/64", "2001:db8:aa::1"), "v4": None},
}
# the DNS server each network hands out (dnsmasq on the AP's bridge address)
DNS = {"apA": "2001:db8:a1::1", "apB": "192.0.2.1", "apC": "198.51.100.1", "home": None}

HOA = "2001:db8:aa::100"
HA_ADDR = "2001:db8:aa::1"
HA_UPLINK6 = "2001:db8:f1::2"
HA_IPV4 = "198.18.1.2"
# The HA's Duplicate Address Detection wait for a new binding's HoA on the home link (RFC 6275
# §10.4.1; ha.json "dad_ms", 1000 by default after RFC 4861's RetransTimer). The bench's home link
# is a bridge in one host, where a node holding the address answers within a millisecond.
HA_DAD_MS = 100
CN_ADDR6 = "2001:db8:f3::2"
CN_ADDR4 = "198.18.3.2"
HOME_PREFIX = "2001:db8:aa::/64"
# RFC 5555 IPv4 home addresses: the home link's IPv4 prefix (the HA's bridge is its router) and the
# pool the HA hands out from (ha.json ipv4_home_prefix / ipv4_pool with write_ha_config(ipv4_home=True))
HOME4_PREFIX = "198.18.50.0/24"
HOME4_ROUTER = "198.18.50.1"
HOME4_POOL = "198.18.50.100-198.18.50.199"
DOMAIN = "example.test"
BOARD_MAC = "02:00:00:00:b0:01"

# (core-side name, other namespace, other-side name, core addresses, other addresses)
CORE_LINKS = [
    ("ha", "ha", "up", ["2001:db8:f1::1/64", "198.18.1.1/24"], ["2001:db8:f1::2/64", "198.18.1.2/24"]),
    ("cn", "cn", "up", ["2001:db8:f3::1/64", "198.18.3.1/24"], ["2001:db8:f3::2/64", "198.18.3.2/24"]),
    ("apA", "apA", "up", ["2001:db8:fa::1/64"], ["2001:db8:fa::2/64"]),
    ("apB", "apB", "up", ["198.18.12.1/24"], ["198.18.12.2/24"]),
    ("apC", "apC", "up", ["2001:db8:fc::1/64", "198.18.13.1/24"], ["2001:db8:fc::2/64", "198.18.13.2/24"]),
]
CORE_ROUTES = [
    "-6 route add 2001:db8:aa::/64 via 2001:db8:f1::2",
    "-6 route add 2001:db8:a1::/64 via 2001:db8:fa::2",
    "-6 route add 2001:db8:c1::/64 via 2001:db8:fc::2",
    "-4 route add 198.18.50.0/24 via 198.18.1.2",          # the IPv4 home prefix, behind the HA
]
DEFAULT_ROUTES = {
    "ha": ["-6 route add default via 2001:db8:f1::1", "-4 route add default via 198.18.1.1"],
    "cn": ["-6 route add default via 2001:db8:f3::1", "-4 route add default via 198.18.3.1"],
    "apA": ["-6 route add default via 2001:db8:fa::1"],
    "apB": ["-4 route add default via 198.18.12.1"],
    "apC": ["-6 route add default via 2001:db8:fc::1", "-4 route add default via 198.18.13.1"],
}
# bridge address(es) per network; MACs pinned so link-local addresses never change (BENCH-NOTES)
BRIDGE_ADDRS = {
    "apA": (["2001:db8:a1::1/64"], "02:00:00:00:a1:01"),
    "apB": (["192.0.2.1/24"], "02:00:00:00:b1:01"),
    "apC": (["2001:db8:c1::1/64", "198.51.100.1/24"], "02:00:00:00:c1:01"),
    "home": (["2001:db8:aa::1/64", "198.18.50.1/24"], "02:00:00:00:aa:01"),
}
NAT = {"apB": "192.0.2.0/24", "apC": "198.51.100.0/24"}

FORWARDING = [("net.ipv6.conf.all.forwarding", 1), ("net.ipv4.ip_forward", 1),
              ("net.ipv6.conf.default.accept_dad", 0), ("net.ipv6.conf.all.accept_dad", 0)]


def _nft_nat(lan):
    return ("table ip r6nat {\n chain postrouting {\n  type nat hook postrouting priority srcnat; policy accept;\n"
            "  oifname \"up\" ip saddr %s masquerade\n }\n}\n" % lan)


class Bench:
    """One bench: namespaces `<prefix>{core,ha,cn,apA,apB,apC,air,board}`. Use as a context manager;
    `down()` always runs on exit. Leftovers of a killed run with the same prefix are removed first."""

    SHORT = ("core", "ha", "cn", "apA", "apB", "apC", "air", "board")

    def __init__(self, prefix="r6-", workdir=None, keep_workdir=False):
        self.ns = Namespaces(prefix)
        self.prefix = prefix
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="roam6-bench-%s" % prefix)
        os.makedirs(self.workdir, exist_ok=True)
        self.keep_workdir = keep_workdir
        self.network = None        # where the board is attached (a name of NETWORKS) or None
        self.services = []         # objects with stop(), stopped in reverse at down()
        self._up = False

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self):
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    def up(self):
        require_root_and_tools(("ip", "nft"))
        cleanup_prefix(self.prefix)
        for short in self.SHORT:
            self.ns.add(short)
        self._up = True
        for short in ("core", "ha", "apA", "apB", "apC"):
            self.ns.sysctls(short, FORWARDING)
        self.ns.sysctls("cn", FORWARDING[2:])
        # the air namespace only switches frames: no IPv6 of its own on its bridges
        self.ns.sysctls("air", [("net.ipv6.conf.all.disable_ipv6", 1), ("net.ipv6.conf.default.disable_ipv6", 1)])
        self._core_links()
        self._bridges()
        self._board_link()
        for short, cmds in DEFAULT_ROUTES.items():
            self.ns.batch(short, cmds)
        self.ns.batch("core", CORE_ROUTES)
        for short, lan in NAT.items():
            self.ns.run(short, ["nft", "-f", "-"], input=_nft_nat(lan))
        self._wait_bridges_up()

    def _wait_bridges_up(self, timeout=3.0):
        """A new bridge drops what it sends until the kernel's link watcher has switched its carrier
        on, which may come up to 1 s late (bridges are not "urgent" links): wait for it."""
        deadline = time.monotonic() + timeout
        pending = [NET_BRIDGE[n] for n in NETWORKS] + [("air", AIR_BRIDGE[n]) for n in NETWORKS]
        while pending:
            pending = [(short, br) for short, br in pending
                       if "state UP" not in self.ns.ip(short, "link", "show", "dev", br).stdout]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("bridges not up after %.0fs: %s" % (timeout, pending))
            time.sleep(0.02)

    def _core_links(self):
        for core_if, other, other_if, core_addrs, other_addrs in CORE_LINKS:
            subprocess.run(["ip", "link", "add", "name", core_if, "netns", self.ns.full("core"), "type", "veth",
                            "peer", "name", other_if, "netns", self.ns.full(other)], check=True, capture_output=True)
            for ns, ifname, addrs in (("core", core_if, core_addrs), (other, other_if, other_addrs)):
                self.ns.batch(ns, ["addr add %s dev %s%s" % (a, ifname, " nodad" if ":" in a else "") for a in addrs]
                              + ["link set dev %s up" % ifname])

    def _bridges(self):
        for net in NETWORKS:
            short, br = NET_BRIDGE[net]
            addrs, mac = BRIDGE_ADDRS[net]
            air_br = AIR_BRIDGE[net]
            # the network's bridge with its router address, and a veth from it into `air`
            self.ns.batch(short, [
                "link add name %s address %s type bridge forward_delay 0 stp_state 0 mcast_snooping 0" % (br, mac),
            ])
            self.ns.sysctls(short, [("net.ipv6.conf.%s.accept_dad" % br, 0)])
            port = "air"
            subprocess.run(["ip", "link", "add", "name", port, "netns", self.ns.full(short), "type", "veth", "peer",
                            "name", "to" + air_br[-1], "netns", self.ns.full("air")], check=True, capture_output=True)
            self.ns.batch(short, ["addr add %s dev %s%s" % (a, br, " nodad" if ":" in a else "") for a in addrs]
                          + ["link set dev %s master %s up" % (port, br), "link set dev %s up" % br])
            self.ns.batch("air", [
                "link add name %s type bridge forward_delay 0 stp_state 0 mcast_snooping 0" % air_br,
                "link set dev to%s master %s up" % (air_br[-1], air_br),
                "link set dev %s up" % air_br,
            ])

    def _board_link(self):
        subprocess.run(["ip", "link", "add", "name", "wlan0", "netns", self.ns.full("board"), "address", BOARD_MAC,
                        "type", "veth", "peer", "name", "board", "netns", self.ns.full("air")],
                       check=True, capture_output=True)
        # a Wi-Fi station: no DAD wait, RAs accepted; the board's own link comes up once, and the
        # carrier follows association (the air-side port)
        self.ns.sysctls("board", [("net.ipv6.conf.wlan0.accept_dad", 0), ("net.ipv6.conf.wlan0.accept_ra", 1),
                                  ("net.ipv6.conf.wlan0.router_solicitation_delay", 0)])
        self.ns.ip("board", "link", "set", "wlan0", "up")
        os.makedirs("/etc/netns/" + self.ns.full("board"), exist_ok=True)
        self._resolv(None)

    def stop_services(self):
        """Stop what `services` holds, newest first; one that fails to stop does not keep the
        others running (teardown kills whatever is left in the namespaces anyway)."""
        for svc in reversed(self.services):
            try:
                svc.stop()
            except Exception:
                pass
        self.services = []

    def down(self):
        self.stop_services()
        self.ns.teardown()
        self._up = False
        self.network = None
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- running things ----------------------------------------------------------------------
    def full(self, short):
        """The real namespace name (for `ip netns exec NAME`)."""
        return self.ns.full(short)

    def run(self, short, argv, check=True, timeout=10, input=None):
        return self.ns.run(short, argv, check=check, timeout=timeout, input=input)

    def popen(self, short, argv, **kw):
        return self.ns.popen(short, argv, **kw)

    def ip(self, short, *args, check=True):
        return self.ns.ip(short, *args, check=check)

    def path(self, *parts):
        return os.path.join(self.workdir, *parts)

    # -- the board's link ----------------------------------------------------------------------
    def _resolv(self, net):
        """/etc/netns/<board>/resolv.conf is what processes in the board namespace see as
        /etc/resolv.conf (ip netns exec bind-mounts it). Rewritten in place so running processes
        see the change."""
        path = "/etc/netns/%s/resolv.conf" % self.ns.full("board")
        text = ("nameserver %s\n" % DNS[net]) if net and DNS.get(net) else ""
        with open(path, "a+") as f:
            f.seek(0)
            f.truncate()
            f.write(text)

    def detach(self):
        """Disassociate: the board loses carrier and the addresses/routes of the old network (as a
        Wi-Fi station's stack drops them). Returns time.monotonic() once the carrier is gone."""
        self.ns.shell("air").do(["link set dev board down nomaster"])
        t = time.monotonic()
        # family-neutral lines (route flush = IPv4; ::/0 = the IPv6 default); errors are fine here
        self.ns.shell("board").do(["addr flush dev wlan0 scope global", "route flush dev wlan0",
                                   "route del ::/0 dev wlan0", "route del ::/0 dev wlan0",
                                   "neigh flush dev wlan0"])
        self.network = None
        return t

    def attach(self, net, addressing="static"):
        """Associate the board with network `net` (apA, apB, apC or home).

        addressing: "static" assigns the board's address and default route at once (STATIC);
        "auto" only brings the link up (SLAAC and the DHCPv4 client do the rest: see roaming.py);
        "none" only brings the link up. Returns a dict of time.monotonic() stamps: link_up, and
        addr (static only: when the address is usable)."""
        if net not in NETWORKS:
            raise ValueError("unknown network %r (one of %s)" % (net, ", ".join(NETWORKS)))
        stamps = {}
        if self.network is not None:
            stamps["down"] = self.detach()
        self._resolv(net)
        out = self.ns.shell("air").do(["link set dev board master %s up" % AIR_BRIDGE[net]])
        if out:
            raise RuntimeError("attaching the board to %s: %s" % (net, " ".join(out)))
        # associated = the board's kernel has seen the carrier (its link watcher switches the
        # queue on then; what is sent before is dropped, and a lost neighbour solicitation
        # costs a 1 s retransmission); and the bridge forwards on the board's port (until its own
        # link watcher has run, the port is "disabled" and drops frames)
        deadline = time.monotonic() + 2.0
        while True:
            board = " ".join(self.ns.shell("board").do(["link show dev wlan0"]))
            port = " ".join(self.ns.shell("air").do(["link show dev board"]))
            if "state UP" in board and "state UP" in port and "bridge_slave state forwarding" in port:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the board's link is not up 2 s after attaching to %s: %s | %s" % (net, board, port))
            time.sleep(0.0002)
        # a neighbour entry made while detached (its solicitation went nowhere) would hold the
        # first packets for a 1 s retransmission: a new association starts with none
        self.ns.shell("board").do(["neigh flush dev wlan0"])
        stamps["link_up"] = time.monotonic()
        if addressing == "static":
            cmds = []
            s = STATIC[net]
            # routes first (onlink: before the subnet exists), so an address is usable the
            # instant the kernel announces it
            if s["v6"]:
                cmds += ["route replace ::/0 via %s dev wlan0 onlink" % s["v6"][1]]
            if s["v4"]:
                cmds += ["route replace 0.0.0.0/0 via %s dev wlan0 onlink" % s["v4"][1]]
            if s["v6"]:
                cmds += ["addr add %s dev wlan0 nodad" % s["v6"][0]]
            if s["v4"]:
                cmds += ["addr add %s dev wlan0" % s["v4"][0]]
            out = self.ns.shell("board").do(cmds)
            if out:
                raise RuntimeError("static addresses on %s: %s" % (net, " ".join(out)))
            stamps["addr"] = time.monotonic()
        self.network = net
        return stamps
