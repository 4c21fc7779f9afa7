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

from .. import dnanak
from .. import report as rep
from .. import roamfamily as fam
from ..boards import SCENARIO_BOARD_HELP, get_driver, profile, scenario_board_real
from ..capture import Captures
from ..daemons import set_loss, start_daemons
from ..eventlog import EventProc
from ..homeagent import board_config, start_ha, write_ha_config
from ..roaming import Roamer, families_for, instrument_argv, networks_for
from ..topology import CN_ADDR6, HOA, Bench

PROBE_PORT, CN_PORT = 9000, 9001


def add_arguments(p):
    p.add_argument("--board", default="unix", type=scenario_board_real, choices=["unix", "serial"],
                   help=SCENARIO_BOARD_HELP + "; serial: a real board with --bench FILE (realroam.py)")
    p.add_argument("--profile", default="esp32", choices=["esp32", "rp2040", "router"],
                   help="virtual board profile: heap, transports, native module (default esp32)")
    p.add_argument("--addressing", default="auto", choices=["static", "auto"],
                   help="static: the address is set at the instant of the roam; auto (default): the board "
                        "addresses itself (DHCPv4, SLAAC; RFC 4436/6059 on revisits)")
    p.add_argument("--roams", type=int, default=20, help="number of roams (default 20)")
    p.add_argument("--traffic", default="echo", choices=["echo", "sensor"],
                   help="echo: the board only answers; sensor: it also sends its own stream")
    p.add_argument("--loss", type=float, default=0.0, help="%% of packets dropped on the access links")
    p.add_argument("--dwell", type=float, default=0.4, help="seconds on each network after registering (default 0.4)")
    p.add_argument("--interval", "--probe-ms", dest="interval", type=float, default=5.0,
                   help="ms between probes, 1 at the finest (default 5)")
    p.add_argument("--no-memory", action="store_true",
                   help="auto: the board remembers no network (every roam is a first visit; RFC 4436/6059 off)")
    dnanak.add_argument(p)
    p.add_argument("--report", default="reports/roam", metavar="DIR", help="report folder (default reports/roam)")
    p.add_argument("--prefix", default="r6-", help="namespace prefix (default r6-)")
    p.add_argument("--no-pcap", action="store_true", help="do not capture the links")
    p.add_argument("--app", default="mn", choices=["mn", "reference"],
                   help="mn: the roam6 MN on the board (default); "
                        "reference: the bench's own app, no mobility (a bench check)")
    p.add_argument("--aaa", action="store_true",
                   help="the HA gets the board's key from FreeRADIUS (SQLite) and accounts each roam (CONTRACTS §14)")
    p.add_argument("--security", default="rfc4285", choices=["rfc4285", "ipsec"],
                   help="the registration's protection: rfc4285 (default) or ipsec (IKEv2 + ESP, RFC 4877)")
    p.add_argument("--heap", type=heap_size, metavar="SIZE",
                   help="override the profile's MicroPython heap, e.g. to find what the MN needs; " + HEAP_HELP)
    p.add_argument("--family", default="ipv6", choices=fam.CHOICES, help=fam.HELP)
    p.add_argument("--ipv4-tlv", action="store_true", help=fam.TLV_HELP)
    from .. import realroam
    realroam.add_arguments(p)


def _say(quiet, msg):
    if not quiet:
        print(msg, flush=True)


def check_args(args):
    if args.roams < 1 or args.roams > 100000:
        raise UserError("--roams must be between 1 and 100000, got %d" % args.roams)
    if not 0 <= args.loss < 100:
        raise UserError("--loss must be a percentage in [0, 100), got %s" % args.loss)
    if not args.interval >= 1:      # written `not >=` so that nan is refused too
        raise UserError("--interval must be at least 1 ms")
    if getattr(args, "security", "rfc4285") == "ipsec" and getattr(args, "aaa", False):
        raise UserError("--security ipsec with --aaa is not built (the HA's IPsec devices come from its keys file)")
    if not args.dwell >= 0:         # said here, not as time.sleep's traceback once the bench is up
        raise UserError("--dwell must be 0 or more seconds, got %s" % args.dwell)
    fam.check(args)


