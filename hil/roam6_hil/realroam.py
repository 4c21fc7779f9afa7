"""The roam scenario on a real board and real access points: `roam6 hil run roam --board serial
--port auto|DEV --bench FILE --bundle DIR [--roams N]` (or `--labgrid PLACE` instead of --port
and --bundle).

The virtual bench's measurement, from the host's side of a real bench:
  1. the bench file's host is configured (hostbench.HostBench: radvd/Kea/dnsmasq/nft on the AP
     ports, the HA); the board was checked first (realboard.preflight: port free, board answers,
     or the labgrid place acquired and powered on), so a refusal leaves the host as it was;
  2. pcaps of the host's AP ports and home link (capture.Captures); the sniffer (probe.py
     `sniff --side ap`) on the AP ports stamps each probe leaving towards the board and each
     echo coming back: the board's radio cannot be watched, the port behind its AP can;
  3. the board gets the bundle and config (realboard.open_board), joins the first AP over its
     REPL (board_serial.SerialBoard.join, or the AP's `switch_to` command) and registers; the
     CN's probes (probe.py `cn`, every --interval ms) flow to its HoA and back;
  4. each roam: the board joins the next AP (t_down: the join command; t_link_up/t_addr: its
     answer's arrival less the board's own durations), its `ba` line (stamped on arrival at the
     host: the board's clock is not the host's) ends it, --dwell s on each network;
  5. the probes stop, report.analyse and roam.py's verdict make the same report.json, table and
     timeline.png as the virtual bench; the board, the place and the host are restored, whatever
     happened (Ctrl-C included).
The board does not go home at the end (the bench file's home link has no AP of its own).
"""
import json
import os
import signal
import subprocess
import sys
import time

from roam6_host.errors import UserError

from . import realboard
from .hostbench import HostBench

PROBE_PORT, CN_PORT = 9000, 9001


def add_arguments(p):
    """The real-board options of `hil run roam` (roam.py has --roams, --report, --interval ...)."""
    realboard.add_arguments(p, roams=False)
    p.add_argument("--transport", choices=["udp4", "udp6"],
                   help="with --board serial: the MN's transport (default: the --profile's first, esp32 udp4)")


class _Run:
    """What roam.py's _verdict and _print_result read (the virtual run's _Run, from a real bench)."""
    nak_index = None          # --dna-nak is the virtual bench's (a lease given away by its dnsmasq)


def run(args, quiet, check_args, verdict, print_result):
    """check_args, verdict, print_result: the virtual roam's (scenarios/roam.py hands them in)."""
    from .profiles import profile
    check_args(args)
    for opt, bad in (("--aaa", args.aaa), ("--loss", args.loss), ("--app reference", args.app != "mn"),
                     ("--heap", args.heap), ("--addressing static", args.addressing != "auto"),
                     ("--dna-nak", getattr(args, "dna_nak", False))):
        if bad:
            raise UserError("%s is for the virtual board; a real bench's APs and board are as they are" % opt,
                            hint="leave it out with --board serial / --labgrid")
    args.transport = args.transport or profile(args.profile)["transports"][0]
    folder = os.path.abspath(args.report)
    bench, port, place = realboard.preflight(args, folder)
    r = _Run()
    r.args, r.quiet, r.folder, r.reference, r.go_home = args, quiet, folder, False, False
    aps = realboard._aps_for(bench, args.transport)
    r.nets = [ap["ssid"] for ap in aps]
    r.plan = [aps[(i + 1) % len(aps)] for i in range(args.roams)]
    r.t_start = time.monotonic()
    r.result = {"scenario": "roam", "board": "serial", "port": port, "labgrid_place": args.labgrid,
                "bench": bench["name"], "transport": args.transport, "transports_allowed": [args.transport],
                "profile": args.profile, "traffic": args.traffic, "app": "mn", "networks": r.nets,
                "addressing": "the access points'", "loss_percent": 0.0,
                "join": ["switch_to" if ap.get("switch_to") else "repl" for ap in aps],
                "measured_at": "host: CN probes, sniffer and pcaps on the AP ports; board lines stamped on arrival"}
    hb = HostBench(bench)
    r.board = r.caps = r.cn = r.sniff = None
    try:
        hb.up()
        _start(r, hb, bench, aps, port, place)
        _roam_all(r)
        _stop_and_collect(r, hb)
    finally:
        _teardown(r, hb, place)
    r.bench = hb
    report = verdict(r)
    if not quiet:
        print_result(r, report)
    return 0 if report["summary"]["ok"] else 1


def _say(r, msg):
    if not r.quiet:
        print(msg, flush=True)


def _host_proc(hb, argv, what):
    from .eventlog import EventProc
    from .roaming import instrument_argv
    p = EventProc(hb, hb.popen("host", instrument_argv(argv), stdout=subprocess.PIPE, text=True), stamp=False)
    if p.readline(5) != "ready":
        raise RuntimeError("the %s did not start" % what)
    return p


