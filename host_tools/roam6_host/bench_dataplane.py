"""`roam6 bench dataplane`: packets/s and Mbit/s through the real `roam6 ha`'s TUN path, one core.

    mn (198.18.1.10, 2001:db8:f1::10) --- ha (198.18.1.2, 2001:db8:f1::2; TUN r6tun) --- cn (2001:db8:f3::2)

All in throw-away namespaces (`--prefix`, a random suffix), removed at the end even on failure.
Two MNs are registered with the HA: HoA 2001:db8:aa::100 over udp4 (IPv6 in UDP 4191 in IPv4) and
2001:db8:aa::200 over ip6 (RFC 6275 IPv6-in-IPv6). Per case, for `--seconds`, one generator process
sends one packet size as fast as its core lets it:

    down   cn -> HoA: the kernel routes it into the HA's TUN, the HA reads it and sends it to the CoA
    up     mn -> HA, encapsulated from the registered CoA: the HA writes the inner packet into its
           TUN, the kernel forwards it to cn

Sizes are the inner IPv6 packet's (64 and 1400 bytes by default; 1400 is the TUN's MTU).
`kernel` is the anchor: the same inner packets forwarded by the kernel through the same `ha`
namespace between mn's and cn's addresses (no encapsulation, no user space). Counted: what the
receiving interface took in (its kernel counters; the receivers are sinks that read nothing),
the generator's packets sent, the HA's CPU share (100 % = its one core; user and kernel time, so
the kernel's forwarding of what the HA writes into its TUN counts too), and from these the
packets/s one HA core would carry (`pps_per_ha_core`: packets/s / CPU share; on a machine whose
other load starves the HA that is the figure to compare, stated as an extrapolation). Mbit/s is
of the inner packets. The generator is Python too: where the HA's CPU is well under 100 %, the generator (or
the machine's other load) was the limit, not the HA (the JSON says which). Needs root.
"""
import collections
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time

HA4, MN4, MN6, HA6_LINK = "198.18.1.2", "198.18.1.10", "2001:db8:f1::10", "2001:db8:f1::2"
CN6, HA6 = "2001:db8:f3::2", "2001:db8:aa::1"
HOA_UDP4, HOA_IP6 = "2001:db8:aa::100", "2001:db8:aa::200"
MN_PORT, SINK_PORT = 40000, 7000
GOAL_MBITS = 1000

GEN = r"""
import json, socket, sys, time
c = json.loads(sys.argv[1])
fam = {"4": socket.AF_INET, "6": socket.AF_INET6}[c["family"]]
s = socket.socket(fam, socket.SOCK_RAW if c["raw"] else socket.SOCK_DGRAM, c["raw"] or 0)
if c.get("reuse"):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if c.get("bind"):
    s.bind(tuple(c["bind"]))
data = bytes.fromhex(c["data"])
dest = tuple(c["dest"])
print("ready", flush=True)
sys.stdin.readline()
n = err = 0
send = s.sendto
end = time.monotonic() + c["seconds"]
while True:
    for _ in range(64):
        try:
            send(data, dest)
            n += 1
        except OSError:
            err += 1
    if time.monotonic() >= end:
        break
print(json.dumps({"sent": n, "send_errors": err}), flush=True)
"""


def register(sub):
    p = sub.add_parser("dataplane", help="packets/s and Mbit/s through the real HA's TUN path vs kernel "
                                         "forwarding (root)")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds per case (default 2)")
    p.add_argument("--sizes", default="64,1400", help="inner IPv6 packet sizes in bytes (default 64,1400)")
    p.add_argument("--transports", default="udp4,ip6,kernel",
                   help="which paths, comma-separated (default udp4,ip6,kernel; kernel: the anchor)")
    p.add_argument("--directions", default="down,up", help="down (cn -> MN), up (MN -> cn) or both (default)")
    p.add_argument("--prefix", default="r6d", help="namespace name prefix (default r6d; a random suffix follows)")
    p.set_defaults(func=run)


def _parse(args):
    from .errors import UserError
    try:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        raise UserError("--sizes: comma-separated byte counts, e.g. 64,1400") from None
    if not sizes or any(not 48 + 4 <= s <= 1400 for s in sizes):
        raise UserError("--sizes: each between 52 (IPv6 + UDP + 4 bytes) and 1400 (the HA's TUN MTU)")
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    dirs = [d.strip() for d in args.directions.split(",") if d.strip()]
    for name, got, known in (("--transports", transports, ("udp4", "ip6", "kernel")),
                             ("--directions", dirs, ("down", "up"))):
        bad = [x for x in got if x not in known] or ([] if got else ["(none)"])
        if bad:
            raise UserError("%s: unknown %r (known: %s)" % (name, bad[0], ", ".join(known)))
    if not 0.1 <= args.seconds <= 60:
        raise UserError("--seconds must be between 0.1 and 60")
    return sizes, transports, dirs