class _Run:
    """One run's plan and, as it goes, its parts and records (what the phases below hand on)."""


def run(args, quiet=False):
    if getattr(args, "board", "unix") == "serial" or getattr(args, "labgrid", None):
        from .. import realroam
        return realroam.run(args, quiet, check_args, _verdict, _print_result)
    r = _plan(args, quiet)
    with Bench(prefix=args.prefix, workdir=r.work) as bench:
        r.bench = bench
        # setup
        _start_bench(r)
        _start_traffic(r)
        # steps
        _roam_all(r)
        _stop_and_collect(r)
    # verdict
    report = _verdict(r)
    if not quiet:
        _print_result(r, report)
    return 0 if report["summary"]["ok"] else 1


def _plan(args, quiet):
    """Check the arguments and lay out the run: the profile, the folders, the networks and the
    roams in order. Nothing is built yet (a refused run leaves no report folder)."""
    from ..netns import require_root_and_tools
    check_args(args)
    require_root_and_tools(("ip", "nft"))      # before the report folder is made: a refused run leaves none
    r = _Run()
    r.args, r.quiet = args, quiet
    r.prof = prof = profile(args.profile)
    if args.heap:
        prof["heap_kb"] = as_kb(args.heap)
    elif getattr(args, "security", "rfc4285") == "ipsec":
        prof["heap_kb"] = max(prof["heap_kb"], 192)   # the 64-bit unix port's words: ~2x a board's heap
    r.reference = args.app == "reference"
    r.nets = ["apC"] if r.reference else networks_for(prof["transports"])
    r.go_home = not r.reference and 6 in families_for(prof["transports"])
    r.t_start = time.monotonic()
    r.result = {"scenario": "roam", "board": args.board, "profile": prof["name"], "heap_kb": prof["heap_kb"],
                "transports_allowed": prof["transports"], "addressing": args.addressing, "traffic": args.traffic,
                "loss_percent": args.loss, "app": args.app, "networks": r.nets,
                "security": getattr(args, "security", "rfc4285"), "family": fam.family(args),
                "ipv4_tlv_header": fam.tlv(args)}
    # the roams: around the networks in turn (or the same one again), then home when the board can
    r.plan, cur = [], r.nets[0]
    for _ in range(args.roams):
        if len(r.nets) > 1:
            cur = r.nets[(r.nets.index(cur) + 1) % len(r.nets)]
        r.plan.append(cur)
    if r.go_home:
        r.plan.append("home")
    r.nak_index = dnanak.nak_roam(args, r.nets, r.plan) if getattr(args, "dna_nak", False) else None
    r.folder = os.path.abspath(args.report)     # last: a run refused above leaves no folder
    os.makedirs(r.folder, exist_ok=True)
    r.work = os.path.join(r.folder, "bench")
    if os.path.isdir(r.work):
        import shutil
        shutil.rmtree(r.work, ignore_errors=True)
    return r


def _start_bench(r):
    """The daemons, the link captures, the loss, the HA and the roamer (services: stopped at the end)."""
    bench, args = r.bench, r.args
    _say(r.quiet, "bench up: %s* namespaces (%.2f s)" % (args.prefix, time.monotonic() - r.t_start))
    r.daemons = start_daemons(bench)
    _say(r.quiet, "daemons listening: radvd, kea-dhcp6, dnsmasq (%.2f s)" % (time.monotonic() - r.t_start))
    r.caps = None
    if not args.no_pcap:
        r.caps = Captures(bench, os.path.join(r.folder, "pcap")).start()
        bench.services.append(r.caps)
    if args.loss:
        set_loss(bench, args.loss)
    r.ha = None
    if not r.reference:
        if getattr(args, "aaa", False):
            from ..aaa import start_aaa
            r.ha = start_ha(bench, start_aaa(bench, ipv4_home=fam.wants_v4(args)))
        else:
            r.ha = start_ha(bench, write_ha_config(bench, security=r.result["security"],
                                                   ipv4_home=fam.wants_v4(args)))
        bench.services.append(r.ha)
    if fam.wants_v4(args):
        fam.setup_cn4(bench)
    r.board_addresses = not r.reference and args.addressing == "auto"
    r.roamer = Roamer(bench, addressing="static" if r.reference else args.addressing,
                      families=families_for(r.prof["transports"]), board_addresses=r.board_addresses).start()
    bench.services.append(r.roamer)


