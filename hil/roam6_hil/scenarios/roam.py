"""`roam6 hil run roam`: probes every 5 ms both ways between the CN and the board's HoA while the
board roams --roams times across the access networks its profile can use, then goes home
(deregistration). Writes DIR/report.json, DIR/timeline.png, DIR/pcap/*.pcap; prints the table.
Exit 0 only if the probes flowed again after every roam and the session survived.

--app reference runs the bench's own CPython probe application on the board instead of the MN,
and re-associates it with the same network (apC) each time: what the bench measures when there
is no mobility at all (a check of the bench itself).
"""
import json
import os
import signal
import subprocess
import sys
import time

from roam6_host.errors import UserError
from roam6_host.heapsize import HELP as HEAP_HELP, as_kb, heap_size

from .. import report as rep
from ..boards import SCENARIO_BOARD_HELP, get_driver, profile, scenario_board
from ..capture import Captures
from ..daemons import set_loss, start_daemons
from ..homeagent import HomeAgentProcess, board_config
from ..roaming import Roamer, families_for, instrument_argv, networks_for
from ..topology import CN_ADDR6, HOA, Bench

PROBE_PORT, CN_PORT = 9000, 9001


def add_arguments(p):
    p.add_argument("--board", default="unix", type=scenario_board, choices=["unix"], help=SCENARIO_BOARD_HELP)
    p.add_argument("--profile", default="esp32", choices=["esp32", "rp2040", "router"],
                   help="virtual board profile: heap, transports, native module (default esp32)")
    p.add_argument("--addressing", default="auto", choices=["static", "auto"],
                   help="static: the address is set at the instant of the roam; auto: SLAAC/DHCPv4 (default)")
    p.add_argument("--roams", type=int, default=20, help="number of roams (default 20)")
    p.add_argument("--traffic", default="echo", choices=["echo", "sensor"],
                   help="echo: the board only answers; sensor: it also sends its own stream")
    p.add_argument("--loss", type=float, default=0.0, help="%% of packets dropped on the access links")
    p.add_argument("--dwell", type=float, default=0.4, help="seconds on each network after registering (default 0.4)")
    p.add_argument("--interval", type=float, default=5.0, help="ms between probes (default 5)")
    p.add_argument("--report", default="reports/roam", metavar="DIR", help="report folder (default reports/roam)")
    p.add_argument("--prefix", default="r6-", help="namespace prefix (default r6-)")
    p.add_argument("--no-pcap", action="store_true", help="do not capture the links")
    p.add_argument("--app", default="mn", choices=["mn", "reference"],
                   help="mn: the roam6 MN on the board (default); reference: the bench's own app, no mobility (a bench check)")
    p.add_argument("--heap", type=heap_size, metavar="SIZE",
                   help="override the profile's MicroPython heap, e.g. to find what the MN needs; " + HEAP_HELP)


def _say(quiet, msg):
    if not quiet:
        print(msg, flush=True)


def _readline(proc, timeout):
    """The next line of a child's stdout within `timeout` s (None if none). A thread per child
    reads the pipe: select() on the fd would miss lines already sitting in the file's buffer."""
    import queue
    import threading
    q = getattr(proc, "_lines", None)
    if q is None:
        q = proc._lines = queue.Queue()

        def pump():
            for line in proc.stdout:
                q.put(line)
            q.put(None)
        threading.Thread(target=pump, daemon=True).start()
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        return None


def check_args(args):
    if args.roams < 1 or args.roams > 100000:
        raise UserError("--roams must be between 1 and 100000, got %d" % args.roams)
    if not 0 <= args.loss < 100:
        raise UserError("--loss must be a percentage in [0, 100), got %s" % args.loss)
    if not args.interval >= 1:      # written `not >=` so that nan is refused too
        raise UserError("--interval must be at least 1 ms")
    if not args.dwell >= 0:         # said here, not as time.sleep's traceback once the bench is up
        raise UserError("--dwell must be 0 or more seconds, got %s" % args.dwell)


