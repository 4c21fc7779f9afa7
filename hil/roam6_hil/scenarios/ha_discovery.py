"""`roam6 hil run ha-discovery`: the MN's configured HA is dead, at boot or after a roam, and the
MicroPython MN must find another by itself (issue 14). Cases (--cases, in this order):

  boot-list         udp4 on apB; list [dead, HA1]: the next of its list once the first is silent
  boot-dhaad        ip6 on apA; list [dead, dead]: DHAAD (RFC 6275 §11.4.1) to the home agents
                    anycast address, then the HA its Reply lists
  roam-list         udp4; list [HA2, HA1], registered with HA2; HA2 killed, the MN roams apB -> apC:
                    its BU from the new care-of address is not answered, it registers with HA1
  roam-dhaad        ip6; list [HA2, dead], registered with HA2; HA2 killed, roam apA -> apC: the
                    list is dead, DHAAD finds HA1

HA1 is `roam6 ha` in the bench's `ha` namespace (answering DHAAD with home_agents [HA1]),
HA2 in a second host on the home link (roam6_hil.hapair). Dead HAs are addresses of the home
prefix nobody holds. ha_liveness_s is --liveness. Reports, per case, the time to registered (from
the MN's start, or from the link loss of the roam), the HA it ended with and how it found it.
DHAAD runs on the ip6 transport only: on udp4 the MN has no IPv6 path to the anycast address, and
its list (config, DHCPv6/DNS bootstrapping) is what it has (docs/PROTOCOL-NOTES.md, DHAAD).
A dead HA here is its host gone (link down, process killed): `roam6 ha` killed alone leaves its
proxy ND entries in its host's kernel, which then answers the next HA's DAD for the HoA (status
134: that HA refuses the device) until the HA restarts and cleans up (docs/ARCHITECTURE.md).
Writes DIR/report.json; exit 0 only if every case registered with a live HA.
"""
import json
import os
import secrets
import signal
import time

from roam6_host.heapsize import HELP as HEAP_HELP, heap_size
from roam6_host.errors import UserError

from ..board_unix import start_mn
from ..hapair import HA2, HA2_V4, add_ha2_host, start_ha2
from ..homeagent import start_ha, write_ha_config
from ..topology import HA_ADDR, HA_IPV4, HOME_PREFIX, Bench

CASES = ("boot-list", "boot-dhaad", "roam-list", "roam-dhaad")
DEAD, DEAD2 = ("2001:db8:aa::7", "198.18.9.7"), ("2001:db8:aa::8", "198.18.9.8")


def add_arguments(p):
    p.add_argument("--cases", default=",".join(CASES),
                   help="cases to run, in order (default all: %s)" % ", ".join(CASES))
    p.add_argument("--liveness", type=int, default=1, help="the MN's ha_liveness_s (default 1)")
    p.add_argument("--heap", type=heap_size, default="100K", metavar="SIZE",
                   help="the MN's MicroPython heap (default 100K); " + HEAP_HELP)
    p.add_argument("--report", default="reports/ha-discovery", metavar="DIR",
                   help="report folder (default reports/ha-discovery)")
    p.add_argument("--prefix", default="r6hd-", help="namespace prefix (default r6hd-)")


def _sa(key, name):
    """One SA (and home address) per case: a case starts with no binding left by the one before."""
    i = CASES.index(name)
    return {"nai": "case%d@example.test" % i, "spi": 6000 + i, "key": key, "hoa": "2001:db8:aa::%x" % (0x300 + i)}


def _mn_config(bench, key, name, transport, has):
    path = bench.path("%s.json" % name)
    sa = _sa(key, name)
    cfg = {"nai": sa["nai"], "spi": sa["spi"], "key": key, "hoa": sa["hoa"], "home_prefix": HOME_PREFIX,
           "ha": [h[0] for h in has], "bootstrap": ["static"], "transports": [transport], "lifetime": 600,
           "timestamps": True, "state_file": bench.path("%s.state" % name)}
    if transport == "udp4":
        cfg["ha_ipv4"] = [h[1] for h in has]
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


class _Case:
    def __init__(self, bench, key, args):
        self.bench, self.key, self.args = bench, key, args
        self.ha2 = None

    def start_ha2(self):
        conf = os.path.join(self.bench.path("ha2"), "ha.json")
        self.ha2 = start_ha2(self.bench, conf)
        return self.ha2

    def revive_ha2_host(self):
        b = self.bench
        b.ip("ha2", "-6", "neigh", "flush", "proxy", "dev", "h2", check=False)    # as after a reboot
        b.ip("ha2", "link", "set", "h2", "up")
        b.ip("ha2", "addr", "replace", HA2 + "/64", "dev", "h2", "nodad")     # IPv6 addresses go with the link
        b.ip("ha2", "addr", "replace", HA2_V4 + "/24", "dev", "h2")
        b.ip("ha2", "-4", "route", "replace", "default", "via", "198.18.9.1")
        b.ip("ha2", "-6", "route", "replace", "default", "via", HA_ADDR)

    def mn(self, name, transport, has):
        path = _mn_config(self.bench, self.key, name, transport, has)
        with open(path) as f:
            cfg = json.load(f)
        cfg["ha_liveness_s"] = self.args.liveness
        with open(path, "w") as f:
            json.dump(cfg, f)
        return start_mn(self.bench, path, self.args.heap, self.bench.path("%s.log" % name))


