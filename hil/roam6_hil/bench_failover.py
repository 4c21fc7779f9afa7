"""`roam6 bench failover`: a hot-standby HA pair (two `roam6 ha` + two keepalived, VRRPv3) on one
home link in namespaces, N failures of the active HA, and what the mobile nodes saw.

    lan: bridge "home" <- ha1 h0 (2001:db8:aa::2), ha2 h0 (::3), hm (::50)    shared ::1
         bridge "upl"  <- ha1 u0 (198.18.1.3),    ha2 u0 (.4),  mn (.10)      shared .2

The MN side is the registration core's BUs over real UDP sockets in namespace mn (not the
MicroPython MN: a virtual board would add its own scheduling to the figures): one probed MN
plus `--bindings` more registered MNs. A prober on the home link (hm) sends a probe to the
probed MN's HoA every `--probe-ms`; the MN echoes each one upstream through the tunnel, so both
directions are measured. The MN re-registers only if it hears no probe for 1 s (reported).

Failures alternate between the kinds given: `crash` SIGKILLs the active `roam6 ha` (keepalived
lives on), `host` takes the active host away (its links down, its HA and keepalived killed),
then brings it back as after a reboot (links up, addresses gone, HA and keepalived started). The
failed HA must rejoin as a synced standby before the next failure. Per failure: the gap in
probes each way around it, lost probes, whether the MN re-registered, bindings before and after.
"""
import json
import os
import queue
import random
import secrets
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from roam6_host import nssock
from roam6_host.errors import UserError
from roam6_host.ha.bugen import build_bu, ntp_timestamp
from roam6_host.ha.config import load_config
from roam6_host.ha.vrrp import Keepalived, keepalived_config, keepalived_binary
from roam6_host.procs import end

from . import netns

NAI0 = "mn%d@example.test"
HOA_BASE = "2001:db8:aa::%x"
HM6 = "2001:db8:aa::50"
HA4 = ("198.18.1.2", 4191)
HA6 = socket.inet_pton(socket.AF_INET6, "2001:db8:aa::1")
MN4 = "198.18.1.10"
V4COA = socket.inet_aton(MN4)
PROBE_PORT, ECHO_PORT = 5000, 7001


def register(sub):
    p = sub.add_parser("failover", help="hot-standby HA pair: interruption and bindings across N HA failures")
    p.add_argument("--failures", type=int, default=10, help="number of failures (default 10)")
    p.add_argument("--kinds", default="crash,host", help="failure kinds, alternating (crash, host; default both)")
    p.add_argument("--probe-ms", type=float, default=5.0, help="probe interval, ms (default 5)")
    p.add_argument("--bindings", type=int, default=50, help="other registered MNs (default 50)")
    p.add_argument("--advert-ms", type=int, default=10, help="VRRP advert interval, ms (default 10)")
    p.add_argument("--settle", type=float, default=1.0, help="seconds between failures, plus up to 1 s at random")
    p.add_argument("--prefix", default="r6f-", help="namespace prefix (default r6f-)")
    p.add_argument("--mn", default="core", choices=["core", "micropython"],
                   help="the probed MN: core (the registration core's BUs over real sockets, both directions "
                        "measured apart; default) or micropython (the real MN from its bundle with its probe echo "
                        "application: round trips only)")
    p.add_argument("--raw", metavar="FILE", help="also write every probe's send/arrival times here (JSON)")
    p.set_defaults(func=run)


class HAProc:
    def __init__(self, ns, cfg):
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "roam6_host", "ha",
                                      "--config", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.q = queue.Queue()
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            try:
                self.q.put(json.loads(line))
            except ValueError:
                pass
        self.q.put(None)

    def wait(self, ev, timeout=10.0):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise RuntimeError("no %r from the HA; last lines: %s" % (ev, "".join(self.lines[-8:])))
            try:
                e = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if e is None:
                raise RuntimeError("the HA exited waiting for %r: %s" % (ev, self.proc.stderr.read()[-500:]))
            if e.get("ev") == ev:
                return e

    killed_t = None     # wall time of our SIGKILL (log lines carry wall time "t")

    def kill(self):
        self.killed_t = time.time()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self):
        end(self.proc, 5)


