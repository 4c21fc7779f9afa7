"""`roam6 hil run ro`: route optimisation end to end: return routability between the MN on real
MicroPython (router profile, ip6 transport) and `roam6 cn`, on IPv6 access networks.

Phases, each in its own time window of the link captures (core-ha: the HA's uplink; core-cn:
the CN's link):
1. privacy: the MN with `"ro": {"default": "never"}` on apA: the CN's RTT probe goes through
   the HA both ways; the CN must see no HoTI/CoTI and no packet to or from a care-of address.
2. ro: the MN restarted with `"ro": {"default": "auto"}`: the probe makes the CN a busy peer,
   RR runs, the CN's binding cache holds apA's CoA, probes go direct (RH2 out, HAO back) and no
   MN<->CN data crosses the HA's link any more.
3. roam: the board moves to apC: only the care-of half is redone (CoTI, no HoTI), the binding
   moves to apC's CoA, probes go direct again. Figure: RR handshake time after the roam.
4. forged: a BU for the HoA with a wrong authenticator from the board's namespace is refused.
5. IPv4 only: the board moves to apB (IPv4 + NAT, the udp4 transport): RO is impossible there, so
   the MN deletes its binding at the CN through the tunnel and the probes follow the tunnel.
6. home: the board goes back to the home link: the MN deletes its binding at the CN (BU lifetime
   0 from the HoA) and the probes flow again without route optimisation.
Figures: RTT via the HA (phase 1) vs direct (phase 2). Writes DIR/report.json and DIR/pcap/.
Exit 0 only if every check passed.
"""
import json
import os
import statistics
import subprocess
import sys
import time

from roam6_codec import consts as C
from roam6.wire.addr import ip6_from_text
from roam6.wire.errors import DecodeError
from roam6.wire.ipv6 import decode_ipv6
from roam6_host.errors import UserError
from roam6_host.pcap import PcapError, ip_packet, read_frames

from ..boards import get_driver
from ..capture import Captures
from ..eventlog import EventProc
from ..homeagent import board_config, start_ha, write_ha_config
from ..hostcn import CnView
from ..topology import CN_ADDR6, HOA, STATIC, Bench

PROBE_PORT, CN_SPORT = 9000, 9002
N_CHECKS = 19  # every check below must have run and passed
LINKS = [("core", "ha", "core-ha"), ("core", "cn", "core-cn"), ("board", "wlan0", "board-wlan0")]
FORGE = r"""
import socket, sys
from roam6 import rrcrypto
from roam6_codec import consts as C, mh as M, mhopts as O
from roam6.wire.ipv6 import build_ipv6
A = lambda t: socket.inet_pton(socket.AF_INET6, t)
coa, hoa, cn, hni, coni = A(sys.argv[1]), A(sys.argv[2]), A(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
bu = M.BindingUpdate(12345, C.BU_A, 105, [O.NonceIndices(hni, coni), O.BindingAuthData(None)])
mh = bu.encode(src=hoa, dst=cn, mac=lambda d: rrcrypto.rr_authenticator(bytes(20), coa, cn, d))
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IPV6, 36, 1)
s.sendto(build_ipv6(coa, cn, C.NH_MH, mh, hao=hoa), (sys.argv[3], 0))
print("sent")
"""


def add_arguments(p):
    p.add_argument("--report", default="reports/ro", metavar="DIR", help="report folder (default reports/ro)")
    p.add_argument("--prefix", default="r6-", help="namespace prefix (default r6-)")
    p.add_argument("--interval", type=int, default=50, help="ms between RTT probes from the CN (default 50)")
    p.add_argument("--window", type=float, default=3.0, help="seconds measured per phase (default 3)")
    from ..boards import SCENARIO_BOARD_HELP, scenario_board_real
    p.add_argument("--board", default="unix", type=scenario_board_real, choices=["unix", "serial"],
                   help=SCENARIO_BOARD_HELP + "; serial: a real board (ip6: the unix board) with --bench FILE "
                                              "(realro.py)")
    from .. import realboard
    realboard.add_arguments(p, roams=False)