def run(args, quiet=False):
    from ..netns import require_root_and_tools
    check_args(args)
    require_root_and_tools(("ip", "nft"))      # before the report folder is made: a refused run leaves none
    prof = profile(args.profile)
    if args.heap:
        prof["heap_kb"] = as_kb(args.heap)
    folder = os.path.abspath(args.report)
    os.makedirs(folder, exist_ok=True)
    work = os.path.join(folder, "bench")
    if os.path.isdir(work):
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    reference = args.app == "reference"
    nets = ["apC"] if reference else networks_for(prof["transports"])
    go_home = not reference and 6 in families_for(prof["transports"])
    t_start = time.monotonic()
    result = {"scenario": "roam", "board": args.board, "profile": prof["name"], "heap_kb": prof["heap_kb"],
              "transports_allowed": prof["transports"], "addressing": args.addressing, "traffic": args.traffic,
              "loss_percent": args.loss, "app": args.app, "networks": nets}
    with Bench(prefix=args.prefix, workdir=work) as bench:
        _say(quiet, "bench up: %s* namespaces (%.2f s)" % (args.prefix, time.monotonic() - t_start))
        start_daemons(bench)
        _say(quiet, "daemons listening: radvd, kea-dhcp6, dnsmasq (%.2f s)" % (time.monotonic() - t_start))
        caps = None
        if not args.no_pcap:
            caps = Captures(bench, os.path.join(folder, "pcap")).start()
            bench.services.append(caps)
        if args.loss:
            set_loss(bench, args.loss)
        ha = None
        if not reference:
            ha = HomeAgentProcess(bench).start()
            bench.services.append(ha)
        roamer = Roamer(bench, addressing="static" if reference else args.addressing,
                        families=families_for(prof["transports"])).start()
        bench.services.append(roamer)
        first = roamer.roam(nets[0])
        if first["t_addr"] is None:
            raise RuntimeError("the board got no address on %s" % nets[0])
        sniff_out, cn_out = bench.path("sniff.json"), bench.path("cn.json")
        sniff = bench.popen("board", instrument_argv([sys.executable, "-u", "-m", "roam6_hil.probe", "sniff", "--iface", "wlan0",
                                                      "--out", sniff_out]), stdout=subprocess.PIPE, text=True)
        if _readline(sniff, 5) != "ready\n":
            raise RuntimeError("the probe sniffer did not start")
        probe_cfg = {"port": PROBE_PORT}
        if args.traffic == "sensor":
            probe_cfg["sensor"] = {"dst": CN_ADDR6, "port": CN_PORT, "interval_ms": int(args.interval)}
        board = None
        if reference:
            argv = [sys.executable, "-u", "-m", "roam6_hil.probe", "board", "--port", str(PROBE_PORT),
                    "--interval", str(args.interval)]
            if args.traffic == "sensor":
                argv += ["--sensor", "[%s]:%d" % (CN_ADDR6, CN_PORT)]
            app = bench.popen("board", argv, stdout=subprocess.PIPE, text=True)
            if _readline(app, 5) != "ready\n":
                raise RuntimeError("the reference probe application did not start")
            dst = "2001:db8:c1::50"
        else:
            board = get_driver(args.board)(bench, prof["name"])
            board.profile["heap_kb"] = prof["heap_kb"]
            board.start(board_config(probe=probe_cfg))
            reg = board.wait_event(lambda e: e["ev"] in ("registered", "error") or (e["ev"] == "ba" and e.get("status") == 0), 20)
            if reg is None or reg["ev"] == "error":
                raise RuntimeError("the MN did not register within 20 s; its last lines:\n" + board.log_tail())
            _say(quiet, "MN registered: %s via %s (BU->BA %s ms)" % (reg.get("coa"), reg.get("transport"), reg.get("bu_ba_ms")))
            dst = HOA
        cn = bench.popen("cn", instrument_argv([sys.executable, "-u", "-m", "roam6_hil.probe", "cn", "--dst", dst,
                                                "--port", str(PROBE_PORT), "--listen", str(CN_PORT),
                                                "--interval", str(args.interval), "--out", cn_out]),
                         stdout=subprocess.PIPE, text=True)
        if _readline(cn, 5) != "ready\n":
            raise RuntimeError("the CN probe did not start")
        if _readline(cn, 10) != "flowing\n":
            raise RuntimeError("no probe came back from the board within 10 s" +
                               ("; MN log:\n" + board.log_tail() if board else ""))
        time.sleep(args.dwell)
        roams = []
        cur = nets[0]
        plan = []
        for i in range(args.roams):
            if len(nets) > 1:
                cur = nets[(nets.index(cur) + 1) % len(nets)]
            plan.append(cur)
        if go_home:
            plan.append("home")
        for i, net in enumerate(plan):
            st = roamer.roam(net)
            roams.append(st)
            note = ""
            if board is not None:
                want = (lambda e: e["ev"] == "deregistered") if net == "home" else \
                       (lambda e: e["ev"] == "ba" and e.get("status") == 0)
                ev = board.wait_event(want, 3.0, since=st["t_down"])
                note = (" BA +%.1f ms (BU->BA %s ms, %s)" % ((ev["t"] - st["t_down"]) * 1000, ev.get("bu_ba_ms"), ev.get("transport"))
                        if ev and ev["ev"] == "ba" else (" deregistered" if ev else " NO BA within 3 s"))
                if not board.alive():
                    _say(quiet, "the MN exited; last lines:\n" + board.log_tail())
                    break
            _say(quiet, "roam %d/%d -> %s: address %s after %s ms%s" % (
                i + 1, len(plan), net, st["addr"], "%.1f" % ((st["t_addr"] - st["t_down"]) * 1000) if st["t_addr"] else "-", note))
            time.sleep(args.dwell)
        mn_alive = board.alive() if board else True
        t_end = time.monotonic()
        for p in (cn, sniff):
            p.send_signal(signal.SIGTERM)
        for p in (cn, sniff):
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if board is not None:
            board.stop()
        ha_alive = ha.alive() if ha else True
        for svc in reversed(bench.services):
            svc.stop()
        bench.services = []
        with open(cn_out) as f:
            cn_rec = json.load(f)
        with open(sniff_out) as f:
            sniff_rec = json.load(f)
        events = board.events if board else []
    report = rep.analyse(cn_rec, sniff_rec, roams, events, args.traffic, t_end)
    s = report["summary"]
    s["mn_alive"] = mn_alive
    s["ha_alive"] = ha_alive
    s["deregistered"] = any(e["ev"] == "deregistered" for e in events) if go_home else None
    s["completed_roams"] = len(roams)
    ok = s["recovered_all"] and mn_alive and ha_alive and len(roams) == len(plan) and (s["deregistered"] is not False)
    s["ok"] = ok
    report.update(result)
    report["roam_stamps"] = roams
    report["mn_events"] = [e for e in events if e["ev"] != "heap"][:5000]
    report["heap"] = [{"t": e["t"], "alloc": e.get("alloc"), "free": e.get("free")} for e in events if e["ev"] == "heap"]
    path = rep.write(report, folder)
    png = rep.timeline(report, cn_rec, sniff_rec, roams, os.path.join(folder, "timeline.png"), args.traffic,
                       roams[0]["t_down"] - args.dwell if roams else t_start)
    if not quiet:
        print()
        print(rep.table(report))
        print()
        print("report:   %s" % path)
        print("timeline: %s" % png)
        if caps:
            print("pcaps:    %s" % os.path.join(folder, "pcap"))
        print("result:   %s" % ("OK: probes flowed again after every roam, session survived" if ok else
                                "FAILED: " + ", ".join(k for k, v in (("not every roam recovered", not s["recovered_all"]),
                                                                      ("MN died", not mn_alive), ("HA died", not ha_alive),
                                                                      ("no deregistration at home", s["deregistered"] is False),
                                                                      ("roams stopped early", len(roams) != len(plan))) if v)))
    return 0 if ok else 1