class Bench:
    def __init__(self, args, workdir):
        self.args = args
        self.dir = workdir
        self.n = netns.Namespaces(args.prefix)
        self.ha = {}
        self.all_ha = []
        self.ka = {}
        self.cfg = {}
        self.keys = []

    def build(self):
        n = self.n
        for s in ("lan", "ha1", "ha2", "mn", "hm"):
            n.add(s)
        for br in ("home", "upl"):
            n.ip("lan", "link", "add", br, "type", "bridge")
            n.ip("lan", "link", "set", "dev", br, "up")
        for i, ns in ((1, "ha1"), (2, "ha2")):
            self._veth(ns, "h0", "ph%d" % i, "home")
            self._veth(ns, "u0", "pu%d" % i, "upl")
            self._addrs(ns)
        self._veth("mn", "wlan0", "pmn", "upl")
        n.ip("mn", "addr", "add", MN4 + "/24", "dev", "wlan0")
        self._veth("hm", "eth0", "phm", "home")
        n.ip("hm", "addr", "add", HM6 + "/64", "dev", "eth0", "nodad")
        sas = []
        for i in range(self.args.bindings + 1):
            key = secrets.token_bytes(16)
            self.keys.append((NAI0 % i, 4096 + i, key, HOA_BASE % (0x100 + i)))
            sas.append({"nai": NAI0 % i, "spi": 4096 + i, "key": key.hex(), "hoa": HOA_BASE % (0x100 + i)})
        rkey = secrets.token_hex(32)
        for ns, me, peer in (("ha1", "::2", "::3"), ("ha2", "::3", "::2")):
            d = os.path.join(self.dir, ns)
            os.makedirs(d)
            _write(os.path.join(d, "keys.json"), json.dumps({"sas": sas}))
            _write(os.path.join(d, "replica.key"), rkey)
            _write(os.path.join(d, "ha.json"), json.dumps({
                "home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "ipv4": HA4[0],
                "home_link": "h0", "keys_file": "keys.json", "transports": ["udp4"], "dad_ms": 0,
                "journal": "ha.journal", "max_lifetime": 3600,
                "replica": {"peer": "2001:db8:aa" + peer, "bind": "2001:db8:aa" + me, "key_file": "replica.key"}}))
            self.cfg[ns] = os.path.join(d, "ha.json")

    def _veth(self, ns, ifname, peer, bridge):
        n = self.n
        n._run(["ip", "link", "add", ifname, "netns", n.full(ns), "type", "veth", "peer", "name", peer,
                "netns", n.full("lan")], True, 10)
        n.ip(ns, "link", "set", ifname, "up")
        n.ip("lan", "link", "set", peer, "master", bridge)
        n.ip("lan", "link", "set", peer, "up")

    def _addrs(self, ns):
        i = 2 if ns == "ha1" else 3
        self.n.ip(ns, "addr", "add", "2001:db8:aa::%d/64" % i, "dev", "h0", "nodad")
        self.n.ip(ns, "addr", "add", "198.18.1.%d/24" % (i + 1), "dev", "u0")

    def start_ha(self, ns, first=False):
        h = HAProc(self.n.full(ns), self.cfg[ns])
        self.ha[ns] = h
        self.all_ha.append(h)
        h.wait("ready")
        if not first:
            h.wait("replica_ready", timeout=10)
        return h

    def start_ka(self, ns, prio):
        conf = keepalived_config(load_config(self.cfg[ns]), prio, ipv4_dev="u0", vrid=61, advert_ms=self.args.advert_ms)
        self.ka[ns] = Keepalived(self.n.full(ns), conf, os.path.join(self.dir, "ka"), name=ns)

    def active(self):
        for ns in ("ha1", "ha2"):
            if "2001:db8:aa::1/64" in self.n.ip(ns, "-6", "addr", "show", "dev", "h0").stdout:
                return ns
        return None

    def teardown(self):
        for h in self.ha.values():
            h.stop()
        for i, h in enumerate(self.all_ha):          # every HA process's log, for the curious
            with open(os.path.join(self.dir, "ha-%02d.log" % i), "w") as f:
                f.writelines(h.lines)
        for k in self.ka.values():
            k.stop()
        self.n.teardown()


def _write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _udp6(src, dst, sport, dport, payload):
    from roam6.wire.ipv6 import build_ipv6
    from roam6_codec.udp import build_udp
    return build_ipv6(src, dst, 17, build_udp(sport, dport, payload, src=src, dst=dst))


