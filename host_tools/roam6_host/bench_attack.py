"""`roam6 bench attack`: the real `roam6 ha` under floods while a legitimate MN keeps registering.

    mn  (198.18.1.10) ---------- ha (198.18.1.2, UDP 4191; home 2001:db8:aa::/64, TUN)
    atk (198.18.2.10-.249) ----/

All in throw-away namespaces (prefix `r6a<hex>-`), removed at the end even on failure. Phases,
one after the other, each `--phase` seconds (default 2 s; 7 phases: ~15 s):

    quiet       no flood: the reference
    random      random datagrams (8-600 bytes) to UDP 4191
    unauth      well-formed BUs naming SPIs the HA does not know (no HMAC can be needed)
    wrongkey    BUs naming a known SPI and NAI (another MN's) with a wrong key (RFC 4285: 146)
    be          Binding-Error-provoking input: data from unbound HoAs, unknown MH types,
                Payload Proto != 59 (each answered with a BE or an ICMPv6 Parameter Problem)
    brr_be      Binding Refresh Requests, Binding Errors and BAs sent to the HA (messages only an
                MN takes: dropped without an answer)
    wrongkey_own  like wrongkey, but naming the legitimate MN's own SPI, NAI and HoA

The attacker (one process in `atk`) sends from 240 addresses and rotating source ports through a
raw socket, paced at `--pps` (default 20,000/s, the issue's 300,000 in 15 s; 0: as fast as one
core lets it). Meanwhile the legitimate MN (this process, in `mn`) sends an authenticated,
timestamped udp4 BU every `--interval` ms, built by the firmware codec as the MN builds it, from
the address and port it registered from (refreshes: a bound MN's own receive queue at the HA,
ha/peersocks.py; a move to a new address goes through the shared listener like everybody's
packets), and times BU -> BA: from just before its sendto to the BA's arrival as the MN's kernel
stamped it (SO_TIMESTAMPNS: the HA and the path, not this process's own late wakeup on a loaded
machine; the p99 as this process read it is kept beside, `_as_read`). `--ha-nice N` runs the HA
under `nice -n N`. Per phase: the legitimate BU->BA p50/p99/max and losses, the
attacker's packets and bytes sent and received (the atk interface's kernel counters, so every
answer counts, whatever it is: the HA's ARP requests for the attacker's addresses too), the
response-to-request ratios, what the HA's UDP stack delivered and dropped (queue full), and the
HA's CPU share and RSS. Needs root.
"""
import gc
import json
import os
import secrets
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

PHASES = ("quiet", "random", "unauth", "wrongkey", "be", "brr_be", "wrongkey_own")
GOAL_P99_MS = 5.0
SO_TIMESTAMPNS = 35                      # asm-generic: the BA's arrival, stamped by the kernel
_ANC_TS = socket.CMSG_SPACE(16)
HA4, MN4 = "198.18.1.2", "198.18.1.10"
ATK_HOSTS = ["198.18.2.%d" % i for i in range(10, 250)]


def register(sub):
    p = sub.add_parser("attack", help="the real HA under floods: legitimate BU->BA, CPU, RSS, answer ratios (root)")
    p.add_argument("--phase", type=float, default=2.0, help="seconds per phase (default 2; 7 phases)")
    p.add_argument("--interval", type=float, default=10.0, help="ms between the legitimate MN's BUs (default 10)")
    p.add_argument("--phases", default=",".join(PHASES), help="which phases, comma-separated (default: all)")
    p.add_argument("--pps", type=int, default=20000,
                   help="flood packets per second (default 20000: the issue's 300,000 in 15 s); 0: as fast as "
                        "the attacker's core goes")
    p.add_argument("--ha-nice", type=int, default=0,
                   help="run the HA under `nice -n N` (e.g. -10: the CPU weight an operator would give it on a "
                        "busy host; default 0)")
    p.add_argument("--prefix", default="r6a", help="namespace name prefix (default r6a; a random suffix follows)")
    p.set_defaults(func=run)


