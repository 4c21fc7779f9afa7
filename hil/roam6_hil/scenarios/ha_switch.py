"""`roam6 hil run ha-switch`: --mns MicroPython MNs (one process each, all in the board namespace on
apB, care-of addresses 192.0.2.50+i, udp4, a list of two HAs) registered with HA1 are drained to
HA2 by `roam6 ha switch --all` (RFC 5142). The CN probes every MN's HoA every --interval ms (its
probe application echoes them): per device, the interruption (the longest gap in its echoes
from the moment it takes the switch to its registration at HA2 and deregistration at HA1; never
below the probe spacing) and what it lost; probes lost outside those windows; the time to drain them
all (the command's own clock) and the devices that did not move. Writes DIR/report.json; exit 0
only if every device moved and nothing was lost outside the windows.
"""
import json
import os
import secrets
import socket
import struct
import sys
import threading
import time

from roam6_host.heapsize import HELP as HEAP_HELP, heap_size
from roam6_host import nssock
from roam6_host.errors import UserError

from ..bench_failover import longest_gap, pct
from ..board_unix import start_mn
from ..hapair import HA2, HA2_V4, add_ha2_host, start_ha2
from ..homeagent import start_ha, write_ha_config
from ..topology import HA_ADDR, HA_IPV4, HOME_PREFIX, Bench

PROBE_PORT = 9000


def add_arguments(p):
    p.add_argument("--mns", type=int, default=20, help="mobile nodes to drain (default 20)")
    p.add_argument("--interval", type=float, default=20.0, help="ms between probes to each MN (default 20)")
    p.add_argument("--heap", type=heap_size, default="100K", metavar="SIZE",
                   help="each MN's MicroPython heap (default 100K); " + HEAP_HELP)
    p.add_argument("--deadline", type=int, default=60, help="the switch command's deadline, s (default 60)")
    p.add_argument("--report", default="reports/ha-switch", metavar="DIR",
                   help="report folder (default reports/ha-switch)")
    p.add_argument("--prefix", default="r6hs-", help="namespace prefix (default r6hs-)")
    p.add_argument("--dad-pinned", action="store_true",
                   help="the HAs run DAD for pinned HoAs too (ha.json dad_skip_pinned false): the old behaviour")