def _row(name, mn, ev, t0, how_from=0.0):
    sw = [e for e in mn.events if e.get("ev") == "ha_switch" and e["t_rx"] >= how_from]
    dh = [e for e in mn.events if e.get("ev") == "dhaad" and "has" in e and e["t_rx"] >= how_from]
    return {"case": name, "registered": ev is not None, "seconds": round(ev["t"] - t0, 3) if ev else None,
            "ha": sw[-1]["ha"] if sw else None, "found_by": sw[-1]["why"] if sw else None,
            "switches": [[e["why"], e["ha"]] for e in sw], "dhaad_replies": [e["has"] for e in dh]}


def run(args, quiet=False):
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in cases if c not in CASES]
    if bad or not cases:
        raise UserError("--cases: unknown %s" % ", ".join(bad or ["(none)"]), hint="use " + ", ".join(CASES))
    if not 1 <= args.liveness <= 60:
        raise UserError("--liveness must be 1..60 s, got %d" % args.liveness)
    from ..netns import require_root_and_tools
    require_root_and_tools(("ip",))
    folder = os.path.abspath(args.report)
    os.makedirs(folder, exist_ok=True)
    rows = []
    key = secrets.token_hex(16)
    with Bench(prefix=args.prefix, workdir=os.path.join(folder, "bench")) as bench:
        conf1 = write_ha_config(bench, key, name="ha1")
        with open(conf1) as f:
            c = json.load(f)
        c["home_agents"] = [HA_ADDR]          # HA2 is dead when the MN asks
        sas = {"sas": [_sa(key, n) for n in CASES]}
        with open(c["keys_file"], "w") as f:
            json.dump(sas, f)
        with open(conf1, "w") as f:
            json.dump(c, f)
        bench.services.append(start_ha(bench, conf1))
        add_ha2_host(bench)
        conf2 = write_ha_config(bench, key, name="ha2")
        with open(conf2) as f:
            c = json.load(f)
        c.update(address=HA2, ipv4=HA2_V4, home_link="h2")
        with open(c["keys_file"], "w") as f:
            json.dump(sas, f)
        with open(conf2, "w") as f:
            json.dump(c, f)
        k = _Case(bench, key, args)
        for name in cases:
            transport = "udp4" if name.endswith("list") else "ip6"
            first, then = ("apB", "apC") if transport == "udp4" else ("apA", "apC")
            bench.attach(first, addressing="static")
            if name.startswith("boot"):
                has = [DEAD, (HA_ADDR, HA_IPV4)] if name == "boot-list" else [DEAD, DEAD2]
                t0 = time.monotonic()
                mn = k.mn(name, transport, has)
                try:
                    ev = mn.wait_for(lambda e: e.get("ev") == "registered", 10 + 3 * args.liveness)
                    start = next((e for e in mn.events if e.get("ev") == "start"), None)
                    row = _row(name, mn, ev, start["t"] if start else t0)
                finally:
                    mn.stop(grace=0.5)
            else:
                ha2 = k.start_ha2()
                has = [(HA2, HA2_V4), (HA_ADDR, HA_IPV4)] if name == "roam-list" else [(HA2, HA2_V4), DEAD2]
                mn = k.mn(name, transport, has)
                try:
                    if mn.wait_for(lambda e: e.get("ev") == "registered", 15) is None:
                        raise RuntimeError("%s: the MN did not register with HA2:\n%s" % (name, mn.tail(10)))
                    # HA2's host dies: its link down, its HA killed (a process crash alone leaves
                    # its proxy ND entries in the kernel, answering DAD for the HoA: see the docstring)
                    bench.ip("ha2", "link", "set", "h2", "down")
                    os.killpg(ha2.p.pid, signal.SIGKILL)
                    ha2.p.wait(5)
                    st = bench.attach(then, addressing="static")
                    t0 = st["down"]
                    ev = mn.wait_for(lambda e: e.get("ev") == "registered", 10 + 3 * args.liveness, since=t0)
                    row = _row(name, mn, ev, t0, how_from=t0)
                finally:
                    mn.stop(grace=0.5)
                    ha2.stop(grace=0.2)
                    k.revive_ha2_host()
            row["ok"] = row["registered"] and row["ha"] == HA_ADDR and \
                row["found_by"] == ("dhaad" if name.endswith("dhaad") else "liveness")
            rows.append(row)
            if not quiet:
                print("%-10s %s" % (name, "registered with %s (by %s) after %.2f s" % (row["ha"], row["found_by"],
                                                                                     row["seconds"])
                                    if row["registered"] else "NOT registered:\n" + mn.tail(10)), flush=True)
            bench.detach()
    ok = all(r["ok"] for r in rows)
    path = os.path.join(folder, "report.json")
    with open(path, "w") as f:
        json.dump({"scenario": "ha-discovery", "liveness_s": args.liveness, "rows": rows, "ok": ok}, f, indent=1)
    if not quiet:
        print("report: %s\nresult: %s" % (path, "OK" if ok else "FAILED"))
    return 0 if ok else 1