# ---- the attacker (runs in its own process inside the atk namespace) -------------------------
def _ipv4_udp(src, dst, sport, dport, payload):
    """An IPv4/UDP packet for a raw socket (the kernel fills the IP checksum; UDP checksum 0)."""
    total = 28 + len(payload)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return ip + struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def _payloads(kind, cfg, rnd):
    """A pool of UDP payloads (inner IPv6 packets, or garbage) for one flood kind."""
    from roam6.wire.ipv6 import build_ipv6
    from roam6_codec import consts as C
    from roam6_codec.mh import UnknownMH

    from .ha.bugen import build_bu, ntp_timestamp

    ha = bytes.fromhex(cfg["ha6"])
    prefix = ha[:8]
    wall = time.time_ns() // 1_000_000
    out = []
    for i in range(512):
        if kind == "random":
            out.append(rnd.randbytes(rnd.randrange(8, 600)))
        elif kind == "unauth":
            hoa = prefix + rnd.randbytes(8)
            out.append(build_bu(rnd.randbytes(16), 0x10000 + rnd.randrange(1 << 20), b"x%d@attack.test" % i, hoa, ha,
                                i, 150, "udp4", v4coa=socket.inet_aton("192.0.2.1"),
                                timestamp=ntp_timestamp(wall, i)))
        elif kind in ("wrongkey", "wrongkey_own"):
            who = cfg["own"] if kind == "wrongkey_own" else cfg["victim"]
            out.append(build_bu(rnd.randbytes(16), who["spi"], who["nai"].encode(), bytes.fromhex(who["hoa"]), ha,
                                rnd.randrange(65536), 150, "udp4", v4coa=socket.inet_aton("192.0.2.1"),
                                timestamp=ntp_timestamp(wall, i)))
        elif kind == "brr_be":
            from roam6_codec.mh import BindingAck, BindingError, BindingRefreshRequest
            hoa = prefix + rnd.randbytes(8)
            msg = (BindingRefreshRequest(), BindingError(1, hoa), BindingAck(0, 0, i, 10))[i % 3]
            out.append(build_ipv6(hoa, ha, C.NH_MH, msg.encode(src=hoa, dst=ha)))
        elif kind == "be":
            hoa = prefix + rnd.randbytes(8)
            r = i % 3
            if r == 0:            # data from a HoA with no binding: BE status 1
                out.append(build_ipv6(hoa, bytes.fromhex("20010db800f3" + "00" * 9 + "02"), 17, bytes(16)))
            else:                 # an unknown MH type (BE 2), or Payload Proto 58 (Parameter Problem)
                mh = bytearray(UnknownMH(200, bytes(10)).encode())
                if r == 2:
                    mh[2] = 5     # a "BU" of Header Len 1 ...
                    mh[0] = 58    # ... whose Payload Proto is not 59
                from roam6.wire.checksum import checksum6
                mh[4:6] = b"\0\0"
                mh[4:6] = struct.pack(">H", checksum6(hoa, ha, C.NH_MH, bytes(mh)))
                out.append(build_ipv6(hoa, ha, C.NH_MH, bytes(mh)))
    return out


def attacker_main():
    """Entry of the attacker process: argv[1] is its JSON config; prints what it sent."""
    import random
    cfg = json.loads(sys.argv[1])
    rnd = random.Random(cfg["seed"])
    pool = _payloads(cfg["kind"], cfg, rnd)
    packets = []
    for i in range(4096):
        src = ATK_HOSTS[i % len(ATK_HOSTS)]
        packets.append(_ipv4_udp(src, HA4, 1024 + rnd.randrange(60000), 4191, pool[i % len(pool)]))
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    dest = (HA4, 0)
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()                       # go
    start = time.monotonic()
    end = start + cfg["seconds"]
    pps = cfg["pps"]
    n = nbytes = 0
    send = s.sendto
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if pps:
            ahead = n / pps - (now - start)         # paced: bursts of 16, then sleep off the lead
            if ahead > 0.0005:
                time.sleep(ahead)
                continue
        for p in packets[n % 4096:n % 4096 + 16]:
            try:
                send(p, dest)
            except OSError:
                continue                       # e.g. ENOBUFS: the link's queue is full
            n += 1
            nbytes += len(p)
    print(json.dumps({"sent": n, "sent_bytes": nbytes}), flush=True)