class MN:
    """The probed MN's socket in namespace mn: BAs, downstream probes (echoed upstream)."""

    def __init__(self, bench, probe_ms):
        self.b = bench
        self.sock = nssock.socket_in(bench.n.full("mn"), socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0), timeout=0.05)
        self.nai, self.spi, self.key, hoa = bench.keys[0]
        self.hoa = socket.inet_pton(socket.AF_INET6, hoa)
        self.hm = socket.inet_pton(socket.AF_INET6, HM6)
        self.seq = 0
        self.down = []          # (recv ms, probe no)
        self.bas = []
        self.rereg = []         # ms of re-registrations
        self.stop = False
        self.last_rx = None

    def bu(self):
        self.seq += 1
        now = time.time_ns() // 1_000_000
        self.sock.sendto(build_bu(self.key, self.spi, self.nai.encode(), self.hoa, HA6, self.seq, 900, "udp4",
                                  v4coa=V4COA, timestamp=ntp_timestamp(now, self.seq)), HA4)

    def loop(self):
        while not self.stop:
            try:
                data = self.sock.recv(2048)
            except socket.timeout:
                data = None
            except OSError:
                continue
            now = time.monotonic() * 1000
            if data is None or len(data) < 48:
                quiet = self.last_rx is not None and now - self.last_rx > 1000
                if quiet and (not self.rereg or now - self.rereg[-1] > 1000):
                    self.rereg.append(now)
                    self.bu()
                continue
            if data[6] == 135:
                self.bas.append((now, data[46]))
                continue
            if data[6] == 17 and len(data) >= 52:
                no = struct.unpack_from(">I", data, 48)[0]
                self.down.append((now, no))
                self.last_rx = now
                self.sock.sendto(_udp6(self.hoa, self.hm, PROBE_PORT, ECHO_PORT, data[48:52]), HA4)


class MicroPythonMN:
    """The real MN (MicroPython unix port, .mpy bundle, probe echo application on HoA port 9000) in
    namespace mn: probes from the home link come back as echoes, so only round trips are seen."""
    PORT = 9000

    def __init__(self, bench):
        from .board_unix import start_mn
        nai, spi, key, hoa = bench.keys[0]
        cfg = {"nai": nai, "spi": spi, "key": key.hex(), "hoa": hoa, "home_prefix": "2001:db8:aa::/64",
               "ha": "2001:db8:aa::1", "ha_ipv4": HA4[0], "domain": "example.test", "bootstrap": ["static"],
               "transports": ["udp4"], "lifetime": 900, "timestamps": True,
               "state_file": os.path.join(bench.dir, "mn.state"), "probe": {"port": self.PORT}}
        path = os.path.join(bench.dir, "mn-config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)

        class _Where:                     # what start_mn needs of a bench: popen("board", ...), workdir
            workdir = bench.dir
            ns = bench.n

            @staticmethod
            def popen(_short, argv, **kw):
                return bench.n.popen("mn", argv, **kw)
        self.proc = start_mn(_Where, path, "256K", os.path.join(bench.dir, "mn.log"))
        self.proc.wait_for(lambda e: e.get("ev") == "ba" and e.get("status") == 0, 30)
        self.rereg = []

    def bus(self):
        return [e for e in self.proc.events if e.get("ev") == "bu"]

    def stop(self):
        self.proc.stop(grace=1.0)


def _register_others(bench):
    s = nssock.socket_in(bench.n.full("mn"), socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0), timeout=2)
    ok = 0
    try:
        for nai, spi, key, hoa in bench.keys[1:]:
            now = time.time_ns() // 1_000_000
            s.sendto(build_bu(key, spi, nai.encode(), socket.inet_pton(socket.AF_INET6, hoa), HA6, 1, 900, "udp4",
                              v4coa=V4COA, timestamp=ntp_timestamp(now, 1)), HA4)
            data = s.recv(2048)
            ok += data[46] == 0
    finally:
        s.close()
    return ok


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))], 1)


def longest_gap(times, lo, hi):
    """The longest gap between consecutive arrivals (a sorted list, any unit) that overlaps [lo, hi]: (gap, a, b)."""
    best = None
    for a, b in zip(times, times[1:]):
        if b >= lo and a <= hi and (best is None or b - a > best[0]):
            best = (b - a, a, b)
    return best


