"""`roam6 hil run soak [--mns N] [--minutes M] [--report DIR]`: many MicroPython MNs on one HA.

Builds the bench (CONTRACTS.md §8) and starts the real home agent (`roam6 ha`) with one security
association per MN, then N virtual boards (the MicroPython unix port running the board bundle, as
`hil run register` does, heap --heap), each in its own namespace `<prefix>sb<i>` whose wlan0 hangs
on the `air` switch like the bench's board, with its own static addresses on apA (IPv6: udp6),
apB (IPv4 behind NAT: udp4) and apC (both). For --minutes, one MN at a time, picked at random,
roams to another random access network (carrier down, addresses flushed, the new network's link
and addresses), the scenario waits for its BA, then pauses --gap seconds. Meanwhile the CN
probes every MN's HoA (the MN's probe echoes, UDP port 9000) every --probe-ms.

Reported (JSON on stdout, DIR/soak.json, a short table on stderr):
- probes sent, echoed, lost; lost inside a roam's window (from 0.1 s before the MN's carrier went
  down to 0.3 s after its BA arrived) and lost outside any window (goal 0);
- the HA's RSS sampled over the run (goal flat: first vs last vs max);
- each MN's heap in use (`gc.mem_alloc()` after a collection, logged by the MN after every
  registration): first vs last (goal flat), and each MN process's RSS (what one more MN costs
  the machine: the basis of "as many as the machine holds").
Needs root; the bench always comes down.
"""
import json
import os
import random
import secrets
import statistics
import sys
import time

from roam6_host.heapsize import HELP as HEAP_HELP, heap_size

from ..board_unix import start_mn
from ..homeagent import start_ha, write_ha_config
from ..topology import AIR_BRIDGE, DOMAIN, HA_ADDR, HA_IPV4, HOME_PREFIX, Bench

NETS = ("apA", "apB", "apC")
PROBE_PORT = 9000
MAX_MNS = 150          # addresses per network below (192.0.2.100 + i)
WINDOW_BEFORE_S, WINDOW_AFTER_S = 0.1, 0.3


def add_arguments(p):
    p.add_argument("--mns", type=int, default=100, help="virtual boards (default 100; at most %d)" % MAX_MNS)
    p.add_argument("--minutes", type=float, default=10.0, help="how long the MNs roam (default 10)")
    p.add_argument("--gap", type=float, default=0.5,
                   help="seconds between one roam's BA and the next roam (default 0.5)")
    p.add_argument("--probe-ms", type=int, default=200, help="ms between two probes to one MN (default 200)")
    p.add_argument("--heap", type=heap_size, default="100K", metavar="SIZE", help="each MN's heap; " + HEAP_HELP)
    p.add_argument("--seed", type=int, default=None, help="random seed of the roams (default: a new one)")
    p.add_argument("--prefix", default=None, help="namespace prefix (default r6s<random>-)")
    p.add_argument("--report", metavar="DIR", help="also write DIR/soak.json")


def _addrs(i, net):
    """MN i's static addresses on `net`: (v6 cidr, v6 gw) or None, (v4 cidr, v4 gw) or None."""
    v6 = {"apA": ("2001:db8:a1::%x/64" % (0x1000 + i), "2001:db8:a1::1"),
          "apC": ("2001:db8:c1::%x/64" % (0x1000 + i), "2001:db8:c1::1")}.get(net)
    v4 = {"apB": ("192.0.2.%d/24" % (100 + i), "192.0.2.1"),
          "apC": ("198.51.100.%d/24" % (100 + i), "198.51.100.1")}.get(net)
    return v6, v4


def _hoa(i):
    return "2001:db8:aa::%x" % (0x1000 + i)


class _InNs:
    """Bench.popen for start_mn, but in MN i's namespace (start_mn runs the MN in "board")."""

    def __init__(self, bench, short):
        self.bench, self.short = bench, short
        self.ns = bench.ns               # (EventProc.stop uses it)

    def popen(self, _short, argv, **kw):
        return self.bench.popen(self.short, argv, **kw)