def _rx(net, ns, dev):
    out = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev], capture_output=True, text=True,
                         timeout=10).stdout
    st = json.loads(out)[0]["stats64"]["rx"]
    return st["packets"], st["bytes"]


def _ip6_drops(ns):
    """The ha namespace's IPv6 counters that say where packets died (/proc/net/snmp6), plus its
    interfaces' packets and drops (the TUN's rx = what the HA wrote): a case whose `received` is far
    below what the HA wrote shows where the rest went."""
    out = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp6"], capture_output=True, text=True,
                         timeout=10).stdout
    keep = ("Ip6InDiscards", "Ip6OutDiscards", "Ip6InNoRoutes", "Ip6OutNoRoutes", "Ip6InAddrErrors",
            "Ip6InHdrErrors", "Ip6InTooBigErrors", "Icmp6OutNeighborSolicits", "Icmp6InNeighborAdvertisements")
    d = {}
    for ln in out.splitlines():
        f = ln.split()
        if len(f) == 2 and f[0] in keep:
            d[f[0]] = int(f[1])
    out = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show"], capture_output=True, text=True,
                         timeout=10).stdout
    try:
        for dev in json.loads(out):
            st = dev.get("stats64", {})
            for way in ("rx", "tx"):
                for what in ("packets", "dropped"):
                    d["%s_%s_%s" % (dev["ifname"], way, what)] = st.get(way, {}).get(what, 0)
    except (ValueError, KeyError, TypeError):
        pass
    return d


def _cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _inner(src, dst, size):
    """An IPv6/UDP packet of `size` bytes from src to dst (text addresses), to the sink port."""
    from roam6.wire.ipv6 import build_ipv6
    from roam6_codec.udp import build_udp
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    return build_ipv6(s, d, 17, build_udp(5000, SINK_PORT, bytes(size - 48), src=s, dst=d))