def _probe(r, ns, argv, what):
    """A probe process (roam6_hil.probe) once it says it is ready."""
    p = EventProc(r.bench, r.bench.popen(ns, argv, stdout=subprocess.PIPE, text=True))
    if p.readline(5) != "ready":
        raise RuntimeError("the %s did not start" % what)
    return p


def _start_traffic(r):
    """The board on the first network, the sniffer on its radio, the application (the MN, or the
    reference app) and the CN's probes, until they flow both ways."""
    bench, args = r.bench, r.args
    first = r.roamer.roam(r.nets[0], wait=not r.board_addresses)
    if first["t_addr"] is None and not r.board_addresses:
        raise RuntimeError("the board got no address on %s" % r.nets[0])
    r.sniff_out, r.cn_out = bench.path("sniff.json"), bench.path("cn.json")
    r.sniff = _probe(r, "board", instrument_argv([sys.executable, "-u", "-m", "roam6_hil.probe", "sniff", "--iface",
                                                  "wlan0", "--out", r.sniff_out]), "probe sniffer")
    probe_cfg = {"port": PROBE_PORT}
    if args.traffic == "sensor":
        probe_cfg["sensor"] = {"dst": fam.sensor_dst(args, CN_ADDR6), "port": CN_PORT,
                               "interval_ms": int(args.interval)}
    r.board = r.hoa4 = None
    if r.reference:
        argv = [sys.executable, "-u", "-m", "roam6_hil.probe", "board", "--port", str(PROBE_PORT),
                "--interval", str(args.interval)]
        if args.traffic == "sensor":
            argv += ["--sensor", "[%s]:%d" % (CN_ADDR6, CN_PORT)]
        r.app = _probe(r, "board", argv, "reference probe application")
        dst = "2001:db8:c1::50"
    else:
        r.board = board = get_driver(args.board)(bench, r.prof["name"])
        board.profile["heap_kb"] = r.prof["heap_kb"]
        addressing = None if not r.board_addresses else ("dhcp" if args.no_memory else "dna")
        board.start(board_config(probe=probe_cfg, addressing=addressing, security=r.result["security"],
                                 ipv4_hoa="0.0.0.0" if fam.wants_v4(args) else None,
                                 ipv4_tlv_header=fam.tlv(args) or None))
        reg = board.wait_event(lambda e: e["ev"] in ("registered", "error")
                               or (e["ev"] == "ba" and e.get("status") == 0),
                               20)
        if reg is None or reg["ev"] == "error":
            raise RuntimeError("the MN did not register within 20 s; its last lines:\n" + board.log_tail())
        _say(r.quiet, "MN registered: %s via %s (BU->BA %s ms)"
             % (reg.get("coa"), reg.get("transport"), reg.get("bu_ba_ms")))
        dst = HOA
        r.hoa4 = fam.wait_hoa4(board) if fam.wants_v4(args) else None
    # one probe stream per home address (--family): the CN's to the HoA, cn4's to the IPv4 HoA
    r.streams = [("ipv6", "cn", dst, 0, r.cn_out)] if r.reference else fam.streams(r, dst)
    r.stream_procs = [_probe(r, ns, instrument_argv([sys.executable, "-u", "-m", "roam6_hil.probe", "cn",
                                                     "--dst", to, "--port", str(PROBE_PORT), "--listen", str(CN_PORT),
                                                     "--interval", str(args.interval), "--out", out,
                                                     "--seq0", str(seq0)]), "%s probe" % ns)
                      for _f, ns, to, seq0, out in r.streams]
    r.cn = r.stream_procs[0]
    for p, (_f, ns, to, _s, _o) in zip(r.stream_procs, r.streams):
        if p.readline(10) != "flowing":
            raise RuntimeError("no probe from %s to %s came back from the board within 10 s" % (ns, to) +
                               ("; MN log:\n" + r.board.log_tail() if r.board else ""))