class _Board:
    def __init__(self, bench, i):
        self.bench, self.i = bench, i
        self.short = "sb%d" % i
        self.port = "sb%d" % i            # its port on the air switch
        self.net = None
        self.first_net = None
        self.mn = None
        self.windows = []                 # [(t_down, t_ba or None, network)]

    def create(self):
        ns = self.bench.ns
        ns.add(self.short)
        import subprocess
        subprocess.run(["ip", "link", "add", "name", "wlan0", "netns", ns.full(self.short), "type", "veth", "peer",
                        "name", self.port, "netns", ns.full("air")], check=True, capture_output=True, timeout=10)
        ns.sysctls(self.short, [("net.ipv6.conf.wlan0.accept_dad", 0), ("net.ipv6.conf.wlan0.accept_ra", 0),
                                ("net.ipv6.conf.all.accept_dad", 0)])
        ns.ip(self.short, "link", "set", "wlan0", "up")

    def attach(self, net):
        ns = self.bench.ns
        t_down = None
        if self.net is not None:
            ns.shell("air").do(["link set dev %s down nomaster" % self.port])
            t_down = time.monotonic()
            ns.batch(self.short, ["addr flush dev wlan0 scope global", "route flush dev wlan0",
                                  "-6 route flush dev wlan0"], check=False)
        out = ns.shell("air").do(["link set dev %s master %s up" % (self.port, AIR_BRIDGE[net])])
        if out:
            raise RuntimeError("attaching MN %d to %s: %s" % (self.i, net, " ".join(out)))
        deadline = time.monotonic() + 3.0
        while "bridge_slave state forwarding" not in " ".join(ns.shell("air").do(["link show dev %s" % self.port])):
            if time.monotonic() > deadline:
                raise RuntimeError("MN %d's port is not forwarding 3 s after attaching to %s" % (self.i, net))
            time.sleep(0.002)
        v6, v4 = _addrs(self.i, net)
        cmds = []
        if v6:
            cmds += ["-6 route replace ::/0 via %s dev wlan0 onlink" % v6[1]]
        if v4:
            cmds += ["-4 route replace 0.0.0.0/0 via %s dev wlan0 onlink" % v4[1]]
        if v6:
            cmds += ["-6 addr add %s dev wlan0 nodad" % v6[0]]
        if v4:
            cmds += ["-4 addr add %s dev wlan0" % v4[0]]
        ns.batch(self.short, cmds)
        self.net = net
        return t_down

    def config(self, key_hex):
        path = self.bench.path("%s.json" % self.short)
        cfg = {"nai": "soak%d@%s" % (self.i, DOMAIN), "spi": 5000 + self.i, "key": key_hex, "hoa": _hoa(self.i),
               "home_prefix": HOME_PREFIX, "ha": HA_ADDR, "ha_ipv4": HA_IPV4, "bootstrap": ["static"],
               "transports": ["udp6", "udp4"], "lifetime": 600, "timestamps": True,
               "state_file": self.bench.path("%s.state" % self.short), "probe": {"port": PROBE_PORT}}
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path


def _rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


CN_SOAK = r"""
import json, socket, sys, time
c = json.loads(sys.argv[1])
hoas, port, gap, seconds = c["hoas"], c["port"], c["probe_ms"] / 1000.0, c["seconds"]
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("::", 0))
s.setblocking(False)
n = len(hoas)
sent = {}                      # (mn, seq) -> send time
echoed = set()
step = gap / n
t0 = time.monotonic()
end = t0 + seconds
k = 0
print(json.dumps({"ready": True}), flush=True)
while True:
    now = time.monotonic()
    due = t0 + k * step
    if due <= now and due < end:
        i, seq = k % n, k // n
        s.sendto(b"R6PD" + seq.to_bytes(4, "big") + i.to_bytes(2, "big"), (hoas[i], port))
        sent[(i, seq)] = now
        k += 1
        continue
    if now > end + 1.0:
        break
    try:
        d, a = s.recvfrom(64)
        if d[:4] == b"R6PD" and len(d) >= 10:
            echoed.add((int.from_bytes(d[8:10], "big"), int.from_bytes(d[4:8], "big")))
        continue
    except BlockingIOError:
        pass
    time.sleep(min(0.002, max(0.0, due - now)))
lost = sorted((i, seq, round(t, 4)) for (i, seq), t in sent.items() if (i, seq) not in echoed)
last_echo = {}
for i, seq in echoed:
    last_echo[i] = max(last_echo.get(i, -1), seq)
print(json.dumps({"sent": len(sent), "echoed": len(echoed & set(sent)), "lost": lost,
                  "last_seq_sent": k // n - 1, "last_echoed_seq": last_echo}), flush=True)
"""