def _start(r, hb, bench, aps, port, place):
    """Captures and the sniffer on the host's ports, the board on the first AP, registered, and the
    CN's probes flowing."""
    from .capture import Captures
    args = r.args
    ports = [ap["interface"] for ap in bench["aps"]]
    if not args.no_pcap:
        links = [("host", i, "host-" + i) for i in ports + [bench["home"]["interface"]]]
        r.caps = Captures(hb, os.path.join(r.folder, "pcap"), links).start()
    r.sniff_out, r.cn_out = hb.path("sniff.json"), hb.path("cn.json")
    r.sniff = _host_proc(hb, [sys.executable, "-u", "-m", "roam6_hil.probe", "sniff", "--side", "ap",
                              "--iface", ",".join(ports), "--out", r.sniff_out], "probe sniffer")
    probe = {"port": PROBE_PORT}
    if args.traffic == "sensor":
        probe["sensor"] = {"dst": bench["cn"]["address6"], "port": CN_PORT, "interval_ms": int(args.interval)}
    r.board, deployed = realboard.open_board(args, hb, port, place, os.path.join(r.folder, "board"), probe)
    r.result["deployed"] = deployed
    t0 = time.monotonic()
    coa = realboard._join(r.board, aps[0], args.join_timeout)
    r.first = {"t_addr": time.monotonic(), "iface": aps[0]["interface"]}
    reg = r.board.wait_event(lambda e: e.get("ev") in ("registered", "error"), args.reg_timeout, t0)
    if reg is None or reg.get("ev") != "registered":
        raise RuntimeError("the board did not register on %s within %.0f s: %s; its last lines:\n%s"
                           % (aps[0]["ssid"], args.reg_timeout, reg or "no answer", r.board.reader.tail(15)))
    _say(r, "board registered on %s: CoA %s (join -> registered %.0f ms)" % (aps[0]["ssid"], coa,
                                                                            (reg["t_rx"] - t0) * 1000))
    r.cn = _host_proc(hb, [sys.executable, "-u", "-m", "roam6_hil.probe", "cn", "--dst", bench["home"]["hoa"],
                           "--port", str(PROBE_PORT), "--listen", str(CN_PORT), "--interval", str(args.interval),
                           "--out", r.cn_out], "CN probe")
    if r.cn.readline(10) != "flowing":
        raise RuntimeError("no probe came back from the board within 10 s; its last lines:\n" + r.board.reader.tail(15))


def _roam_all(r):
    r.roams = []
    board = r.board
    time.sleep(r.args.dwell)
    for i, ap in enumerate(r.plan):
        t_down = time.monotonic()
        board.last_join = None
        realboard._join(board, ap, r.args.join_timeout)
        st = dict(board.last_join or {"t_down": t_down, "t_link_up": None, "t_addr": None, "addr": None})
        st["net"], st["iface"] = ap["ssid"], ap["interface"]
        r.roams.append(st)
        ev = board.wait_event(lambda e: e["ev"] == "ba" and e.get("status") == 0, r.args.reg_timeout,
                              since=st["t_down"])
        note = ("BA +%.1f ms (BU->BA %s ms, %s)" % ((ev["t"] - st["t_down"]) * 1000, ev.get("bu_ba_ms"),
                                                   ev.get("transport")) if ev else "NO BA within %.0f s"
                % r.args.reg_timeout)
        _say(r, "roam %d/%d -> %s: address %s; %s" % (i + 1, len(r.plan), ap["ssid"], st.get("addr"), note))
        if not board.alive():
            _say(r, "the MN stopped; last lines:\n" + board.reader.tail(15))
            break
        time.sleep(r.args.dwell)


def _stop_and_collect(r, hb):
    r.mn_alive = r.board.alive()
    r.ha_alive = hb.ha_proc.poll() is None
    r.t_end = time.monotonic()
    for p in (r.cn, r.sniff):
        p.p.send_signal(signal.SIGTERM)
    for p in (r.cn, r.sniff):
        try:
            p.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
    r.events = list(r.board.events)
    r.board.stop()
    with open(r.cn_out) as f:
        r.cn_rec = json.load(f)
    with open(r.sniff_out) as f:
        r.sniff_rec = on_the_boards_ap(json.load(f), r.first, r.roams)


def on_the_boards_ap(sniff, first, roams):
    """The sniffer's records on the AP ports, kept only where and when the board was: on the
    first AP from its join, on each roam's AP from its association (t_link_up, else t_addr) to the
    next roam's t_down. (The HA goes on sending to the old CoA for a while: those probes leave the
    host on the old AP's port, and never reach the board.)"""
    spans = [(first["t_addr"], first["iface"])]
    ends = []
    for st in roams:
        ends.append(st["t_down"])
        spans.append((st.get("t_link_up") or st.get("t_addr") or st["t_down"], st["iface"]))
    ends.append(float("inf"))
    out = dict(sniff)
    for key in ("down", "up", "echo_out"):
        kept = []
        for (seq, t), iface in zip(sniff.get(key, []), sniff.get(key + "_iface", [])):
            if any(a <= t < b and iface == i for (a, i), b in zip(spans, ends)):
                kept.append([seq, t])
        out[key] = kept
    return out


def _teardown(r, hb, place):
    """Whatever happened: the board back at its REPL, the captures closed, the place released,
    the host as it was (hb.down stops every process it started)."""
    errors = []
    for what, step in (("board", lambda: r.board and r.board.stop()), ("captures", lambda: r.caps and _stop_caps(r)),
                       ("labgrid place", lambda: place and place.__exit__())):
        try:
            step()
        except Exception as exc:
            errors.append("%s: %s" % (what, exc))
    try:
        import shutil
        shutil.copy(hb.ha_log, os.path.join(r.folder, "ha.log"))      # the workdir goes with the bench
    except OSError:
        pass
    errors += hb.down()
    if errors:
        print("roam6: restoring the bench: %s" % "; ".join(map(str, errors)), file=sys.stderr)


def _stop_caps(r):
    for p in r.caps.procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in r.caps.procs:
        try:
            p.wait(2)
        except subprocess.TimeoutExpired:
            p.kill()
    r.caps.procs = []