# ---- the bench ---------------------------------------------------------------------------
def _link_stats(ns, dev):
    out = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev], capture_output=True, text=True,
                         timeout=10).stdout
    st = json.loads(out)[0]["stats64"]
    return st["rx"]["packets"], st["rx"]["bytes"], st["tx"]["packets"], st["tx"]["bytes"]


def _udp_counters(ns):
    """(InDatagrams, RcvbufErrors) of the namespace's UDP (IPv4) stack."""
    out = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"], capture_output=True, text=True,
                         timeout=10).stdout
    rows = [ln.split()[1:] for ln in out.splitlines() if ln.startswith("Udp:")]
    d = dict(zip(rows[0], rows[1]))
    return int(d["InDatagrams"]), int(d["RcvbufErrors"])


def _proc_cpu_rss(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])            # utime + stime
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return ticks / os.sysconf("SC_CLK_TCK"), rss


def _pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))] if v else None


class _LegitMN:
    """The legitimate MN: one authenticated udp4 BU at a time, BU->BA timed."""

    def __init__(self, ns, key, spi, nai, hoa, ha):
        from .nssock import socket_in
        self.key, self.spi, self.nai, self.hoa, self.ha = key, spi, nai, hoa, ha
        self.socks = [socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0), timeout=1.0)]
        self.socks[0].setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.seq = 0

    def one(self):
        """(ms from BU to its BA, status, ms as this process saw it) or (None, None, None) when no BA
        came within 1 s. The first figure ends at the BA's arrival in the MN's kernel (SO_TIMESTAMPNS):
        what the HA and the path add, not how late this loaded process woke up to read it."""
        from .ha.bugen import build_bu, ntp_timestamp
        self.seq = (self.seq + 1) & 0xFFFF
        wall = time.time_ns() // 1_000_000
        bu = build_bu(self.key, self.spi, self.nai, self.hoa, self.ha, self.seq, 150, "udp4",
                      v4coa=socket.inet_aton(MN4), timestamp=ntp_timestamp(wall, self.seq))
        s = self.socks[0]
        t0 = time.perf_counter()
        t0_wall = time.time_ns()
        s.sendto(bu, (HA4, 4191))
        end = t0 + 1.0
        while True:
            try:
                s.settimeout(max(0.001, end - time.perf_counter()))
                data, anc, _flags, _addr = s.recvmsg(2048, _ANC_TS)
            except (socket.timeout, BlockingIOError):
                return None, None, None
            if len(data) > 50 and data[42] == 6 and struct.unpack_from(">H", data, 48)[0] == self.seq:
                user_ms = (time.perf_counter() - t0) * 1000
                kernel_ms = user_ms
                for level, kind, value in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                        sec, nsec = struct.unpack_from("=qq", value)
                        kernel_ms = (sec * 1_000_000_000 + nsec - t0_wall) / 1e6
                return kernel_ms, data[46], user_ms

    def close(self):
        for s in self.socks:
            s.close()


