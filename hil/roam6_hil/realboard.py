"""A scenario on a real board and real access points: `roam6 hil run register --board serial
--port auto|DEV --bench FILE --bundle DIR [--roams N]`.

    1. the bench file's host is configured (hostbench.HostBench: daemons, HA, CN addresses),
    2. the board gets the bundle and the config matching the HA (`roam6 deploy`, roam6_host.deploy),
    3. over its REPL (board_serial.SerialBoard) it joins the first AP the transport can use
       (or the bench file's `switch_to` command for that AP runs), and its MN starts,
    4. measured from the host: the board's event lines stamped on arrival, CN traffic to the HoA
       and a ping; with --roams N it then joins the next AP N times, each roam timed from the
       join command to the board's registration on the new network,
    5. the board is stopped and the host restored, whatever happened (Ctrl-C included).
The report has the virtual register scenario's fields (scenarios/register.py) plus `roams`.
"""
import json
import os
import subprocess
import sys
import time

from roam6_host.errors import UserError

from .hostbench import HostBench


def _aps_for(bench, transport):
    fam = "ipv4" if transport == "udp4" else "ipv6"
    aps = [ap for ap in bench["aps"] if ap[fam]]
    if not aps:
        raise UserError("transport %s needs an AP with %s addressing; the bench file has none" % (transport, fam),
                        hint="add `%s = {...}` to an [[ap]] (examples/bench.toml)" % fam)
    return aps


def _join(board, ap, timeout):
    if ap.get("switch_to"):
        r = subprocess.run(ap["switch_to"], shell=True, capture_output=True, text=True, timeout=timeout)
        if r.returncode:
            raise RuntimeError("switch_to of %s failed: %s" % (ap["ssid"], r.stderr.strip()))
        board.interrupt()
        board.start_main()
        return None
    return board.join(ap["ssid"], ap["psk"], timeout=timeout)


def cn_traffic(hoa, n=20, gap=0.02, listen_s=4.0):
    """The virtual register scenario's CN script, run on this host (the bench file's CN)."""
    from .cnprobe import CN_SCRIPT, PROBE_PORT
    r = subprocess.run([sys.executable, "-c", CN_SCRIPT, hoa, str(PROBE_PORT), "0", str(n), str(gap),
                        str(listen_s)], capture_output=True, text=True, timeout=listen_s + 10)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("CN traffic script failed: %s %s" % (r.stdout, r.stderr))


def preflight(args, report_dir):
    """Everything that can be refused before the host is touched: the arguments, the bench file
    and the host's interfaces, then the board: the labgrid place acquired (labgrid powers the board
    on where the bench file gives its power commands), or the serial port free and a MicroPython
    board answering on it. Returns (bench, port, place); the caller releases the place."""
    from .benchfile import check_host, load
    from .board_serial import SerialBoard
    from roam6_host import ports
    if getattr(args, "labgrid", None) and args.board != "serial":
        args.board = "serial"
    if not args.bench:
        raise UserError("--board serial needs --bench FILE: the host interfaces behind the access points",
                        hint="copy examples/bench.toml and name your interfaces (docs/CONTRACTS.md §8.3)")
    bench = load(args.bench)
    check_host(bench, args.i_mean_it)
    _aps_for(bench, args.transport)
    os.makedirs(report_dir, exist_ok=True)
    if args.labgrid:
        from .labgrid_place import LabgridPlace
        place = LabgridPlace(args.labgrid, args.labgrid_coordinator, os.path.join(report_dir, "board"),
                             power=bench.get("board", {}).get("power")).__enter__()
        missing = [ap["interface"] for ap in bench["aps"]
                   if place.interfaces and ap["interface"] not in place.interfaces]
        if missing:
            place.__exit__()
            raise UserError("labgrid place %s has no NetworkInterface %s (it has %s)" % (
                args.labgrid, ", ".join(missing), ", ".join(place.interfaces)),
                hint="the bench file's AP interfaces must be the place's network resources")
        return bench, place.url, place
    port = ports.resolve(args.port or "auto")
    # a busy port or a silent board: said now, with the host as it was
    SerialBoard(port=port, folder=os.path.join(report_dir, "board")).connect(args.answer_timeout).stop()
    return bench, port, None


def open_board(args, hb, port, place, folder, probe=None, extra=None):
    """After hb.up(): the board gets the bundle and the config matching the bench's HA (the
    transport narrowed to --transport, `probe` for its probe application, `extra` config fields),
    then the raw REPL. Returns (board, files deployed)."""
    from .board_serial import SerialBoard
    from roam6_host import deploy
    cfg = hb.path("board-config.json")
    with open(cfg) as f:
        conf = json.load(f)
    conf["transports"] = [args.transport]
    if probe:
        conf["probe"] = probe
    conf.update(extra or {})
    with open(cfg, "w") as f:
        json.dump(conf, f)
    if place is None and args.bundle:
        res = deploy.deploy(port, args.bundle, config=cfg, log=lambda *a: None)
        return SerialBoard(port=port, folder=folder).connect(args.answer_timeout), res["copied"]
    if place is not None:
        # through labgrid: its Strategy (labgrid_strategy.py) checks the bundle deployed on the
        # exporter's host (mpremote talks to a local port only) and writes the config over the REPL
        return place.transition("deployed", conf, args.answer_timeout), ["config.json"]
    # without --bundle (the board has it: `roam6 deploy` before): the config goes over the raw REPL
    board = SerialBoard(port=port, serial=place.serial if place else None, folder=folder).connect(args.answer_timeout)
    out, _err = board.exec("import os\nfor p in ('main.py', 'roam6'):\n try:\n  os.stat(p)\n except OSError:\n"
                           "  print(p)\n")
    if out.strip():
        board.stop()
        raise UserError("the board has no roam6 (%s missing)" % ", ".join(out.split()),
                        hint="give --bundle DIR (`roam6 build --board B --out DIR`), or `roam6 deploy` it first")
    board.put_file("config.json", json.dumps(conf))
    return board, ["config.json"]