def _roam_all(r):
    """Each roam of the plan, `--dwell` s apart; the MN's BA (or deregistration at home) noted."""
    board = r.board
    r.roams = []
    time.sleep(r.args.dwell)
    r.nak_given = None
    for i, net in enumerate(r.plan):
        if i == r.nak_index:        # --dna-nak: the board's lease there given away meanwhile
            r.nak_given = dnanak.give_away(r.bench, r.daemons, net)
            _say(r.quiet, "roam %d: the board's lease %s on %s given to another client (dnsmasq will NAK it)"
                 % (i + 1, r.nak_given, net))
        st = r.roamer.roam(net)
        r.roams.append(st)
        note = ""
        if board is not None:
            want = (lambda e: e["ev"] == "deregistered") if net == "home" else \
                   (lambda e: e["ev"] == "ba" and e.get("status") == 0)
            ev = board.wait_event(want, 3.0, since=st["t_down"])
            if ev and ev["ev"] == "ba":
                note = " BA +%.1f ms (BU->BA %s ms, %s)" % ((ev["t"] - st["t_down"]) * 1000, ev.get("bu_ba_ms"),
                                                             ev.get("transport"))
            else:
                note = " deregistered" if ev else " NO BA within 3 s"
            if not board.alive():
                _say(r.quiet, "the MN exited; last lines:\n" + board.log_tail())
                break
        after = "%.1f" % ((st["t_addr"] - st["t_down"]) * 1000) if st["t_addr"] else "-"
        _say(r.quiet, "roam %d/%d -> %s: address %s after %s ms%s" % (i + 1, len(r.plan), net, st["addr"], after, note))
        time.sleep(r.args.dwell)


def _stop_and_collect(r):
    """Stop the probes (they write their records), the MN and the services; read the records."""
    r.mn_alive = r.board.alive() if r.board else True
    r.t_end = time.monotonic()
    for p in r.stream_procs + [r.sniff]:
        p.p.send_signal(signal.SIGTERM)
    for p in r.stream_procs + [r.sniff]:
        try:
            p.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
    if r.board is not None:
        r.board.stop()
    r.ha_alive = r.ha.alive() if r.ha else True
    r.bench.stop_services()
    r.stream_recs = []
    for _f, _ns, _to, _s, out in r.streams:
        with open(out) as f:
            r.stream_recs.append(json.load(f))
    r.cn_rec = r.stream_recs[0]
    with open(r.sniff_out) as f:
        r.sniff_rec = json.load(f)
    r.events = r.board.events if r.board else []


def _verdict(r):
    """The report (report.json, timeline.png): the figures, and ok only if the probes flowed again
    after every roam, the MN and the HA lived, every planned roam ran and the MN deregistered at home."""
    events, roams = r.events, r.roams
    report, v4 = fam.analyse(r, rep.analyse)      # per home address (--family); v4: the IPv4 one with both
    s = report["summary"]
    s["mn_alive"] = r.mn_alive
    s["ha_alive"] = r.ha_alive
    s["deregistered"] = any(e["ev"] == "deregistered" for e in events) if r.go_home else None
    s["completed_roams"] = len(roams)
    # the board's own addressing (config "addressing" dna/dhcp): how each address came
    how = [e.get("how") for e in events if e["ev"] == "addressing"]
    s["revisited"] = how.count("confirmed") if how else None      # RFC 4436/6059 confirmations
    s["dhcp_leases"] = how.count("lease") if how else None        # full DHCPv4 exchanges
    s["dhcp_naks"] = how.count("nak") if how else None
    # revisits (a network the board was on before in this run: the first one included) apart
    # from first visits: the goal of the board's network memory is on the former
    seen, split = {r.nets[0]}, {"revisit": [], "first": []}
    for row, net in zip(report["rows"], [st["net"] for st in roams]):
        if net != "home":
            split["revisit" if net in seen else "first"].append(row)
        seen.add(net)
    for kind, rows in split.items():
        for k in ("interruption_down_ms", "interruption_up_ms"):
            vals = [x[k] for x in rows if x.get(k) is not None]
            s["%s_%s" % (kind, k)] = ({"n": len(vals), "p50": rep.percentile(vals, 50), "p90": rep.percentile(vals, 90),
                                       "max": rep.percentile(vals, 100)} if vals else None)
    if v4:
        report["ipv4"] = v4
    s["ok"] = (s["recovered_all"] and (v4 is None or v4["summary"]["recovered_all"])
               and r.mn_alive and r.ha_alive and len(roams) == len(r.plan)
               and (s["deregistered"] is not False))
    if r.nak_index is not None:
        s["ok"] = dnanak.verdict(report, r.nak_index, r.nak_given) and s["ok"]
    report.update(r.result)
    report["roam_stamps"] = roams
    if getattr(r.args, "aaa", False) and not r.reference:
        from ..aaa import accounting_rows
        report["aaa_accounting"] = accounting_rows(r.bench)
    report["mn_events"] = [e for e in events if e["ev"] != "heap"][:5000]
    report["heap"] = [{"t": e["t"], "alloc": e.get("alloc"), "free": e.get("free")}
                      for e in events if e["ev"] == "heap"]
    r.path = rep.write(report, r.folder)
    r.png = rep.timeline(report, r.cn_rec, r.sniff_rec, roams, os.path.join(r.folder, "timeline.png"), r.args.traffic,
                         roams[0]["t_down"] - r.args.dwell if roams else r.t_start)
    return report