# ---- capture analysis (a function of pcap files and time windows: unit-tested on its own) -------
def classify(pkt, cn, hoa, coas=()):
    """Which way an IPv6 packet between the MN and the CN goes, seen on a link:
    'direct' (RH2 to a CoA, HAO from one, or any packet between the CN and one of `coas`, e.g. a
    CoTI), 'plain' (HoA <-> CN, no mobility headers), 'tunnel' (IPv6-in-IPv6 whose inner packet
    is HoA <-> CN), or None (not MN<->CN). Returns (way, the packet MN<->CN)."""
    if pkt.nh == C.NH_IPV6:
        try:
            inner = decode_ipv6(bytes(pkt.payload))
        except (DecodeError, ValueError):
            return None, None
        if {inner.src, inner.dst} == {cn, hoa}:
            return "tunnel", inner
        return None, None
    if pkt.src == cn and pkt.rh2 == hoa or pkt.dst == cn and pkt.hao == hoa:
        return "direct", pkt
    if pkt.src == cn and pkt.dst in coas or pkt.dst == cn and pkt.src in coas:
        return "direct", pkt
    if {pkt.src, pkt.dst} == {cn, hoa}:
        return "plain", pkt
    return None, None


def paths(pcap, cn, hoa, windows, coas=()):
    """Count MN<->CN packets in a capture per time window (name -> (t0, t1) wall clock):
    {name: {"direct_udp", "plain_udp", "tunnel_udp", "mh": {type name: n}, "coa_seen": [..]}}."""
    out = {n: {"direct_udp": 0, "plain_udp": 0, "tunnel_udp": 0, "mh": {}, "coa_seen": set()} for n in windows}
    try:
        frames = list(read_frames(pcap))
    except (OSError, PcapError):
        frames = []
    for fr in frames:
        names = [n for n, (t0, t1) in windows.items() if t0 <= fr.ts < t1]
        if not names:
            continue
        off, v = ip_packet(fr.linktype, fr.data)
        if off is None or v != 6:
            continue
        try:
            p = decode_ipv6(fr.data[off:])
        except (DecodeError, ValueError):
            continue
        way, inner = classify(p, cn, hoa, coas)
        if way is None:
            continue
        for n in names:
            o = out[n]
            if way == "direct":
                o["coa_seen"].add(p.dst if p.src == cn else p.src)
            if inner.nh == C.NH_UDP:
                o[way + "_udp"] += 1
            elif inner.nh == C.NH_MH and len(inner.payload) > 2:
                k = _MH.get(inner.payload[2], str(inner.payload[2]))
                o["mh"][k] = o["mh"].get(k, 0) + 1
    for o in out.values():
        o["coa_seen"] = sorted(_text(a) for a in o["coa_seen"])
    return out


_MH = {0: "BRR", 1: "HoTI", 2: "CoTI", 3: "HoT", 4: "CoT", 5: "BU", 6: "BA", 7: "BE"}


def _text(a):
    import socket
    return socket.inet_ntop(socket.AF_INET6, a)


def median(xs):
    return round(statistics.median(xs), 3) if xs else None