def run(args):
    if not 1 <= args.mns <= MAX_MNS:
        from roam6_host.errors import UserError
        raise UserError("--mns must be between 1 and %d" % MAX_MNS)
    if not 0 < args.minutes <= 24 * 60 or args.gap < 0 or args.probe_ms < 10:
        from roam6_host.errors import UserError
        raise UserError("--minutes must be > 0 (at most a day), --gap >= 0, --probe-ms >= 10")
    rnd = random.Random(args.seed)
    prefix = args.prefix or "r6s%s-" % secrets.token_hex(2)
    seconds = args.minutes * 60
    with Bench(prefix=prefix) as bench:
        boards = [_Board(bench, i) for i in range(args.mns)]
        keys = [secrets.token_bytes(16).hex() for _ in boards]
        conf = write_ha_config(bench)
        with open(conf) as f:
            ha_cfg = json.load(f)
        fd = os.open(ha_cfg["keys_file"], os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "w") as f:
            json.dump({"sas": [{"nai": "soak%d@%s" % (b.i, DOMAIN), "spi": 5000 + b.i, "key": keys[b.i],
                                "hoa": _hoa(b.i)} for b in boards]}, f)
        ha = start_ha(bench, conf)
        bench.services.append(ha)
        for b in boards:
            b.create()
            b.first_net = rnd.choice(NETS)
            b.attach(b.first_net)
        t_start = time.monotonic()
        for b in boards:
            b.mn = start_mn(_InNs(bench, b.short), b.config(keys[b.i]), args.heap, bench.path("%s.log" % b.short),
                            accel="viper")
            bench.services.append(b.mn)
        for b in boards:
            if b.mn.wait_for(lambda e: e.get("ev") == "ba" and e.get("status") == 0, 60) is None:
                raise RuntimeError("MN %d did not register within 60 s:\n%s" % (b.i, b.mn.tail()))
        t_registered = time.monotonic() - t_start
        mn_rss = [_rss_kb(b.mn.p.pid) for b in boards]
        import subprocess
        cn = bench.popen("cn", [sys.executable, "-c", CN_SOAK, json.dumps(
            {"hoas": [_hoa(b.i) for b in boards], "port": PROBE_PORT, "probe_ms": args.probe_ms,
             "seconds": seconds})], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if '"ready"' not in cn.stdout.readline():
            raise RuntimeError("the CN's prober did not start: %s" % cn.stderr.read()[-500:])
        t0 = time.monotonic()
        ha_rss = [(0.0, _rss_kb(ha.p.pid))]
        next_rss = t0 + max(1.0, seconds / 60)
        roams, slow = 0, []
        while time.monotonic() < t0 + seconds - 1.0:
            b = rnd.choice(boards)
            net = rnd.choice([n for n in NETS if n != b.net])
            mark = time.monotonic()
            t_down = b.attach(net)
            ev = b.mn.wait_for(lambda e: e.get("ev") == "ba" and e.get("status") == 0, 10, since=mark)
            b.windows.append((t_down, ev["t_rx"] if ev else None, net))
            roams += 1
            if ev is None:
                slow.append({"mn": b.i, "to": net})
            if time.monotonic() >= next_rss:
                ha_rss.append((round(time.monotonic() - t0, 1), _rss_kb(ha.p.pid)))
                next_rss += max(1.0, seconds / 60)
            time.sleep(args.gap)
        out, err = cn.communicate(timeout=seconds + 60)
        ha_rss.append((round(time.monotonic() - t0, 1), _rss_kb(ha.p.pid)))
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if not lines:
            raise RuntimeError("the CN's prober failed: %s" % err[-500:])
        probes = json.loads(lines[-1])
        mn_rss_end = [_rss_kb(b.mn.p.pid) for b in boards]
        alive = sum(1 for b in boards if b.mn.alive())
        result = _analyse(args, boards, probes, ha_rss, mn_rss, mn_rss_end, roams, slow, t_registered, alive)
    text = json.dumps(result, indent=1)
    if args.report:
        os.makedirs(args.report, exist_ok=True)
        with open(os.path.join(args.report, "soak.json"), "w") as f:
            f.write(text + "\n")
    print(text)
    print(_table(result), file=sys.stderr)
    return 0 if result["lost_outside_windows"] == 0 and result["mns_alive"] == args.mns else 1


def _analyse(args, boards, probes, ha_rss, mn_rss, mn_rss_end, roams, slow, t_registered, alive):
    inside = outside = 0
    outside_list = []
    for i, seq, t in probes["lost"]:
        b = boards[i]
        hit = any(d is not None and d - WINDOW_BEFORE_S <= t <= (float("inf") if ba is None else ba) + WINDOW_AFTER_S
                  for d, ba, _net in b.windows)
        if hit:
            inside += 1
        else:
            outside += 1
            if len(outside_list) < 20:       # how far from this MN's nearest roam (diagnosis)
                near = min((t - d for d, _ba, _n in b.windows if d is not None), key=abs, default=None)
                # what the MN itself said around that time (its event log, stamped on arrival here):
                # a refresh, a retransmission, a move the scenario did not make, a restart
                around = [(e.get("ev"), round(e["t_rx"] - t, 3)) for e in b.mn.events
                          if "t_rx" in e and abs(e["t_rx"] - t) <= 3.0 and e.get("ev") != "heap"][:12]
                outside_list.append({"mn": i, "seq": seq, "t": t,
                                     "s_after_nearest_roam": round(near, 3) if near is not None else None,
                                     "mn_events_within_3s": around})
    heaps, growth = [], []
    for b in boards:
        # after each registration (the first sample, before the first BU, left out), keyed by the
        # network the MN was on: its transport and sockets differ between networks, so "flat" means
        # the same network's figure staying put from the first visit to the last
        samples = [e for e in b.mn.events if e.get("ev") == "heap" and "alloc" in e][1:]
        by_net = {}
        for e in samples:
            net = b.first_net
            for d, _ba, n in b.windows:
                if d is not None and d <= e["t_rx"]:
                    net = n
            by_net.setdefault(net, []).append(e["alloc"])
        if samples:
            h = [e["alloc"] for e in samples]
            heaps.append({"mn": b.i, "samples": len(h), "first": h[0], "last": h[-1], "max": max(h),
                          "by_network_first_last": {n: [v[0], v[-1]] for n, v in by_net.items()}})
            # a network's first visit loads its transport's code (udp4 on apB, ...): warm-up, left out
            growth += [v[-1] - v[1] for v in by_net.values() if len(v) > 2]
    rss_vals = [r for _, r in ha_rss if r]
    unreachable = [i for i in range(len(boards))
                   if probes["last_echoed_seq"].get(str(i), -1) < probes["last_seq_sent"] - 5]
    return {
        "scenario": "soak",
        "mns": args.mns, "minutes": args.minutes, "heap": args.heap, "seed": args.seed,
        "roams": roams, "roams_without_ba_in_10s": slow[:20], "roams_per_mn_mean": round(roams / len(boards), 1),
        "all_registered_s": round(t_registered, 1),
        "mns_alive": alive,
        "probes_sent": probes["sent"], "probes_echoed": probes["echoed"], "probes_lost": len(probes["lost"]),
        "lost_inside_windows": inside, "lost_outside_windows": outside, "lost_outside_first": outside_list,
        "mns_unreachable_at_the_end": unreachable,
        "ha_rss_kb_over_time": ha_rss,
        "ha_rss_kb_first_last_max": [rss_vals[0], rss_vals[-1], max(rss_vals)] if rss_vals else None,
        "mn_heap_alloc_bytes_first_median": statistics.median([h["first"] for h in heaps]) if heaps else None,
        # per MN and network: heap after its last registration there minus after its second
        "mn_heap_growth_bytes_median_max": [statistics.median(growth), max(growth)] if growth else None,
        "mn_heap_per_mn": heaps if len(heaps) <= 10 else heaps[:10],
        "mn_rss_kb_median_start_end": [statistics.median([r for r in mn_rss if r] or [0]),
                                       statistics.median([r for r in mn_rss_end if r] or [0])],
        "machine_mem_available_kb": _meminfo("MemAvailable"),
        "goals": {"lost_outside_windows": 0, "ha_rss": "flat", "mn_heap": "flat"},
        "window": "from %.1f s before the MN's carrier went down to %.1f s after its BA" % (WINDOW_BEFORE_S,
                                                                                           WINDOW_AFTER_S),
    }


def _meminfo(key):
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _table(r):
    rows = [("MNs alive / started", "%d / %d" % (r["mns_alive"], r["mns"])),
            ("roams (per MN)", "%d (%.1f)" % (r["roams"], r["roams_per_mn_mean"])),
            ("probes sent / echoed", "%d / %d" % (r["probes_sent"], r["probes_echoed"])),
            ("lost in roam windows", str(r["lost_inside_windows"])),
            ("lost outside windows (goal 0)", str(r["lost_outside_windows"])),
            ("HA RSS KB first / last / max", " / ".join(map(str, r["ha_rss_kb_first_last_max"] or []))),
            ("MN heap bytes (median first)", str(r["mn_heap_alloc_bytes_first_median"])),
            ("MN heap growth (same network) median / max",
             " / ".join(map(str, r["mn_heap_growth_bytes_median_max"] or []))),
            ("MN process RSS KB median", " -> ".join(map(str, r["mn_rss_kb_median_start_end"])))]
    w = max(len(a) for a, _ in rows)
    return "\n".join("%-*s  %s" % (w, a, b) for a, b in rows)