def _print_result(r, report):
    s = report["summary"]
    print()
    if report.get("ipv4"):
        print("IPv6 home address %s, from the CN:" % report["summary"]["dst"])
    elif report["summary"].get("family") == "ipv4":
        print("IPv4 home address %s, from the IPv4-only correspondent:" % report["summary"]["dst"])
    print(rep.table(report))
    print()
    if report.get("ipv4"):
        print("IPv4 home address %s, from the IPv4-only correspondent:" % report["ipv4"]["hoa4"])
        print(rep.table(report["ipv4"]))
        print()
    if s.get("revisit_interruption_down_ms") and s.get("first_interruption_down_ms"):
        a, b = s["revisit_interruption_down_ms"], s["first_interruption_down_ms"]
        print("interruption down, p50 (p90): %d revisits %s (%s) ms, %d first visits %s (%s) ms"
              % (a["n"], a["p50"], a["p90"], b["n"], b["p50"], b["p90"]))
    if s.get("revisited") is not None:
        print("addressing by the board: %d known networks confirmed and their addresses reused (RFC 4436/6059), "
              "%d full DHCPv4 exchanges, %d NAKs" % (s["revisited"], s["dhcp_leases"], s["dhcp_naks"]))
    if "aaa_accounting" in report:
        from ..aaa import table as aaa_table
        print(aaa_table(report["aaa_accounting"]))
        print()
    if s.get("dna_nak"):
        n = s["dna_nak"]
        print("lease given away (--dna-nak), roam %d: %s NAKed %s ms after link down -> %s, %s DHCP exchange(s), "
              "BA from it at %s ms; lost outside interruptions %d: %s"
              % (n["roam"], n.get("old") or n["given_away"], n.get("nak_ms"), n.get("new"),
                 n.get("exchanges_after_nak"), n.get("new_ba_ms"), n["lost_outside_interruptions"],
                 "OK" if n["ok"] else "FAILED"))
    print("report:   %s" % r.path)
    print("timeline: %s" % r.png)
    if r.caps:
        print("pcaps:    %s" % os.path.join(r.folder, "pcap"))
    failed = (("not every roam recovered", not s["recovered_all"]),
              ("the IPv4 HoA did not recover after every roam",
               bool(report.get("ipv4")) and not report["ipv4"]["summary"]["recovered_all"]),
              ("MN died", not r.mn_alive),
              ("HA died", not r.ha_alive), ("no deregistration at home", s["deregistered"] is False),
              ("roams stopped early", len(r.roams) != len(r.plan)),
              ("the NAK path (--dna-nak) failed", s.get("dna_nak") and not s["dna_nak"]["ok"]))
    print("result:   %s" % ("OK: probes flowed again after every roam, session survived" if s["ok"] else
                            "FAILED: " + ", ".join(k for k, v in failed if v)))