def run(args):
    from .errors import UserError
    from .ha.livebench import _Net, teardown

    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    bad = [p for p in phases if p not in PHASES]
    if bad:
        raise UserError("--phases: unknown phase %r (known: %s)" % (bad[0], ", ".join(PHASES)))
    if not 0.2 <= args.phase <= 60:
        raise UserError("--phase must be between 0.2 and 60 seconds")
    if args.pps < 0:
        raise UserError("--pps must be 0 (no pacing) or more")
    if not 1 <= args.interval <= 1000:
        raise UserError("--interval must be between 1 and 1000 ms")
    if os.geteuid() != 0:
        raise UserError("roam6 bench attack needs root (it creates network namespaces)", hint="run it with sudo")
    load0 = round(os.getloadavg()[0], 2)
    net = _Net()
    net.prefix = "%s%s-" % (getattr(args, "prefix", "r6a"), secrets.token_hex(2))
    ha_proc = None
    atk_procs = []
    tmp = tempfile.mkdtemp(prefix="r6attack-")
    legit = None
    try:
        ha, mn, atk = net.add("ha"), net.add("mn"), net.add("atk")
        for pair in ((ha, "up0", mn, "wlan0"), (ha, "atk0", atk, "eth0")):
            net.veth(*pair)
        net.ip(ha, "addr", "add", HA4 + "/24", "dev", "up0")
        net.ip(mn, "addr", "add", MN4 + "/24", "dev", "wlan0")
        net.ip(ha, "addr", "add", "198.18.2.2/24", "dev", "atk0")
        for h in ATK_HOSTS:
            net.ip(atk, "addr", "add", h + "/24", "dev", "eth0")
        net.ip(atk, "route", "replace", "198.18.1.0/24", "via", "198.18.2.2")
        net.ip(ha, "link", "add", "home", "type", "bridge")
        net.ip(ha, "link", "set", "home", "up")
        net.ip(ha, "addr", "add", "2001:db8:aa::1/64", "dev", "home", "nodad")
        key, vkey = secrets.token_bytes(16), secrets.token_bytes(16)
        own = {"nai": "legit@example.test", "spi": 4096, "hoa": "20010db800aa00000000000000000100"}
        victim = {"nai": "victim@example.test", "spi": 4097, "hoa": "20010db800aa00000000000000000200"}
        keys = os.path.join(tmp, "keys.json")
        fd = os.open(keys, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"sas": [
                {"nai": own["nai"], "spi": own["spi"], "key": key.hex(), "hoa": "2001:db8:aa::100"},
                {"nai": victim["nai"], "spi": victim["spi"], "key": vkey.hex(), "hoa": "2001:db8:aa::200"}]}, f)
        cfg = os.path.join(tmp, "ha.json")
        with open(cfg, "w") as f:
            json.dump({"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "ipv4": HA4,
                       "tun": "r6tun", "keys_file": keys, "transports": ["udp4"]}, f)
        nice = ["nice", "-n", str(args.ha_nice)] if getattr(args, "ha_nice", 0) else []
        ha_proc = subprocess.Popen(["ip", "netns", "exec", ha] + nice + [sys.executable, "-m", "roam6_host", "ha",
                                    "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ha6 = socket.inet_pton(socket.AF_INET6, "2001:db8:aa::1")
        legit = _LegitMN(mn, key, own["spi"], own["nai"].encode(), bytes.fromhex(own["hoa"]), ha6)
        deadline = time.monotonic() + 10
        while True:                                  # the HA is up once it answers the first BU
            ms, status, _ = legit.one()
            if status == 0:
                break
            if time.monotonic() > deadline or ha_proc.poll() is not None:
                raise UserError("the HA did not answer the legitimate MN's BU within 10 s")
        results = {}
        for phase in phases:
            atk_proc = None
            if phase != "quiet":
                conf = {"kind": phase, "seconds": args.phase, "seed": len(results), "ha6": ha6.hex(),
                        "own": own, "victim": victim, "pps": args.pps}
                atk_proc = subprocess.Popen(
                    ["ip", "netns", "exec", atk, sys.executable, "-c",
                     "from roam6_host.bench_attack import attacker_main; attacker_main()", json.dumps(conf)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                atk_procs.append(atk_proc)
                if '"ready"' not in atk_proc.stdout.readline():
                    raise RuntimeError("attacker did not start: %s" % atk_proc.stderr.read()[-500:])
            s0 = _link_stats(atk, "eth0")
            u0 = _udp_counters(ha)
            c0, _rss0 = _proc_cpu_rss(ha_proc.pid)
            t0 = time.monotonic()
            if atk_proc is not None:
                atk_proc.stdin.write("go\n")
                atk_proc.stdin.flush()
            lat, lat_user, lost, statuses = [], [], 0, {}
            gc.disable()
            try:
                while time.monotonic() - t0 < args.phase:
                    tick = time.monotonic()
                    ms, status, user_ms = legit.one()
                    if ms is None:
                        lost += 1
                    else:
                        lat.append(ms)
                        lat_user.append(user_ms)
                        statuses[str(status)] = statuses.get(str(status), 0) + 1
                    rest = args.interval / 1000 - (time.monotonic() - tick)
                    if rest > 0:
                        time.sleep(rest)
            finally:
                gc.enable()
            sent = {"sent": 0, "sent_bytes": 0}
            if atk_proc is not None:
                out, err = atk_proc.communicate(timeout=args.phase + 20)
                lines = [ln for ln in out.splitlines() if ln.startswith("{")]
                sent = json.loads(lines[-1]) if lines else sent
            time.sleep(0.2)                           # answers still in flight
            elapsed = time.monotonic() - t0
            c1, rss1 = _proc_cpu_rss(ha_proc.pid)
            s1 = _link_stats(atk, "eth0")
            u1 = _udp_counters(ha)
            rx_p, rx_b = s1[0] - s0[0], s1[1] - s0[1]
            tx_p, tx_b = s1[2] - s0[2], s1[3] - s0[3]
            results[phase] = {
                "legit_bus": len(lat) + lost,
                "legit_lost": lost,
                "legit_ba_status": statuses,
                "legit_bu_ba_ms_p50": round(statistics.median(lat), 3) if lat else None,
                "legit_bu_ba_ms_p99": round(_pct(lat, 0.99), 3) if lat else None,
                "legit_bu_ba_ms_max": round(max(lat), 3) if lat else None,
                "legit_bu_ba_ms_p99_as_read": round(_pct(lat_user, 0.99), 3) if lat_user else None,
                "flood_packets": tx_p,
                "flood_bytes": tx_b,
                "flood_pps": round(tx_p / args.phase),
                "answer_packets": rx_p,
                "answer_bytes": rx_b,
                "answer_ratio_packets": round(rx_p / tx_p, 5) if tx_p else None,
                "answer_ratio_bytes": round(rx_b / tx_b, 5) if tx_b else None,
                "ha_udp_delivered": u1[0] - u0[0],
                "ha_udp_dropped_queue_full": u1[1] - u0[1],
                "ha_cpu_percent": round(100 * (c1 - c0) / elapsed, 1),
                "ha_rss_kb": rss1,
            }
            if ha_proc.poll() is not None:
                raise RuntimeError("the HA exited during phase %s" % phase)
        flooded = [r for p, r in results.items() if p != "quiet" and r["legit_bu_ba_ms_p99"] is not None]
        worst = max((r["legit_bu_ba_ms_p99"] for r in flooded), default=None)
        return {
            "benchmark": "attack",
            "namespaces": net.prefix + "*",
            "phase_seconds": args.phase,
            "legit_interval_ms": args.interval,
            "phases": results,
            "worst_flooded_p99_ms": worst,
            "goal_p99_ms": GOAL_P99_MS,
            "meets_goal": worst is not None and worst < GOAL_P99_MS
            and all(r["legit_lost"] == 0 for r in results.values()),
            "flood_pps_asked": args.pps or "max",
            "attacker": "one process, raw socket, %d source addresses, random source ports" % len(ATK_HOSTS),
            "cpus": os.cpu_count(),
            "loadavg_1min_at_start_end": [load0, round(os.getloadavg()[0], 2)],
            "note": "p99 of ~200 BUs a phase: the 2nd-worst one; on a loaded machine the HA waits to be scheduled "
                    "(compare each phase with 'quiet', the floor of this machine now)",
        }
    finally:
        if legit is not None:
            legit.close()
        for p in atk_procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        teardown(ha_proc, net, tmp)