class Prober:
    """In the cn namespace: b"R6PD" + seq to every HoA in turn, every `interval` ms each; echoes by source."""

    def __init__(self, bench, hoas, interval_ms):
        self.s = nssock.socket_in(bench.ns.full("cn"), socket.AF_INET6, socket.SOCK_DGRAM, bind=("::", 9003),
                                  timeout=0.02)
        self.hoas = hoas
        self.interval = interval_ms / 1000
        self.sent = {h: [] for h in hoas}       # (t, seq)
        self.got = {h: [] for h in hoas}        # (t, seq)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._send, self._recv)]
        for t in self.threads:
            t.start()

    def _send(self):
        seq, nxt = 0, time.monotonic()
        while not self.stop.is_set():
            for h in self.hoas:
                seq += 1
                self.sent[h].append((time.monotonic(), seq))
                try:
                    self.s.sendto(b"R6PD" + struct.pack(">I", seq), (h, PROBE_PORT))
                except OSError:
                    pass
            nxt += self.interval
            d = nxt - time.monotonic()
            if d > 0:
                time.sleep(d)
            else:
                nxt = time.monotonic()

    def _recv(self):
        while not self.stop.is_set():
            try:
                d, a = self.s.recvfrom(64)
            except (socket.timeout, OSError):
                continue
            if d[:4] == b"R6PD" and len(d) >= 8 and a[0] in self.got:
                self.got[a[0]].append((time.monotonic(), struct.unpack(">I", d[4:8])[0]))

    def flowing(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(self.got[h] for h in self.hoas):
                return True
            time.sleep(0.05)
        return False

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(2)
        self.s.close()


def run(args, quiet=False):
    if not 1 <= args.mns <= 200:
        raise UserError("--mns must be 1..200, got %d" % args.mns)
    if not 1 <= args.interval <= 1000 or not args.deadline > 0:
        raise UserError("--interval must be 1..1000 ms and --deadline more than 0 s")
    from ..netns import require_root_and_tools
    require_root_and_tools(("ip",))
    folder = os.path.abspath(args.report)
    os.makedirs(folder, exist_ok=True)
    t0 = time.monotonic()
    say = (lambda m: None) if quiet else (lambda m: print("%5.1f s  %s" % (time.monotonic() - t0, m), flush=True))
    key = secrets.token_hex(16)
    sas = [{"nai": "dev%d@example.test" % i, "spi": 5000 + i, "key": key, "hoa": "2001:db8:aa::%x" % (0x200 + i)}
           for i in range(args.mns)]
    hoas = [sa["hoa"] for sa in sas]
    mns, prober = [], None
    with Bench(prefix=args.prefix, workdir=os.path.join(folder, "bench")) as bench:
        confs = []
        for name in ("ha1", "ha2"):
            conf = write_ha_config(bench, key, name=name)
            with open(conf) as f:
                c = json.load(f)
            with open(c["keys_file"], "w") as f:
                json.dump({"sas": sas}, f)
            if name == "ha2":
                c.update(address=HA2, ipv4=HA2_V4, home_link="h2")
            c["dad_skip_pinned"] = not args.dad_pinned    # every HoA is pinned (PROTOCOL-NOTES §11.14)
            with open(conf, "w") as f:
                json.dump(c, f)
            confs.append(conf)
        ha1 = start_ha(bench, confs[0])
        bench.services.append(ha1)
        add_ha2_host(bench)
        ha2 = start_ha2(bench, confs[1])
        bench.services.append(ha2)
        bench.attach("apB", addressing="static")
        try:
            for i, sa in enumerate(sas):
                coa = "192.0.2.%d" % (50 + i)
                if i:
                    bench.ip("board", "addr", "add", coa + "/24", "dev", "wlan0")
                path = bench.path("mn%d.json" % i)
                with open(path, "w") as f:
                    json.dump({"nai": sa["nai"], "spi": sa["spi"], "key": key, "hoa": sa["hoa"],
                               "home_prefix": HOME_PREFIX, "ha": [HA_ADDR, HA2], "ha_ipv4": [HA_IPV4, HA2_V4],
                               "transports": ["udp4"], "state_file": bench.path("mn%d.state" % i),
                               "probe": {"port": PROBE_PORT}}, f)
                mns.append(start_mn(bench, path, args.heap, bench.path("mn%d.log" % i),
                                    extra=["--coa", coa, "--transport", "udp4"]))
            for i, mn in enumerate(mns):
                if mn.wait_for(lambda e: e.get("ev") == "registered", 30) is None:
                    raise RuntimeError("MN %d did not register with HA1:\n%s" % (i, mn.tail(10)))
            say("%d MNs registered with HA1" % len(mns))
            prober = Prober(bench, hoas, args.interval)
            if not prober.flowing(10):
                raise RuntimeError("not every MN echoes the CN's probes")
            t_flowing = time.monotonic()      # probes before (the first ND of each HoA) not counted
            time.sleep(1.0)                   # (its last 0.8 s: the idle gaps, the baseline)
            for mn in mns:
                mn.mark()
            t_cmd = time.monotonic()
            r = bench.run("ha", [sys.executable, "-m", "roam6_host", "ha", "switch", "--tun", "r6tun", "--all",
                                 "--to", HA2, "--deadline", str(args.deadline), "--json"],
                          check=False, timeout=args.deadline + 30)
            t_done = time.monotonic()
            try:
                last = json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                raise RuntimeError("`roam6 ha switch` said: %s %s" % (r.stdout[-500:], r.stderr[-500:]))
            say("switch command: %s of %d moved in %s ms" % (last.get("moved"), len(mns), last.get("elapsed_ms")))
            regs = [mn.wait_for(lambda e: e.get("ev") == "registered", 10, since=t_cmd) for mn in mns]
            ha2_added = sum(1 for e in ha2.events if e.get("ev") == "binding_added")
            time.sleep(3.0)           # the probes after the last registration: the gaps' ends
            prober.close()
            devices = []
            for i, (mn, h, reg) in enumerate(zip(mns, hoas, regs)):
                got_t = sorted(t for t, _ in prober.got[h])
                got = {s for _, s in prober.got[h]}
                t_reg = (reg["t_rx"] if reg else t_done) + 0.05
                dereg = [e for e in mn.events if e.get("ev") == "old_ha_dereg" and e["t_rx"] >= t_cmd]
                # make before break: the deregistration at HA1 comes after the registration at HA2
                t_reg = max(t_reg, dereg[0]["t_rx"] + 0.05) if dereg else t_reg
                # from the moment this MN takes the switch (before, HA1 serves it as before: a gap
                # then is the host busy, e.g. starting the switch command, not the switch)
                sw = [e["t"] for e in mn.events if e.get("ev") == "ha_switch" and e["t_rx"] >= t_cmd]
                t_sw = sw[0] if sw else t_cmd
                g = longest_gap(got_t, t_sw, t_reg + 0.15)
                # the device's window: its switch to its registration at HA2 and its deregistration
                # at HA1, and the gap
                lo, hi = (min(g[1] - 0.02, t_sw), max(g[2], t_reg)) if g else (t_sw, t_reg)
                end = prober.sent[h][-1][0] - 0.3
                idle = longest_gap(got_t, t_cmd - 0.8, t_cmd)
                devices.append({
                    # moved: registered after the switch, and every HA change since was to HA2 (not
                    # back to HA1 by the HA list, then moved again by a retransmitted switch)
                    "n": i, "hoa": h, "moved": bool(reg) and bool(sw) and all(
                        e.get("ha") == HA2 for e in mn.events if e.get("ev") == "ha_switch" and e["t_rx"] >= t_cmd),
                    "interruption_ms": round(g[0] * 1000, 1) if g else None,
                    "idle_gap_ms": round(idle[0] * 1000, 1) if idle else None,
                    # s after the switch command started: the gap, and the MN's steps
                    "gap_s": [round(g[1] - t_cmd, 3), round(g[2] - t_cmd, 3)] if g else None,
                    "switch_s": round(t_sw - t_cmd, 3),
                    "mn_steps_s": [[e["ev"], round(e["t"] - t_cmd, 3)] for e in mn.events if e["t_rx"] >= t_cmd
                                   and e.get("ev") in ("ha_switch", "bu", "ba", "registered", "old_ha_dereg")],
                    "dereg_to_registered_ms": (reg["t_ms"] - dereg[0]["t_ms"]) if reg and dereg else None,
                    "lost_in_window": sum(1 for t, s in prober.sent[h] if lo <= t <= hi and s not in got),
                    "lost_outside": sum(1 for t, s in prober.sent[h]
                                        if t_flowing <= t < end and not lo <= t <= hi and s not in got),
                    # when those were sent, s after the switch command (where to look when not 0)
                    "lost_outside_s": [round(t - t_cmd, 3) for t, s in prober.sent[h]
                                       if t_flowing <= t < end and not lo <= t <= hi and s not in got][:40]})
        finally:
            if prober is not None:
                prober.close()
            for mn in mns:
                mn.stop(grace=0.5)
    gaps = [d["interruption_ms"] for d in devices if d["interruption_ms"] is not None]
    idle_gaps = [d["idle_gap_ms"] for d in devices if d["idle_gap_ms"] is not None]
    why = []
    if not all(d["moved"] for d in devices) or last.get("not_moved"):
        why.append("not every MN moved")
    if sum(d["lost_outside"] for d in devices):
        why.append("probes lost outside the interruptions")
    report = {"scenario": "ha-switch", "mns": len(mns), "interval_ms": args.interval, "dad_pinned": args.dad_pinned,
              "drain_ms": last.get("elapsed_ms"), "command_wall_ms": round((t_done - t_cmd) * 1000),
              "switch_messages": last.get("messages"), "moved": last.get("moved"), "not_moved": last.get("not_moved"),
              "ha2_bindings_added": ha2_added,
              "interruption_ms": {"p50": pct(gaps, 50), "p90": pct(gaps, 90), "max": pct(gaps, 100)},
              # the same measure over the 0.8 s before the switch command, nothing switching: the
              # probe spacing plus this host's own stalls (load), what the interruption compares with
              "idle_gap_ms": {"p50": pct(idle_gaps, 50), "max": pct(idle_gaps, 100)},
              "lost_outside_interruptions": sum(d["lost_outside"] for d in devices),
              "lost_in_windows": sum(d["lost_in_window"] for d in devices),
              "devices": devices, "goal": "per-device interruption no longer than one roam, 0 lost outside",
              "interruption_is": "per device, the longest gap between its echoes at the CN that overlaps its "
                                 "switch (its ha_switch event to registered at HA2 / deregistered at HA1); "
                                 "a device that loses nothing still shows about interval_ms",
              "ok": not why, "why": why}
    path = os.path.join(folder, "report.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    if not quiet:
        for d in devices:
            print("MN %2d %s moved %-3s interruption %6s ms (dereg->registered %s ms) lost in it %d, outside %d"
                  % (d["n"], d["hoa"], "yes" if d["moved"] else "NO", d["interruption_ms"],
                     d["dereg_to_registered_ms"], d["lost_in_window"], d["lost_outside"]))
        print("drained %d MNs in %s ms; interruption p50 %s ms, max %s ms (idle, no switch: p50 %s, max %s); "
              "lost in the windows: %d, outside: %d"
              % (len(mns), report["drain_ms"], report["interruption_ms"]["p50"], report["interruption_ms"]["max"],
                 report["idle_gap_ms"]["p50"], report["idle_gap_ms"]["max"],
                 report["lost_in_windows"], report["lost_outside_interruptions"]))
        print("report: %s\nresult: %s" % (path, "OK" if report["ok"] else "FAILED: " + ", ".join(why)))
    return 0 if report["ok"] else 1
