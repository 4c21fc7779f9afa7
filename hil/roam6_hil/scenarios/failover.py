"""`roam6 hil run failover`: the hot-standby HA pair of `roam6 bench failover` (two `roam6 ha`, two
keepalived, VRRPv3, replication) with the real MicroPython MN roaming between two access
networks under probes both ways every --interval ms, and --failures failures of the active HA at
random moments, half of them in the middle of a roam (between the link loss and the BA on the
new network). Kinds alternate: `crash` SIGKILLs the active `roam6 ha` alone (keepalived lives
on and must notice), `host` takes the active host away (links down, HA and keepalived killed),
then brings it back as after a reboot (it rejoins as a synced standby before the next failure).

    home link  bridge "home": ha1 (2001:db8:aa::2), ha2 (::3), the prober hm (::50); shared ::1
    access 1   bridge "upl":  ha1 u0 198.18.1.3, ha2 .4 (shared .2), router .1, MN 198.18.1.10
    access 2   bridge "upl2": router 198.18.2.1, MN 198.18.2.10 (routed to access 1)

Down: the prober on the home link sends b"R6PD" probes to the MN's HoA; a sniffer on the MN's
interface stamps their arrival. Up: the MN's probe application sends its own b"R6PU" stream to
the prober. Per failure: the interruption each way (the longest gap in arrivals around it),
probes lost in it, whether the MN sent a BU other than the one each roam causes (a
re-registration or retransmission the failure forced), bindings on the new active vs before. Roams are windows
too; probes lost outside every window are counted. Writes DIR/report.json; exit 0 only if every
failure recovered, no binding was lost and no probe was lost outside the windows.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

from roam6_host.heapsize import HELP as HEAP_HELP, heap_size
from roam6_host.errors import UserError

from .. import bench_failover as bf
from .. import netns
from ..eventlog import EventProc
from ..roaming import instrument_argv

PROBE_PORT, SENSOR_PORT = 9000, 9001
NETS = {"acc1": ("upl", "198.18.1.10", "198.18.1.1"), "acc2": ("upl2", "198.18.2.10", "198.18.2.1")}


def add_arguments(p):
    p.add_argument("--failures", type=int, default=8, help="number of HA failures (default 8)")
    p.add_argument("--kinds", default="crash,host", help="failure kinds, alternating (crash, host; default both)")
    p.add_argument("--interval", "--probe-ms", dest="interval", type=float, default=5.0,
                   help="ms between probes each way, 1 at the finest (default 5)")
    p.add_argument("--dwell", type=float, default=0.6, help="seconds on each network after registering (default 0.6)")
    p.add_argument("--bindings", type=int, default=20, help="other registered MNs on the pair (default 20)")
    p.add_argument("--advert-ms", type=int, default=10, help="VRRP advert interval, ms (default 10)")
    p.add_argument("--mid-roam", default="alternate", choices=["alternate", "never", "always"],
                   help="failures in the middle of a roam: alternate (every other pair of failures, default), "
                        "never, always")
    p.add_argument("--heap", type=heap_size, default="256K", metavar="SIZE",
                   help="the MN's MicroPython heap (default 256K); " + HEAP_HELP)
    p.add_argument("--standby-retry-ms", type=int, default=150, metavar="MS",
                   help="the MN's config.json standby_retry_ms: a roam's BU unanswered this long is sent again "
                        "once (default 150; 0: RFC 6275's 1 s only)")
    p.add_argument("--security", default="rfc4285", choices=["rfc4285", "ipsec"],
                   help="the MN's registration: rfc4285 (default) or ipsec (IKEv2 + ESP, issue 19): its binding "
                        "replicates, its SAs do not, so it re-keys with the new active at its next BU "
                        "(report: ipsec_rekeyed_after_ms per failure)")
    p.add_argument("--seed", type=int, help="random seed for the failure moments (default: random)")
    p.add_argument("--report", default="reports/failover", metavar="DIR",
                   help="report folder (default reports/failover)")
    p.add_argument("--prefix", default="r6hf-", help="namespace prefix (default r6hf-)")


def check_args(args):
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not kinds or any(k not in ("crash", "host") for k in kinds):
        raise UserError("--kinds takes crash and/or host, got %r" % args.kinds, hint="e.g. --kinds crash,host")
    if not 1 <= args.failures <= 1000:
        raise UserError("--failures must be 1..1000, got %d" % args.failures)
    if not 1 <= args.interval <= 1000:
        raise UserError("--interval must be 1..1000 ms, got %s" % args.interval)
    if not 0.2 <= args.dwell <= 60:
        raise UserError("--dwell must be 0.2..60 s, got %s" % args.dwell)
    if args.standby_retry_ms and not 20 <= args.standby_retry_ms <= 1000:
        raise UserError("--standby-retry-ms must be 0 or 20..1000, got %d" % args.standby_retry_ms)
    if not 0 <= args.bindings <= 10000 or not 1 <= args.advert_ms <= 1000:
        raise UserError("--bindings must be 0..10000 and --advert-ms 1..1000")
    return kinds


class _Bench(bf.Bench):
    """bench_failover's pair and home link, plus a second access network routed by `lan`."""

    def build(self):
        super().build()
        if self.args.security == "ipsec":
            _ipsec_device(self)
        n = self.n
        n.ip("lan", "addr", "add", "198.18.1.1/24", "dev", "upl")
        n.ip("lan", "link", "add", "upl2", "type", "bridge")
        n.ip("lan", "link", "set", "dev", "upl2", "up")
        n.ip("lan", "addr", "add", "198.18.2.1/24", "dev", "upl2")
        n.run("lan", ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        n.ip("mn", "-4", "route", "add", "default", "via", "198.18.1.1", "dev", "wlan0")

    def _addrs(self, ns):
        super()._addrs(ns)
        self.n.ip(ns, "-4", "route", "replace", "default", "via", "198.18.1.1", "dev", "u0")

    @property
    def ns(self):            # what EventProc and start_mn expect of a bench
        return self.n

    workdir = property(lambda self: self.dir)

    def popen(self, short, argv, **kw):          # start_mn runs the MN in "board": here, namespace mn
        return self.n.popen("mn" if short == "board" else short, argv, **kw)


class _Roamer:
    """Moves the MN's link (its veth's far end, `pmn` in `lan`) between the two access bridges, as a
    Wi-Fi re-association: carrier lost, the old address and routes gone, carrier back, the new
    network's address and default route (static, at once)."""

    def __init__(self, b):
        self.b = b
        self.net = "acc1"

    def roam(self):
        n = self.b.n
        net = "acc2" if self.net == "acc1" else "acc1"
        br, addr, gw = NETS[net]
        n.ip("lan", "link", "set", "dev", "pmn", "down", "nomaster")
        t_down = time.monotonic()
        n.shell("mn").do(["addr flush dev wlan0 scope global", "route flush dev wlan0", "neigh flush dev wlan0"])
        n.ip("lan", "link", "set", "dev", "pmn", "master", br, "up")
        deadline = time.monotonic() + 2.0
        while "bridge_slave state forwarding" not in n.ip("lan", "-d", "link", "show", "dev", "pmn").stdout:
            if time.monotonic() > deadline:
                raise RuntimeError("the MN's link is not forwarding 2 s after the roam to %s" % net)
            time.sleep(0.0005)
        n.shell("mn").do(["route replace 0.0.0.0/0 via %s dev wlan0 onlink" % gw, "addr add %s/24 dev wlan0" % addr])
        self.net = net
        return {"net": net, "coa": addr, "t_down": t_down, "t_addr": time.monotonic()}


def _ipsec_device(b):
    """--security ipsec: the MN's entry in both HAs' keys files becomes an IPsec device (same NAI and
    HoA, a PSK), and both ha.json accept "ipsec" (the pair replicates its binding, not its SAs)."""
    import secrets
    b.psk = secrets.token_bytes(32)
    for ns in ("ha1", "ha2"):
        d = os.path.dirname(b.cfg[ns])
        for name, edit in (("keys.json", lambda j: j["sas"].__setitem__(0, {
                "nai": j["sas"][0]["nai"], "security": "ipsec", "psk": b.psk.hex(), "hoa": j["sas"][0]["hoa"]})),
                           ("ha.json", lambda j: j.__setitem__("security", ["rfc4285", "ipsec"]))):
            path = os.path.join(d, name)
            with open(path) as f:
                j = json.load(f)
            edit(j)
            bf._write(path, json.dumps(j))


def _start_mn(b, interval, heap, standby_retry_ms=0):
    from ..board_unix import start_mn
    nai, spi, key, hoa = b.keys[0]
    cfg = {"nai": nai, "spi": spi, "key": key.hex(), "hoa": hoa, "home_prefix": "2001:db8:aa::/64",
           "ha": "2001:db8:aa::1", "ha_ipv4": bf.HA4[0], "domain": "example.test", "bootstrap": ["static"],
           "transports": ["udp4"], "lifetime": 900, "timestamps": True,
           "state_file": os.path.join(b.dir, "mn.state"),
           "probe": {"port": PROBE_PORT, "sensor": {"dst": bf.HM6, "port": SENSOR_PORT, "interval_ms": interval}}}
    if getattr(b, "psk", None) is not None:             # --security ipsec (node/ipsecconf.py)
        for k in ("spi", "key", "timestamps"):
            del cfg[k]
        cfg.update(security="ipsec", psk=b.psk.hex())
    if standby_retry_ms:
        cfg["standby_retry_ms"] = standby_retry_ms      # node/standbyretry.py
    path = os.path.join(b.dir, "mn-config.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    mn = start_mn(b, path, heap, os.path.join(b.dir, "mn.log"))
    if mn.wait_for(lambda e: e.get("ev") == "ba" and e.get("status") == 0, 30) is None:
        raise RuntimeError("the MN did not register within 30 s; its last lines:\n" + mn.tail(10))
    return mn


def _probe(b, ns, argv, what, want="ready"):
    p = EventProc(b, b.n.popen(ns, instrument_argv([sys.executable, "-u", "-m", "roam6_hil.probe"] + argv),
                               stdout=subprocess.PIPE, text=True))
    if p.readline(5) != "ready":
        raise RuntimeError("the %s did not start" % what)
    return p


def _fail(b, kind, victim):
    """Take the active HA away; returns the time.monotonic() of the failure."""
    t = time.monotonic()
    b.t_fail_wall = time.time()           # the HAs' log lines carry wall time
    if kind == "crash":
        b.ha[victim].kill()
    else:
        # both links in one `ip -batch` (microseconds apart, as when a host loses power): one at a
        # time (~2 ms apart under load) let a BA leave by the uplink after the record to the
        # standby was lost with the home link, which a host vanishing does not do (a home link
        # alone failing would: docs/ARCHITECTURE.md "HA continuity")
        b.n.batch(victim, ["link set h0 down", "link set u0 down"])
        b.ha[victim].kill()
        b.ka[victim].proc.kill()
        b.ka[victim].proc.wait(5)
        b.ka[victim].log.close()
    return t


def _restore(b, kind, victim):
    if kind == "host":
        for dev in ("h0", "u0"):
            b.n.ip(victim, "addr", "flush", "dev", dev)
            b.n.ip(victim, "link", "set", dev, "up")
        b._addrs(victim)
    h = b.start_ha(victim)
    if kind == "host":
        b.start_ka(victim, 100 if victim == "ha1" else 90)
    synced = [e for e in map(bf._json, h.lines) if e.get("ev") == "replica_synced"]
    return synced[-1]["bindings"] if synced else None


def run(args, quiet=False):
    kinds = check_args(args)
    netns.check_prefix(args.prefix)
    netns.require_root_and_tools(("ip",))
    from roam6_host.ha.vrrp import keepalived_binary
    keepalived_binary()          # keepalived missing: a clear error naming the package
    rnd = random.Random(args.seed)
    folder = os.path.abspath(args.report)
    os.makedirs(folder, exist_ok=True)
    work = os.path.join(folder, "bench")
    if os.path.isdir(work):
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    netns.cleanup_prefix(args.prefix)
    b = _Bench(argparse.Namespace(bindings=args.bindings, advert_ms=args.advert_ms, prefix=args.prefix,
                                  security=args.security), work)
    t_start = time.monotonic()
    say = (lambda m: None) if quiet else (lambda m: print("%5.1f s  %s" % (time.monotonic() - t_start, m), flush=True))
    failures, roams, mn, probes = [], [], None, []
    try:
        b.build()
        say("bench built")
        # both HA processes start at once (each is a standby until keepalived gives it the address)
        for ns in ("ha1", "ha2"):
            b.ha[ns] = bf.HAProc(b.n.full(ns), b.cfg[ns])
            b.all_ha.append(b.ha[ns])
        for ns in ("ha1", "ha2"):
            b.ha[ns].wait("ready")
        say("HAs ready")
        b.start_ka("ha1", 100)
        b.ha["ha1"].wait("takeover", timeout=10)
        say("ha1 active")
        b.start_ka("ha2", 90)
        b.ha["ha2"].wait("replica_ready", timeout=10)
        say("pair up")
        mn = _start_mn(b, max(1, int(args.interval)), args.heap, args.standby_retry_ms)
        others = bf._register_others(b)
        say("MN registered, %d other bindings" % others)
        sniff_out, cn_out = os.path.join(work, "sniff.json"), os.path.join(work, "cn.json")
        sniff = _probe(b, "mn", ["sniff", "--iface", "wlan0", "--out", sniff_out], "sniffer")
        cn = _probe(b, "hm", ["cn", "--dst", bf.HOA_BASE % 0x100, "--port", str(PROBE_PORT), "--listen",
                              str(SENSOR_PORT), "--interval", str(args.interval), "--out", cn_out], "prober")
        probes = [cn, sniff]
        if cn.readline(10) != "flowing":
            raise RuntimeError("no probe came back from the MN within 10 s; MN log:\n" + mn.tail(10))
        t_flowing = time.monotonic()     # probes before it (the prober's start, its first ND) not counted
        roamer = _Roamer(b)

        def roam_and_ba():
            st = roamer.roam()
            ev = mn.wait_for(lambda e: e.get("ev") == "ba" and e.get("status") == 0, 5.0, since=st["t_down"])
            st["t_ba"] = ev["t"] if ev else None
            roams.append(st)
            return st

        time.sleep(args.dwell)
        for i in range(args.failures):
            kind = kinds[i % len(kinds)]
            mid = {"never": False, "always": True}.get(args.mid_roam, (i // len(kinds)) % 2 == 0)
            roam_and_ba()                         # roaming goes on between failures
            time.sleep(args.dwell)
            victim = b.active()
            if victim is None:
                raise RuntimeError("no HA holds the shared address before failure %d" % (i + 1))
            other = "ha2" if victim == "ha1" else "ha1"
            before = 1 + others
            if mid:
                # the failure lands between the link loss and the BA on the new network
                at = {}
                delay = rnd.uniform(0.0, 0.03)
                tm = threading.Timer(delay, lambda: at.setdefault("t", _fail(b, kind, victim)))
                tm.start()
                st = roam_and_ba()
                tm.join()
                t_fail = at["t"]
            else:
                time.sleep(rnd.uniform(0.0, args.dwell))
                t_fail = _fail(b, kind, victim)
            ev = b.ha[other].wait("takeover", timeout=10)
            while ev["t"] < b.t_fail_wall - 0.005:        # an earlier one (a VRRP flap): the next
                ev = b.ha[other].wait("takeover", timeout=10)
            t_take = t_fail + max(0.0, ev["t"] - b.t_fail_wall)
            if mid and st.get("t_ba") is None:        # the roam's BA was lost with the HA: wait for the retry
                e = mn.wait_for(lambda e: e.get("ev") == "ba" and e.get("status") == 0, 5.0, since=st["t_down"])
                st["t_ba"] = e["t"] if e else None
            time.sleep(args.dwell)
            synced = _restore(b, kind, victim)
            f = {"n": i + 1, "kind": kind, "mid_roam": mid, "failed": victim, "t_fail": t_fail,
                 "takeover_after_ms": round((t_take - t_fail) * 1000, 1), "bindings_before": before,
                 "bindings_after": ev["bindings"], "bindings_lost": max(0, before - ev["bindings"]),
                 "rejoined_synced_bindings": synced}
            failures.append(f)
            say("failure %d/%d: %s of %s%s, takeover by %s after %.0f ms, bindings %d -> %d"
                % (i + 1, args.failures, kind, victim, " mid-roam" if mid else "", other, f["takeover_after_ms"],
                   before, ev["bindings"]))
        time.sleep(args.dwell)
        for p in probes:
            p.p.send_signal(signal.SIGTERM)
        for p in probes:
            try:
                p.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        mn_alive = mn.alive()
        bus = [e for e in mn.events if e.get("ev") == "bu"]
        if args.security == "ipsec":
            _rekeys(failures, mn.events)
        mn.stop(grace=1.0)
        with open(cn_out) as fc:
            cn_rec = json.load(fc)
        with open(sniff_out) as fs:
            sniff_rec = json.load(fs)
    finally:
        for p in probes:
            if p.alive():
                p.stop(grace=0.5)
        if mn is not None and mn.alive():
            mn.stop(grace=0.5)
        b.teardown()
    report = analyse(failures, roams, bus, cn_rec, sniff_rec, args, mn_alive, t_flowing)
    # an active HA that lost the addresses while its host was up (a VRRP flap: under load, 10 ms
    # adverts can starve); a host failure takes its links down just before the kill: not counted
    report["takeovers"] = sum(1 for h in b.all_ha for e in map(bf._json, h.lines) if e.get("ev") == "takeover")
    report["flaps"] = sum(1 for h in b.all_ha for e in map(bf._json, h.lines) if e.get("ev") == "standby"
                          and (h.killed_t is None or e["t"] < h.killed_t - 0.5))
    path = os.path.join(folder, "report.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    if not quiet:
        print(table(report))
        print("takeovers %d (%d failures + the first), VRRP flaps %d" % (report["takeovers"], len(failures),
                                                                          report["flaps"]))
        print("report: %s\nresult: %s" % (path, "OK" if report["ok"] else "FAILED: " + ", ".join(report["why"])))
    return 0 if report["ok"] else 1


def _rekeys(failures, events):
    """--security ipsec: per failure, when the MN had a CHILD_SA with the new active (its `ike`
    child_up after the failure: its next BU went unanswered, its recheck ran IKE_SA_INIT + IKE_AUTH)
    and its BA under it, in ms after the failure. A failure outside a roam is noticed at the MN's
    next BU only (the next roam, dwell seconds later; data through the UDP tunnel needs no SA)."""
    for f in failures:
        t = f["t_fail"]
        up = next((e for e in events if e.get("ev") == "ike" and e.get("state") == "child_up" and e["t"] > t), None)
        ba = up and next((e for e in events if e.get("ev") == "ba" and e.get("status") == 0 and e["t"] >= up["t"]),
                         None)
        f["ipsec_recheck"] = any(e.get("ev") == "ike" and e.get("state") == "recheck" and e["t"] > t
                                 and (up is None or e["t"] <= up["t"]) for e in events)
        f["ipsec_rekeyed_after_ms"] = round((up["t"] - t) * 1000, 1) if up else None
        f["ipsec_registered_after_ms"] = round((ba["t"] - t) * 1000, 1) if ba else None
        bu = next((e for e in events if e.get("ev") == "bu" and e["t"] > t), None)     # the first BU it lost
        f["ipsec_bu_after"] = bu is not None
        f["ipsec_first_bu_to_ba_ms"] = (round((ba["t"] - bu["t"]) * 1000, 1) if ba and bu and bu["t"] <= ba["t"]
                                        else None)


def analyse(failures, roams, bus, cn_rec, sniff_rec, args, mn_alive, t0):
    down_sent = {s: t for s, t in cn_rec["sent"]}          # R6PD: prober -> MN
    down_got = {s: t for s, t in sniff_rec["down"]}
    up_sent = {s: t for s, t in sniff_rec["up"]}            # R6PU: MN -> prober
    up_got = {s: t for s, t in cn_rec["up"]}
    down_t, up_t = sorted(down_got.values()), sorted(up_got.values())
    windows = []

    def window(lo, hi, whole=False):
        """The longest gap each way overlapping [lo, hi] (from 20 ms before its start: the one-way
        trip); whole: [lo - 20 ms, hi] too (a roam: the link is down from lo to its BA, whatever the
        gaps, which a failure in the middle of it may merge into one longer one)."""
        gd, gu = bf.longest_gap(down_t, lo, hi), bf.longest_gap(up_t, lo, hi)
        gaps = [g for g in (gd, gu) if g is not None]
        w = (min(g[1] for g in gaps) - 0.02 if gaps else lo, max(g[2] for g in gaps) if gaps else hi)
        if whole:
            w = (min(w[0], lo - 0.02), max(w[1], hi))
        windows.append(w)
        return gd, gu, w

    for r in roams:
        window(r["t_down"], (r.get("t_ba") or r["t_addr"]) + 0.05, whole=True)
    # the BU each roam caused (the first after its link loss); any other BU is a re-registration
    roam_bus = set()
    for r in roams:
        first = next((i for i, e in enumerate(bus) if e["t"] >= r["t_down"]), None)
        if first is not None:
            roam_bus.add(first)
    for f in failures:
        t = f.pop("t_fail")
        gd, gu, w = window(t, t + f["takeover_after_ms"] / 1000 + 0.3)
        f["interruption_down_ms"] = None if gd is None else round(gd[0] * 1000, 1)
        f["interruption_up_ms"] = None if gu is None else round(gu[0] * 1000, 1)
        f["lost_down"] = sum(1 for s, ts in down_sent.items() if w[0] <= ts <= w[1] and s not in down_got)
        f["lost_up"] = sum(1 for s, ts in up_sent.items() if w[0] <= ts <= w[1] and s not in up_got)
        f["reregistered"] = any(t - 0.01 <= e["t"] <= w[1] + 2.0 for i, e in enumerate(bus) if i not in roam_bus)
        f["recovered"] = gd is not None and gu is not None and gd[2] > t and gu[2] > t
    end_d = max(down_t) - 0.2 if down_t else 0
    end_u = max(up_t) - 0.2 if up_t else 0

    def outside(ts):
        return not any(lo <= ts <= hi for lo, hi in windows)
    out_d = sorted(ts for s, ts in down_sent.items() if t0 <= ts < end_d and outside(ts) and s not in down_got)
    out_u = sorted(ts for s, ts in up_sent.items() if t0 <= ts < end_u and outside(ts) and s not in up_got)
    lost_d, lost_u = len(out_d), len(out_u)
    downs = [f["interruption_down_ms"] for f in failures if f["interruption_down_ms"] is not None]
    ups = [f["interruption_up_ms"] for f in failures if f["interruption_up_ms"] is not None]
    worst = [max(a, c) for a, c in zip(downs, ups)]
    roam_gaps = [round(bf.longest_gap(down_t, r["t_down"], r["t_down"] + 0.001)[0] * 1000, 1)
                 for r in roams if bf.longest_gap(down_t, r["t_down"], r["t_down"] + 0.001)]
    why = []
    if not all(f["recovered"] for f in failures):
        why.append("not every failure recovered")
    if sum(f["bindings_lost"] for f in failures):
        why.append("bindings lost")
    if lost_d or lost_u:
        why.append("probes lost outside the interruptions")
    if not mn_alive:
        why.append("the MN died")
    ipsec = None
    if args.security == "ipsec":
        if any(f["ipsec_first_bu_to_ba_ms"] is None and f["ipsec_bu_after"] for f in failures):
            why.append("an IPsec MN did not re-key with the new active after a failure")
        mid = [f["ipsec_registered_after_ms"] for f in failures if f["mid_roam"]]
        mid = [x for x in mid if x is not None]
        bu_ba = [f["ipsec_first_bu_to_ba_ms"] for f in failures if f["ipsec_first_bu_to_ba_ms"] is not None]
        ipsec = {"rekeyed_after_ms_mid_roam": {"p50": bf.pct(mid, 50), "max": bf.pct(mid, 100)},
                 "first_bu_to_ba_ms": {"p50": bf.pct(bu_ba, 50), "max": bf.pct(bu_ba, 100)},
                 "what": "rekeyed_after_ms_mid_roam: ms from the failure to the MN's BA under a CHILD_SA with the "
                         "new active (a failure the roam's BA beat re-keys at the next roam, dwell s later: data "
                         "through the UDP tunnel needs no SA); first_bu_to_ba_ms: from the MN's first BU after "
                         "the failure (unanswered: the new active has no SA) to that BA: its retry (standby_retry_ms"
                         " or 1 s), the recheck's IKE_SA_INIT + IKE_AUTH, the BU again"}
    p50 = bf.pct(worst, 50)
    return {"scenario": "failover", "security": args.security, "ipsec": ipsec,
            "mn": "MicroPython MN (unix port, .mpy bundle), udp4, probe echo + sensor stream",
            "interval_ms": args.interval, "advert_ms": args.advert_ms, "kinds": args.kinds, "dwell_s": args.dwell,
            "standby_retry_ms": args.standby_retry_ms,
            "failures": failures, "roams": len(roams),
            "roam_interruption_down_ms": {"p50": bf.pct(roam_gaps, 50), "max": bf.pct(roam_gaps, 100)},
            "interruption_down_ms": {"p50": bf.pct(downs, 50), "p90": bf.pct(downs, 90), "max": bf.pct(downs, 100)},
            "interruption_up_ms": {"p50": bf.pct(ups, 50), "p90": bf.pct(ups, 90), "max": bf.pct(ups, 100)},
            "interruption_ms_p50": p50,
            "interruption_ms_p50_steady": bf.pct([w for w, f in zip(worst, failures) if not f["mid_roam"]], 50),
            "interruption_ms_p50_mid_roam": bf.pct([w for w, f in zip(worst, failures) if f["mid_roam"]], 50),
            "bindings_lost_total": sum(f["bindings_lost"] for f in failures),
            "reregistrations": sum(1 for f in failures if f["reregistered"]),
            "lost_outside_interruptions": {"down": lost_d, "up": lost_u},
            "probes_sent": {"down": len(down_sent), "up": len(up_sent)},
            # s from the start of the probes: the windows, and the probes lost outside them (the first 50)
            "windows_s": [[round(lo - t0, 3), round(hi - t0, 3)] for lo, hi in windows],
            "lost_outside_at_s": {"down": [round(x - t0, 3) for x in out_d[:50]],
                                  "up": [round(x - t0, 3) for x in out_u[:50]]},
            "roam_stamps_s": [{k: (round(v - t0, 3) if isinstance(v, float) else v) for k, v in r.items()}
                              for r in roams],
            "goal": "p50 interruption <= 100 ms, 0 bindings lost, 0 probes lost outside interruptions",
            "goal_met": not why and p50 is not None and p50 <= 100,
            "ok": not why, "why": why}


def table(r):
    rows = ["%-3s %-5s %-4s %-4s %8s %8s %6s %6s %6s %9s" % ("n", "kind", "mid", "from", "down ms", "up ms",
                                                              "lostD", "lostU", "rereg", "bindings")]
    for f in r["failures"]:
        rows.append("%-3d %-5s %-4s %-4s %8s %8s %6d %6d %6s %4d->%-4d" % (
            f["n"], f["kind"], "yes" if f["mid_roam"] else "no", f["failed"], f["interruption_down_ms"],
            f["interruption_up_ms"], f["lost_down"], f["lost_up"], "yes" if f["reregistered"] else "no",
            f["bindings_before"], f["bindings_after"]))
    rows.append("interruption p50 (worse direction) %s ms (steady %s, mid-roam %s; roams alone: down p50 %s ms); "
                "%d bindings lost; lost outside: %s" % (r["interruption_ms_p50"], r["interruption_ms_p50_steady"],
                                                       r["interruption_ms_p50_mid_roam"],
                                                       r["roam_interruption_down_ms"]["p50"], r["bindings_lost_total"],
                                                       r["lost_outside_interruptions"]))
    if r.get("ipsec"):
        rows.append("ipsec: the MN's first BU after the failure -> BA under a new CHILD_SA with the new active: "
                    "p50 %s ms, max %s ms; failure -> that BA per failure %s ms" % (
                        r["ipsec"]["first_bu_to_ba_ms"]["p50"], r["ipsec"]["first_bu_to_ba_ms"]["max"],
                        [f["ipsec_registered_after_ms"] for f in r["failures"]]))
    return "\n".join(rows)