def run_serial(args, report_dir):
    bench, port, place = preflight(args, report_dir)
    aps = _aps_for(bench, args.transport)
    report = {"scenario": "register", "board": "serial", "port": port, "transport": args.transport,
              "labgrid_place": args.labgrid, "bench": bench["name"], "registered": False, "bu_ba_ms": None,
              "roams": [], "errors": []}
    hb = HostBench(bench)
    board = None
    try:
        hb.up()
        board, report["deployed"] = open_board(args, hb, port, place, os.path.join(report_dir, "board"))
        if place is not None:
            report["labgrid_strategy"] = place.strategy.status.name      # Roam6Strategy's state: "deployed"
        t0 = time.monotonic()
        report["coa"] = _join(board, aps[0], args.join_timeout)
        reg = board.wait_event(lambda e: e.get("ev") in ("registered", "error"), args.reg_timeout, t0)
        if reg is None or reg.get("ev") != "registered":
            report["errors"].append("no registration on %s: %s" % (aps[0]["ssid"], reg or "timeout"))
            return report
        report["registered"] = True
        report["join_to_registered_ms"] = round((reg["t_rx"] - t0) * 1000, 1)
        ba = [e for e in board.events if e.get("ev") == "ba" and e.get("status", 1) < 128]
        report["bu_ba_ms"] = ba[-1].get("bu_ba_ms") if ba else None
        t = cn_traffic(bench["home"]["hoa"])
        report["udp_down_sent"], report["udp_down_received"] = t["down_sent"], t["echoed"]
        report["rtt_ms_median"] = t["rtt_ms_median"]
        r = subprocess.run(["busybox", "ping6", "-c", "3", "-W", "2", bench["home"]["hoa"]], capture_output=True,
                           text=True, timeout=15)
        report["ping_ok"] = r.returncode == 0
        for i in range(args.roams):
            ap = aps[(i + 1) % len(aps)]
            t0 = time.monotonic()
            coa = _join(board, ap, args.join_timeout)
            reg = board.wait_event(lambda e: e.get("ev") == "registered", args.reg_timeout, t0)
            report["roams"].append({"to": ap["ssid"], "coa": coa, "registered": reg is not None,
                                    "join_to_registered_ms": round((reg["t_rx"] - t0) * 1000, 1) if reg else None})
    except Exception as e:          # a broken step is reported; the host is restored below
        report["errors"].append("%s: %s" % (type(e).__name__, e))
    finally:
        if board is not None:
            board.stop()
        if place is not None:
            place.__exit__()
        errors = hb.down()
        report["errors"] += ["restoring the host: %s" % e for e in errors]
        report["ok"] = bool(report["registered"] and report.get("udp_down_received") and report.get("ping_ok")
                            and all(r["registered"] for r in report["roams"]) and not report["errors"])
        with open(os.path.join(report_dir, "report.json"), "w") as f:
            json.dump(report, f, indent=2, sort_keys=True)
    return report


def add_arguments(parser, roams=True):
    """The real-board options a scenario adds (small hooks in scenarios/register.py and roam.py,
    which has its own --roams)."""
    parser.add_argument("--bench", metavar="FILE", help="with --board serial: the bench file naming the host "
                                                        "interfaces behind the APs (examples/bench.toml)")
    parser.add_argument("--port", default="auto", help="with --board serial: the board's serial port (default auto)")
    parser.add_argument("--bundle", metavar="DIR", help="with --board serial: `roam6 build --board B --out DIR`, "
                                                       "deployed first (without it: the board's, only the config)")
    parser.add_argument("--i-mean-it", action="store_true",
                        help="with --bench: allow addresses outside the documentation/benchmark ranges")
    parser.add_argument("--labgrid", metavar="PLACE", help="with --board serial: the board of this labgrid place "
                                                           "(acquired, used through labgrid's SerialDriver, released)")
    parser.add_argument("--labgrid-coordinator", metavar="HOST:PORT",
                        help="labgrid coordinator (default $LG_COORDINATOR or 127.0.0.1:20408)")
    if roams:
        parser.add_argument("--roams", type=int, default=0, help="with --board serial: join the next AP N times")
    parser.add_argument("--join-timeout", type=float, default=20.0, help=argparse_suppress())
    parser.add_argument("--reg-timeout", type=float, default=20.0, help=argparse_suppress())
    parser.add_argument("--answer-timeout", type=float, default=5.0, help=argparse_suppress())


def argparse_suppress():
    import argparse
    return argparse.SUPPRESS


def run(args):
    report = run_serial(args, args.report)
    print(json.dumps({k: v for k, v in report.items()}, indent=2, sort_keys=True))
    return 0 if report["ok"] else 1