def _case(net, ns, transport, direction, size, seconds, ha_pid):
    """One generator run; returns the case's figures."""
    if direction == "down":
        dst = {"udp4": HOA_UDP4, "ip6": HOA_IP6, "kernel": MN6}[transport]
        gen = {"family": "6", "raw": 0, "data": bytes(size - 48).hex(), "dest": [dst, SINK_PORT]}
        gen_ns, rx_ns, rx_dev = ns["cn"], ns["mn"], "wlan0"
    else:
        gen_ns, rx_ns, rx_dev = ns["mn"], ns["cn"], "eth0"
        if transport == "udp4":
            gen = {"family": "4", "raw": 0, "reuse": True, "bind": [MN4, MN_PORT], "dest": [HA4, 4191],
                   "data": _inner(HOA_UDP4, CN6, size).hex()}
        elif transport == "ip6":
            gen = {"family": "6", "raw": 41, "bind": [MN6, 0], "dest": [HA6, 0],
                   "data": _inner(HOA_IP6, CN6, size).hex()}
        else:
            gen = {"family": "6", "raw": 0, "bind": [MN6, 0], "dest": [CN6, SINK_PORT],
                   "data": bytes(size - 48).hex()}
    gen["seconds"] = seconds
    p = subprocess.Popen(["ip", "netns", "exec", gen_ns, sys.executable, "-c", GEN, json.dumps(gen)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("the generator did not start: %s" % p.stderr.read()[-500:])
        r0 = _rx(net, rx_ns, rx_dev)
        k0 = _ip6_drops(ns["ha"])
        c0 = _cpu(ha_pid)
        t0 = time.monotonic()
        p.stdin.write("go\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=seconds + 30)
        time.sleep(0.05)                      # what is still in flight
        elapsed = time.monotonic() - t0
        c1 = _cpu(ha_pid)
        r1 = _rx(net, rx_ns, rx_dev)
        k1 = _ip6_drops(ns["ha"])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError("the generator failed: %s" % err[-500:])
    sent = json.loads(lines[-1])
    got = r1[0] - r0[0]
    dur = seconds
    cpu = 100 * (c1 - c0) / elapsed if transport != "kernel" else None
    per_core = got / dur * 100 / cpu if cpu else None        # pps if the HA had had its core to itself
    return {
        "transport": transport, "direction": direction, "size": size,
        "sent": sent["sent"], "send_errors": sent["send_errors"],
        "received": got,
        "pps": round(got / dur),
        "mbit_s": round(got * size * 8 / dur / 1e6, 1),
        "sent_pps": round(sent["sent"] / dur),
        "delivered_ratio": round(got / sent["sent"], 4) if sent["sent"] else None,
        "ha_cpu_percent": round(cpu, 1) if cpu is not None else None,
        "pps_per_ha_core": round(per_core) if per_core else None,
        "mbit_s_per_ha_core": round(per_core * size * 8 / 1e6, 1) if per_core else None,
        "ha_ns_counters": {k: k1[k] - v for k, v in k0.items() if k in k1 and k1[k] != v},
    }


def _setup(net, tmp):
    ha, mn, cn = net.add("ha"), net.add("mn"), net.add("cn")
    for pair in ((ha, "up0", mn, "wlan0"), (ha, "cn0", cn, "eth0")):
        net.veth(*pair)
    net.ip(ha, "addr", "add", HA4 + "/24", "dev", "up0")
    net.ip(ha, "addr", "add", HA6_LINK + "/64", "dev", "up0", "nodad")
    net.ip(mn, "addr", "add", MN4 + "/24", "dev", "wlan0")
    net.ip(mn, "addr", "add", MN6 + "/64", "dev", "wlan0", "nodad")
    for pfx in ("2001:db8:aa::/64", "2001:db8:f3::/64"):
        net.ip(mn, "-6", "route", "add", pfx, "via", HA6_LINK)
    net.ip(ha, "addr", "add", "2001:db8:f3::1/64", "dev", "cn0", "nodad")
    net.ip(cn, "addr", "add", CN6 + "/64", "dev", "eth0", "nodad")
    for pfx in ("2001:db8:aa::/64", "2001:db8:f1::/64"):
        net.ip(cn, "-6", "route", "add", pfx, "via", "2001:db8:f3::1")
    net.ip(ha, "link", "add", "home", "type", "bridge")
    net.ip(ha, "link", "set", "home", "up")
    net.ip(ha, "addr", "add", HA6 + "/64", "dev", "home", "nodad")
    # permanent neighbours on both sides of the HA: under a flood a neighbour entry going stale
    # re-resolves, and what the kernel queues meanwhile (a few packets) is all that gets through
    # until the answer, itself queued behind the flood, comes: seconds of a case lost to ND, not to the HA
    for here, dev, there, there_dev, addrs in ((ha, "cn0", cn, "eth0", [CN6]), (ha, "up0", mn, "wlan0", [MN4, MN6]),
                                               (cn, "eth0", ha, "cn0", ["2001:db8:f3::1"]),
                                               (mn, "wlan0", ha, "up0", [HA4, HA6_LINK])):
        out = subprocess.run(["ip", "-n", there, "-j", "link", "show", "dev", there_dev], capture_output=True,
                             text=True, timeout=10).stdout
        mac = json.loads(out)[0]["address"]
        for a in addrs:
            net.ip(here, "neigh", "replace", a, "lladdr", mac, "dev", dev, "nud", "permanent")
    for ns in (ha, mn, cn):      # the sinks never answer: no ICMP errors back into the measured path
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.icmp.ratelimit=100000",
                        "net.ipv4.icmp_ratelimit=100000"], capture_output=True, timeout=10)
    keys = {"udp4": (secrets.token_bytes(16), 4096, "dp4@example.test", HOA_UDP4),
            "ip6": (secrets.token_bytes(16), 4097, "dp6@example.test", HOA_IP6)}
    path = os.path.join(tmp, "keys.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"sas": [{"nai": nai, "spi": spi, "key": k.hex(), "hoa": hoa}
                           for k, spi, nai, hoa in keys.values()]}, f)
    cfg = os.path.join(tmp, "ha.json")
    with open(cfg, "w") as f:
        json.dump({"home_prefix": "2001:db8:aa::/64", "address": HA6, "ipv4": HA4, "tun": "r6tun",
                   "keys_file": path, "transports": ["udp4", "ip6"]}, f)
    return {"ha": ha, "mn": mn, "cn": cn}, keys, cfg