def run(args):
    netns.check_prefix(args.prefix)
    netns.require_root_and_tools(("ip",))
    keepalived_binary()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not kinds or any(k not in ("crash", "host") for k in kinds):
        raise UserError("--kinds takes crash and/or host, got %r" % args.kinds, hint="e.g. --kinds crash,host")
    if not 1 <= args.failures <= 1000 or not 0.5 <= args.probe_ms <= 1000 or not 0 <= args.bindings <= 10000:
        raise UserError("--failures 1..1000, --probe-ms 0.5..1000, --bindings 0..10000",
                        hint="roam6 bench failover --help")
    netns.cleanup_prefix(args.prefix)
    workdir = tempfile.mkdtemp(prefix="roam6-failover-")
    b = Bench(args, workdir)
    failures = []
    try:
        b.build()
        b.start_ha("ha1", first=True)
        b.start_ka("ha1", 100)
        b.ha["ha1"].wait("takeover", timeout=10)
        b.start_ha("ha2")
        b.start_ka("ha2", 90)
        real = args.mn == "micropython"
        if real:
            mn = MicroPythonMN(b)
            t = threading.Thread(target=lambda: None)
            t.start()
            dport = MicroPythonMN.PORT
        else:
            mn = MN(b, args.probe_ms)
            mn.bu()
            t = threading.Thread(target=mn.loop, daemon=True)
            t.start()
            time.sleep(0.2)
            if not mn.bas or mn.bas[0][1] != 0:
                raise RuntimeError("the probed MN did not register: %r" % mn.bas)
            dport = PROBE_PORT
        others = _register_others(b)
        time.sleep(0.3)
        lag = _standby_lag(b.ha["ha1"], b.ha["ha2"])
        # the prober on the home link
        hm = nssock.socket_in(b.n.full("hm"), socket.AF_INET6, socket.SOCK_DGRAM, bind=(HM6, ECHO_PORT), timeout=0.05)
        sent, up = [], []
        stop = threading.Event()

        def prober():
            no = 0
            nxt = time.monotonic()
            while not stop.is_set():
                no += 1
                sent.append((time.monotonic() * 1000, no))
                try:
                    hm.sendto((b"R6PD" if real else b"") + struct.pack(">I", no), (HOA_BASE % 0x100, dport))
                except OSError:
                    pass
                nxt += args.probe_ms / 1000
                d = nxt - time.monotonic()
                if d > 0:
                    time.sleep(d)

        def echoes():
            while not stop.is_set():
                try:
                    data = hm.recv(64)
                except socket.timeout:
                    continue
                except OSError:
                    continue
                if real and data[:4] == b"R6PD" and len(data) >= 8:
                    up.append((time.monotonic() * 1000, struct.unpack(">I", data[4:8])[0]))
                elif not real and len(data) >= 4:
                    up.append((time.monotonic() * 1000, struct.unpack(">I", data[:4])[0]))
        threads = [threading.Thread(target=prober, daemon=True), threading.Thread(target=echoes, daemon=True)]
        for th in threads:
            th.start()
        time.sleep(0.5)
        for i in range(args.failures):
            time.sleep(args.settle + random.random())
            kind = kinds[i % len(kinds)]
            victim = b.active()
            if victim is None:
                raise RuntimeError("no HA holds the shared address before failure %d" % (i + 1))
            other = "ha2" if victim == "ha1" else "ha1"
            t_fail = time.monotonic() * 1000
            if kind == "crash":
                b.ha[victim].kill()
            else:
                b.n.ip(victim, "link", "set", "h0", "down")
                b.n.ip(victim, "link", "set", "u0", "down")
                b.ha[victim].kill()
                b.ka[victim].proc.kill()
                b.ka[victim].proc.wait(5)
                b.ka[victim].log.close()
            ev = b.ha[other].wait("takeover", timeout=10)
            t_take = time.monotonic() * 1000
            time.sleep(0.5)
            # bring the failed side back
            if kind == "host":
                b.n.ip(victim, "addr", "flush", "dev", "h0")
                b.n.ip(victim, "addr", "flush", "dev", "u0")
                b.n.ip(victim, "link", "set", "h0", "up")
                b.n.ip(victim, "link", "set", "u0", "up")
                b._addrs(victim)
            h = b.start_ha(victim)
            if kind == "host":
                b.start_ka(victim, 100 if victim == "ha1" else 90)
            synced = [e for e in map(_json, h.lines) if e.get("ev") == "replica_synced"]
            failures.append({"n": i + 1, "kind": kind, "failed": victim, "t_fail": t_fail,
                             "takeover_after_ms": round(t_take - t_fail, 1), "bindings_after": ev["bindings"],
                             "rejoined_synced_bindings": synced[-1]["bindings"] if synced else None})
        time.sleep(0.5)
        stop.set()
        if real:
            # BUs beyond the first registration, at ticks_ms (CLOCK_MONOTONIC ms on the unix port)
            rereg = [e.get("t_ms", 0) for e in mn.bus()[1:]]
            mn.stop()
        else:
            mn.stop = True
            rereg = mn.rereg
        for th in threads + [t]:
            th.join(2)
        hm.close()
        if not real:
            mn.sock.close()
        down_t = [] if real else sorted(x for x, _ in mn.down)
        up_t = sorted(x for x, _ in up)
        got_down = {no for _, no in up} if real else {no for _, no in mn.down}
        got_up = {no for _, no in up}
        sent_at = dict((no, ts) for ts, no in sent)
        windows = []
        for f in failures:
            end = f["t_fail"] + f["takeover_after_ms"] + 1000      # the takeover and a second after it
            gd, gu = longest_gap(down_t, f["t_fail"], end), longest_gap(up_t, f["t_fail"], end)
            f["interruption_down_ms"] = None if gd is None else round(gd[0], 1)
            f["interruption_up_ms"] = None if gu is None else round(gu[0], 1)
            # the interruption: from the last probe through before the gap (less the one-way trip,
            # 20 ms at most) to the first one after it, in either direction
            gaps = [g for g in (gd, gu) if g is not None]
            lo = min(g[1] for g in gaps) - 20 if gaps else f["t_fail"]
            hi = max(g[2] for g in gaps) if gaps else end
            windows.append((lo, hi))
            f["lost_down"] = sum(1 for no, ts in sent_at.items() if lo <= ts <= hi and no not in got_down)
            f["lost_up"] = sum(1 for no, ts in sent_at.items() if lo <= ts <= hi and no not in got_up)
            f["reregistered"] = any(lo <= r <= hi + 5000 for r in rereg)
            f["bindings_before"] = 1 + others
            f["bindings_lost"] = f["bindings_before"] - f["bindings_after"]
            del f["t_fail"]
        last = sent[-1][0] - 200 if sent else 0      # the last probes may still be in flight
        outside = [no for ts, no in sent if ts < last and not any(lo <= ts <= hi for lo, hi in windows)]
        lost_out_down = sum(1 for no in outside if no not in got_down)
        lost_out_up = sum(1 for no in outside if no not in got_up)
        if args.raw:
            with open(args.raw, "w") as fr:
                json.dump({"sent": sent, "down": [] if real else mn.down, "up": up, "rereg": rereg,
                           "windows": windows}, fr)
        if real:            # one probe stream, echoed: each gap is the round trip's
            for f in failures:
                f["interruption_round_trip_ms"] = f.pop("interruption_up_ms")
                f["lost_round_trip"] = f.pop("lost_up")
                del f["interruption_down_ms"], f["lost_down"]
        downs = [f["interruption_down_ms"] for f in failures if f.get("interruption_down_ms") is not None]
        key = "interruption_round_trip_ms" if real else "interruption_up_ms"
        ups = [f[key] for f in failures if f.get(key) is not None]
        return {"benchmark": "failover", "failures": failures, "logs": workdir, "kinds": kinds,
                "probe_ms": args.probe_ms,
                "advert_ms": args.advert_ms, "bindings": 1 + others, "probes_sent": len(sent),
                "mn": ("MicroPython MN (unix port, .mpy bundle, probe echo), udp4: round trips home link -> "
                       "MN -> home link" if real else
                       "registration core over real UDP sockets (CPython), udp4"),
                ("interruption_down_ms" if not real else "interruption_one_way_ms"):
                    None if real else {"p50": pct(downs, 50), "p90": pct(downs, 90), "max": pct(downs, 100)},
                key: {"p50": pct(ups, 50), "p90": pct(ups, 90), "max": pct(ups, 100)},
                "bindings_lost_total": sum(f["bindings_lost"] for f in failures),
                # first registrations: the active's log line -> the standby's (both after the journal)
                "standby_lag_ms": {"n": len(lag), "p50": pct(lag, 50), "p99": pct(lag, 99), "max": pct(lag, 100)},
                "reregistrations": len(rereg),
                # one per failure plus the first start; more: an HA got the addresses it should not have
                "takeovers": sum(1 for h in b.all_ha for e in map(_json, h.lines) if e.get("ev") == "takeover"),
                # an active HA that lost the addresses while its host was up (a VRRP flap; a host
                # failure takes its links down just before the kill: not counted)
                "flaps": sum(1 for h in b.all_ha for e in map(_json, h.lines) if e.get("ev") == "standby"
                             and (h.killed_t is None or e["t"] < h.killed_t - 0.5)),
                "lost_outside_interruptions": ({"round_trip": lost_out_up} if real else
                                               {"down": lost_out_down, "up": lost_out_up}),
                "goal": "p50 interruption <= 100 ms, 0 bindings lost, 0 lost outside interruptions"}
    finally:
        b.teardown()


def _standby_lag(active, standby):
    """ms from the active's binding_added log line to the standby's, per HoA (log times are wall)."""
    def added(h):
        return {e["hoa"]: e["t"] for e in map(_json, h.lines) if e.get("ev") == "binding_added"}
    a, s = added(active), added(standby)
    return [round((s[h] - a[h]) * 1000, 3) for h in a if h in s]


def _json(line):
    try:
        return json.loads(line)
    except ValueError:
        return {}