def spread(xs):
    """n, p10, p90 of a list of RTTs (ms), for the report next to the median."""
    if not xs:
        return {"n": 0}
    xs = sorted(xs)
    return {"n": len(xs), "p10": round(xs[len(xs) // 10], 3), "p90": round(xs[(len(xs) * 9) // 10], 3)}


# ---- the bench's parts ------------------------------------------------------------------------
class CNProcess(CnView):
    """`roam6 cn` in the bench's `cn` namespace, probing the HoA; its events and binding cache."""

    def __init__(self, bench, interval_ms, address=CN_ADDR6, hoa=HOA, interface="up"):
        # (a real bench, hostbench.HostBench: the bench file's CN address and HoA, every link)
        self.folder = bench.path("cn")
        os.makedirs(self.folder, exist_ok=True)
        conf = os.path.join(self.folder, "cn.json")
        cfg = {"address": address, "interface": interface, "echo_port": 7,
               "probe": {"hoa": hoa, "port": PROBE_PORT, "interval_ms": interval_ms, "sport": CN_SPORT}}
        with open(conf, "w") as f:
            json.dump({k: v for k, v in cfg.items() if v is not None}, f)
        self.status = os.path.join(self.folder, "cn-status.json")
        log = os.path.join(self.folder, "cn.log")
        argv = [sys.executable, "-u", "-m", "roam6_host", "cn", "--config", conf, "--status", self.status]
        self.proc = EventProc(bench, bench.popen("cn", argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT), log)
        if self.proc.wait_for(lambda e: e["ev"] == "ready", 10) is None:
            raise RuntimeError("roam6 cn did not start; see %s" % log)

    def stop(self):
        self.proc.stop(grace=2.0)


def _start_mn(bench, mode, folder_name):
    board = get_driver("unix")(bench, "router", folder=bench.path(folder_name))
    os.makedirs(board.folder, exist_ok=True)
    # ip6 where the network has IPv6 (apA, apC), udp4 on the IPv4-only apB
    board.start(board_config(probe={"port": PROBE_PORT}, transports=["ip6", "udp4"], ro={"default": mode}))
    ev = board.wait_event(lambda e: e["ev"] in ("registered", "error") or (e["ev"] == "ba" and e.get("status") == 0),
                          20)
    if ev is None or ev["ev"] == "error":
        tail = board.log_tail()
        board.stop()
        raise RuntimeError("the MN (ro %s, ip6 transport) did not register within 20 s; its last lines:\n%s" % (mode,
                                                                                                                tail))
    return board


class _Run:
    """One run: the plan, the parts on the bench, and what the phases found (the report)."""

    def __init__(self, args, quiet):
        self.args = args
        self.say = (lambda m: None) if quiet else (lambda m: print(m, flush=True))
        self.folder = os.path.abspath(args.report)
        self.coa_a, self.coa_c = STATIC["apA"]["v6"][0].split("/")[0], STATIC["apC"]["v6"][0].split("/")[0]
        self.rep = {"scenario": "ro", "checks": {}, "figures": {}, "errors": [], "windows": {}}
        self.checks, self.figs = self.rep["checks"], self.rep["figures"]
        self.win = {}     # name -> (wall t0, wall t1): the phase's window in the captures
        self.mono = {}    # name -> (monotonic t0, t1): the same window in the CN's events
        self.bench = self.cn = self.board = None

    def window(self, name, seconds):
        """Measure for `seconds`: the phase's window, in both clocks."""
        w0, m0 = time.time(), time.monotonic()
        time.sleep(seconds)
        self.win[name] = (w0, time.time())
        self.mono[name] = (m0, time.monotonic())

    def rtts(self, name):
        return self.cn.events("rtt", *self.mono[name])

    def stop_mn(self):
        if self.board is not None:
            self.board.stop()
            self.board = None


def run(args, quiet=False):
    if args.interval < 5 or not args.window >= 1:       # (not >=: nan too)
        raise UserError("--interval must be >= 5 ms and --window >= 1 s")
    if getattr(args, "board", "unix") == "serial" or getattr(args, "labgrid", None):
        from .. import realro
        return realro.run(args, quiet, sys.modules[__name__])     # (handed in: realro imports no scenario)
    r = _Run(args, quiet)
    os.makedirs(r.folder, exist_ok=True)
    with Bench(prefix=args.prefix, workdir=os.path.join(r.folder, "bench")) as bench:
        r.bench = bench
        try:
            _setup(r)
            for phase in PHASES:
                phase(r)
        except (RuntimeError, OSError) as exc:
            r.rep["errors"].append(str(exc))
        finally:
            r.stop_mn()
            bench.stop_services()
    _capture_checks(r)
    return _verdict(r, quiet)


# ---- setup -------------------------------------------------------------------------------------
def _setup(r):
    """Captures on the HA's and the CN's links and the board's radio, the HA, the CN; board on apA."""
    bench = r.bench
    caps = Captures(bench, os.path.join(r.folder, "pcap"), links=LINKS).start()
    bench.services.append(caps)
    bench.services.append(start_ha(bench, write_ha_config(bench)))
    r.cn = CNProcess(bench, r.args.interval)
    bench.services.append(r.cn)
    bench.attach("apA", addressing="static")


# ---- the phases (docstring at the top) ----------------------------------------------------------
def _privacy(r):
    """1. privacy: every probe through the HA, nothing about the CoA reaches the CN."""
    r.board = _start_mn(r.bench, "never", "mn-privacy")
    r.say("phase 1 (privacy): MN registered on apA, ro never")
    time.sleep(0.5)
    r.window("privacy", r.args.window)
    r.stop_mn()
    rtt = r.rtts("privacy")
    via = [e["rtt_ms"] for e in rtt if e["out"] == e["back"] == "tunnel"]
    r.figs["rtt_ms_via_ha"] = median(via)
    r.rep["rtt_via_ha"] = spread(via)
    cn = r.cn
    r.checks["privacy_no_rr_at_cn"] = not cn.events("hot") and not cn.events("cot") and not cn.events("binding")
    r.checks["privacy_probes_answered"] = len(rtt) > 0


def _route_optimisation(r):
    """2. route optimisation on apA: RR, the CN's binding holds apA's CoA, probes direct."""
    t2 = time.monotonic()
    r.board = _start_mn(r.bench, "auto", "mn-ro")
    b = r.cn.wait(lambda e: e["ev"] == "binding" and e.get("coa") == r.coa_a, 15, since=t2)
    r.checks["ro_binding_holds_coa"] = b is not None and r.cn.bindings().get(HOA) == r.coa_a
    if b is None:
        raise RuntimeError("the CN got no binding for %s within 15 s (MN ro events: %s)"
                           % (r.coa_a, [e for e in r.board.events if e["ev"].startswith("ro")]))
    r.say("phase 2 (ro): CN binding %s -> %s" % (b["hoa"], b["coa"]))
    time.sleep(0.5)
    r.window("ro", r.args.window)
    rtt = r.rtts("ro")
    direct = [e["rtt_ms"] for e in rtt if e["out"] == e["back"] == "direct"]
    r.figs["rtt_ms_direct"] = median(direct)
    r.rep["rtt_direct"] = spread(direct)
    r.checks["ro_probes_direct_both_ways"] = bool(rtt) and all(e["out"] == e["back"] == "direct" for e in rtt)


def _roam(r):
    """3. roam to apC: only the care-of half again; the binding moves, probes direct again."""
    cn = r.cn
    hot_before = len(cn.events("hot"))
    stamps = r.bench.attach("apC", addressing="static")
    b2 = cn.wait(lambda e: e["ev"] == "binding" and e.get("coa") == r.coa_c, 15, since=stamps["link_up"])
    r.checks["roam_binding_moves_to_new_coa"] = b2 is not None
    if b2 is not None:
        cot = cn.events("cot", stamps["link_up"])
        # at the CN: CoT sent -> BU accepted (one MN round trip plus the MN's work)
        r.figs["rr_after_roam_ms_at_cn"] = round(b2["t_ms"] - cot[0]["t_ms"], 3) if cot else None
        r.figs["roam_to_cn_binding_ms"] = round((b2["t_rx"] - stamps["addr"]) * 1000, 2)
        mnb = r.board.wait_event(lambda e: e["ev"] == "ro_bound" and e.get("coa") == r.coa_c, 2,
                                 since=stamps["link_up"])
        r.figs["rr_after_roam_ms_at_mn"] = mnb.get("rr_ms") if mnb else None
        r.checks["roam_careof_half_only"] = len(cn.events("hot")) == hot_before and len(cot) >= 1
    time.sleep(0.5)
    r.window("roam", r.args.window)
    rtt = r.rtts("roam")
    r.checks["roam_probes_direct"] = bool(rtt) and all(e["out"] == e["back"] == "direct" for e in rtt)


def _forged_bu(r):
    """4. a BU for the HoA with a wrong authenticator, from the board's namespace: refused."""
    cn = r.cn
    last_hot, last_cot = cn.events("hot")[-1:], cn.events("cot")[-1:]
    hni = last_hot[0]["index"] if last_hot else 1
    coni = last_cot[0]["index"] if last_cot else 1
    t4 = time.monotonic()
    r.bench.run("board", [sys.executable, "-c", FORGE, r.coa_a, HOA, CN_ADDR6, hni, coni], timeout=15)
    refused = cn.wait(lambda e: e["ev"] == "bu_refused", 3, since=t4)
    r.checks["forged_bu_refused"] = refused is not None and not cn.events("binding", t4)


def _ipv4_only(r):
    """5. an IPv4-only network: the binding at the CN is deleted through the tunnel."""
    cn = r.cn
    t45 = time.monotonic()
    r.bench.attach("apB", addressing="static")
    gone = cn.wait(lambda e: e["ev"] == "binding_deleted", 8, since=t45)
    r.checks["v4_dereg_at_cn_through_tunnel"] = gone is not None
    time.sleep(1.0)
    w0 = time.monotonic()
    time.sleep(1.0)
    rtt = cn.events("rtt", w0, time.monotonic())
    r.checks["v4_probes_through_tunnel"] = bool(rtt) and all(e["out"] == e["back"] == "tunnel" for e in rtt)


def _home(r):
    """6. back home (by way of apC): deregistration at the CN, probes answered without RO."""
    cn = r.cn
    r.bench.attach("apC", addressing="static")
    cn.wait(lambda e: e["ev"] == "binding" and e.get("coa") == r.coa_c, 8, since=time.monotonic())
    t5 = time.monotonic()
    r.bench.attach("home", addressing="static")
    gone = cn.wait(lambda e: e["ev"] == "binding_deleted", 8, since=t5)
    r.checks["home_dereg_at_cn"] = gone is not None
    if gone is not None:
        r.figs["home_to_cn_dereg_ms"] = round((gone["t_rx"] - t5) * 1000, 2)
    time.sleep(1.0)
    r.window("home", 1.0)
    rtt = r.rtts("home")
    r.checks["home_probes_answered_without_ro"] = bool(rtt) and all(e["out"] == "tunnel" for e in rtt)
    r.stop_mn()


PHASES = (_privacy, _route_optimisation, _roam, _forged_bu, _ipv4_only, _home)


# ---- verdict -----------------------------------------------------------------------------------
def _capture_checks(r):
    """What the captures of the phases' windows show: the CN's link and the HA's."""
    checks, win = r.checks, r.win
    pc = os.path.join(r.folder, "pcap")
    cn_b, hoa_b = ip6_from_text(CN_ADDR6), ip6_from_text(HOA)
    coas = (ip6_from_text(r.coa_a), ip6_from_text(r.coa_c))
    ha_link = paths(os.path.join(pc, "core-ha.pcap"), cn_b, hoa_b, win, coas)
    cn_link = paths(os.path.join(pc, "core-cn.pcap"), cn_b, hoa_b, win, coas)
    r.rep["windows"] = {"core-ha": ha_link, "core-cn": cn_link}
    if "privacy" in win:
        w = cn_link["privacy"]
        checks["privacy_capture_no_coa_at_cn"] = w["direct_udp"] == 0 and not w["coa_seen"] and \
            not any(k in w["mh"] for k in ("HoTI", "CoTI", "BU"))
        checks["privacy_capture_all_via_ha"] = ha_link["privacy"]["tunnel_udp"] > 0
    for name in ("ro", "roam"):
        if name in win:
            at_cn = cn_link[name]
            checks["%s_capture_direct_at_cn" % name] = at_cn["direct_udp"] > 0 and at_cn["plain_udp"] == 0
            checks["%s_capture_nothing_via_ha" % name] = ha_link[name]["tunnel_udp"] == 0
    if "roam" in win:
        checks["roam_capture_new_coa"] = cn_link["roam"]["coa_seen"] == [r.coa_c]


def _verdict(r, quiet, n_checks=N_CHECKS):
    """ok only if nothing failed and all n_checks checks ran and passed; report.json; the lines.
    (n_checks: realro.py's run on a real bench has fewer phases.)"""
    rep, checks = r.rep, r.checks
    ok = not rep["errors"] and all(checks.values()) and len(checks) == n_checks
    rep["ok"] = ok
    path = os.path.join(r.folder, "report.json")
    with open(path, "w") as f:
        json.dump(rep, f, indent=1, sort_keys=True)
    if not quiet:
        for k, v in sorted(checks.items()):
            print("  %-36s %s" % (k, "ok" if v else "FAILED"))
        for k, v in sorted(r.figs.items()):
            print("  %-36s %s" % (k, v))
        for e in rep["errors"]:
            print("  error: %s" % e)
        print("report: %s" % path)
    return 0 if ok else 1