def _register(ns, keys):
    """Both MNs' BUs (firmware codec bytes, as an MN sends them); RuntimeError without a BA 0."""
    from .ha.bugen import build_bu, ntp_timestamp
    from .nssock import socket_in
    ha = socket.inet_pton(socket.AF_INET6, HA6)
    wall = time.time_ns() // 1_000_000
    k, spi, nai, hoa = keys["udp4"]
    s4 = socket_in(ns["mn"], socket.AF_INET, socket.SOCK_DGRAM, timeout=0.5)
    k6, spi6, nai6, hoa6 = keys["ip6"]
    raw = socket_in(ns["mn"], socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    coa6 = socket.inet_pton(socket.AF_INET6, MN6)
    try:
        s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s4.bind((MN4, MN_PORT))
        deadline = time.monotonic() + 10
        seq = 0
        while True:
            seq += 1
            bu = build_bu(k, spi, nai.encode(), socket.inet_pton(socket.AF_INET6, hoa), ha, seq, 600, "udp4",
                          v4coa=socket.inet_aton(MN4), timestamp=ntp_timestamp(wall, seq))
            s4.sendto(bu, (HA4, 4191))
            try:
                data, _ = s4.recvfrom(2048)
                if len(data) > 46 and data[42] == 6 and data[46] == 0:
                    break
            except socket.timeout:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the HA did not accept the udp4 BU within 10 s")
        raw.sendto(build_bu(k6, spi6, nai6.encode(), socket.inet_pton(socket.AF_INET6, hoa6), ha, 1, 600, "ip6",
                            coa=coa6, timestamp=ntp_timestamp(wall, 1)), (HA6, 0))
    finally:
        s4.close()
        raw.close()


def _wait_bound(lines, want, timeout=10):
    """Until every HoA in `want` has its binding_added among the HA's JSON `lines` (a list a
    thread fills)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        seen = set()
        for line in list(lines):
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("ev") == "binding_added":
                seen.add(ev.get("hoa"))
        if seen >= want:
            return True
        time.sleep(0.05)
    return False


def run(args):
    from .errors import UserError
    from .ha.livebench import _Net, teardown
    from .nssock import socket_in

    sizes, transports, dirs = _parse(args)
    if os.geteuid() != 0:
        raise UserError("roam6 bench dataplane needs root (it creates network namespaces)", hint="run it with sudo")
    net = _Net()
    net.prefix = "%s%s-" % (args.prefix, secrets.token_hex(2))
    ha_proc = None
    sinks = []
    tmp = tempfile.mkdtemp(prefix="r6dataplane-")
    try:
        ns, keys, cfg = _setup(net, tmp)
        ha_proc = subprocess.Popen(["ip", "netns", "exec", ns["ha"], sys.executable, "-u", "-m", "roam6_host", "ha",
                                    "--config", cfg], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = ha_proc.stdout.readline()
        if '"ready"' not in line:
            raise RuntimeError("the HA did not start: %r" % line)
        lines = collections.deque(maxlen=200)        # the HA's log, read to its end by a thread
        threading.Thread(target=lambda: lines.extend(ha_proc.stdout), daemon=True).start()
        _register(ns, keys)
        if not _wait_bound(lines, {HOA_UDP4, HOA_IP6}):
            raise RuntimeError("the HA did not bind both HoAs: %s" % " | ".join(list(lines)[-5:]))
        # sinks: sockets that take the packets and read nothing (a full queue drops silently)
        for where, fam, kind, proto, addr in (("mn", socket.AF_INET, socket.SOCK_DGRAM, 0, (MN4, MN_PORT)),
                                              ("mn", socket.AF_INET6, socket.SOCK_RAW, 41, None),
                                              ("mn", socket.AF_INET6, socket.SOCK_DGRAM, 0, (MN6, SINK_PORT)),
                                              ("cn", socket.AF_INET6, socket.SOCK_DGRAM, 0, (CN6, SINK_PORT))):
            s = socket_in(ns[where], fam, kind, proto)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            if kind == socket.SOCK_DGRAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if addr is not None:
                s.bind(addr)
            sinks.append(s)
        cases = []
        for transport in transports:
            for direction in dirs:
                for size in sizes:
                    cases.append(_case(net, ns, transport, direction, size, args.seconds, ha_proc.pid))
                    if ha_proc.poll() is not None:
                        raise RuntimeError("the HA exited during %s %s %d" % (transport, direction, size))
        best, per_core = {}, {}
        for c in cases:
            if c["transport"] != "kernel" and c["size"] == max(sizes):
                best[c["transport"] + "_" + c["direction"]] = c["mbit_s"]
                per_core[c["transport"] + "_" + c["direction"]] = c["mbit_s_per_ha_core"]
        worst = min(best.values()) if best else None
        return {
            "benchmark": "dataplane",
            "namespaces": net.prefix + "*",
            "seconds_per_case": args.seconds,
            "cases": cases,
            "ha_rss_kb": _rss_kb(ha_proc.pid),
            "ha_errors": [ln.strip()[:300] for ln in list(lines) if '"internal_error"' in ln][:5],
            "largest_size": max(sizes),
            "ha_mbit_s_at_largest_size": best,
            "ha_mbit_s_per_core_at_largest_size": per_core,
            "goal_mbit_s": GOAL_MBITS,
            "meets_goal": worst is not None and worst >= GOAL_MBITS,
            "cpus": os.cpu_count(),
            "loadavg_1min": round(os.getloadavg()[0], 2),
            "note": "one generator process (Python, one core) per case; ha_cpu_percent near 100: the HA's one core "
                    "was the limit; well below: the generator or the machine's other load was",
        }
    finally:
        for s in sinks:
            s.close()
        teardown(ha_proc, net, tmp)
