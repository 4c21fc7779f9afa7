"""`roam6 hil up|down|status|run|report` and `roam6 demo` (entry points in pyproject.toml)."""
import argparse
import importlib
import json
import os
import pkgutil
import shutil

from roam6_host.errors import UserError

from .interrupts import sigterm_as_interrupt

STATE_DIR = "/run/roam6-hil"


SCENARIO_HELP = {
    "roam": "roam the virtual board N times under probes every 5 ms: table, timeline, pcaps",
    "bootstrap": "boot on apA, apB, apC knowing only NAI, key, HoA, domain; find the HA and register",
    "register": "register the MN with the real HA (udp4/udp6/ip6), then UDP and ping to its HoA",
    "ro": "route optimisation with `roam6 cn`: privacy, return routability, roam, home",
    "failover": "hot-standby HA pair (keepalived): HA failures while the MN roams, interruption, bindings",
    "ha-discovery": "the MN's HA dead at boot / after a roam: it finds another by its list and by DHAAD",
    "ha-switch": "drain N MNs from HA1 to HA2 (RFC 5142 Home Agent Switch): time, per-device interruption",
    "soak": "N MicroPython MNs on one HA roaming at random for minutes: losses, HA RSS, MN heap",
    "renumber": "the home prefix renumbered under a registered MN: HA serves both, MN moves, old HoA released",
}


def _scenarios():
    from . import scenarios
    for info in sorted(pkgutil.iter_modules(scenarios.__path__), key=lambda m: m.name):
        try:
            mod = importlib.import_module("roam6_hil.scenarios." + info.name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("roam6"):
                continue   # a scenario whose parts are not built yet
            raise
        if hasattr(mod, "run") and hasattr(mod, "add_arguments"):
            yield info.name.replace("_", "-"), mod      # ha_switch.py: `roam6 hil run ha-switch`


def register(sub):
    p = sub.add_parser("hil", help="the roaming bench: network namespaces with real daemons, scenarios, reports",
                       description="Hardware-in-the-loop bench (needs root). See docs/CONTRACTS.md §8.")
    hs = p.add_subparsers(dest="hil_command", metavar="SUBCOMMAND")
    hs.required = True
    up = hs.add_parser("up", help="build a bench and leave it running (daemons included)",
                       description="Build the bench's namespaces, links and daemons and leave them running, "
                                   "to poke at with `ip netns exec r6-board bash`. Remove it with `roam6 hil down`.")
    up.add_argument("--prefix", default="r6-", help="namespace prefix (default r6-)")
    up.add_argument("--no-daemons", action="store_true", help="namespaces, links and routes only")
    up.add_argument("--attach", default="apC", choices=["apA", "apB", "apC", "home", "none"],
                    help="network the board starts on, static address (default apC)")
    _bench_file_options(up)
    up.set_defaults(func=cmd_up)
    down = hs.add_parser("down", help="remove a bench (also one left by a killed run)",
                         description="Remove every namespace with the prefix and the processes in them. "
                                     "Nothing up is fine: it says so and exits 0.")
    down.add_argument("--prefix", default="r6-", help="namespace prefix (default r6-)")
    down.add_argument("--bench", metavar="FILE", help="remove the bench `hil up --bench FILE` made: the host as it was")
    down.set_defaults(func=cmd_down)
    st = hs.add_parser("status", help="show the bench's namespaces and the processes in them",
                       description="List the bench's namespaces and the processes in each; exit 1 when none is up.")
    st.add_argument("--prefix", default="r6-", help="namespace prefix (default r6-)")
    st.set_defaults(func=cmd_status)
    found = list(_scenarios())
    run = hs.add_parser("run", help="run a scenario: %s" % ", ".join(n for n, _ in found),
                        description="Build a bench, run one scenario, write its report, remove the bench. "
                                    "`roam6 hil run SCENARIO --help` says what each measures.")
    rs = run.add_subparsers(dest="scenario", metavar="SCENARIO")
    rs.required = True
    for name, mod in found:
        doc = (mod.__doc__ or "").strip()
        sp = rs.add_parser(name, help=SCENARIO_HELP.get(name, doc.split("\n")[0]), description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(sp)
        sp.set_defaults(func=_runner(mod))
    rep = hs.add_parser("report", help="print the table of a report folder",
                        description="Print the roam table of a finished run again. "
                                    "Example: roam6 hil report reports/demo")
    rep.add_argument("dir", metavar="DIR", help="a folder a roam run wrote, e.g. reports/demo")
    rep.set_defaults(func=cmd_report)


def _bench_file_options(p):
    p.add_argument("--bench", metavar="FILE", help="a bench of real parts: the host's interfaces a bench file "
                                                   "names (examples/bench.toml, CONTRACTS §8.3) instead of namespaces")
    p.add_argument("--i-mean-it", action="store_true",
                   help="with --bench: allow addresses outside the documentation/benchmark ranges")


def _runner(mod):
    def go(args):
        return run_scenario(mod.run, args)
    return go


def run_scenario(run, args, **kw):
    """Every bench run (hil run SCENARIO, demo, bench roam): it does not replace a bench kept by
    `hil up`, Ctrl-C/SIGTERM still tears it down, and a failed bench step is an error line, no traceback."""
    _refuse_to_replace_an_up_bench(getattr(args, "prefix", None) or "r6-", hasattr(args, "prefix"))
    sigterm_as_interrupt()
    try:
        return run(args, **kw)
    except RuntimeError as exc:
        # a bench step that failed (a daemon, the MN, the HA): say which, no traceback
        raise UserError(str(exc), hint="logs are in the report folder's bench/ directory", exit_code=1)


def _refuse_to_replace_an_up_bench(prefix, has_prefix_option):
    """A run replaces whatever bench has its prefix (a killed run's leftovers): not one the user
    keeps with `roam6 hil up`."""
    from .netns import list_namespaces
    if os.path.exists(_state(prefix)) and any(n.startswith(prefix) for n in list_namespaces()):
        raise UserError("a bench from `roam6 hil up` is up with prefix %s, and this run would replace it" % prefix,
                        hint="remove it first: roam6 hil down --prefix %s%s" % (
                            prefix, " (or give this run another --prefix, e.g. r6r-)" if has_prefix_option else ""))


def register_demo(sub):
    p = sub.add_parser("demo", help="the roaming demo: the virtual board (esp32 profile) roams, then the report",
                       description="Builds the bench, runs the roam scenario on the virtual board (esp32 "
                                   "profile, auto addressing: the board runs DHCPv4 itself and reuses the "
                                   "address of a network it knows, RFC 4436), prints the table and the "
                                   "timeline's path.")
    p.add_argument("--report", default="reports/demo", metavar="DIR",
                   help="where report.json, timeline.png and pcap/ go (default reports/demo)")
    p.add_argument("--roams", type=int, default=20, help="number of roams (default 20)")
    p.add_argument("--traffic", default="echo", choices=["echo", "sensor"],
                   help="echo: the board only answers; sensor: it also sends its own stream (default echo)")
    p.add_argument("--profile", default="esp32", choices=["esp32", "rp2040", "router"],
                   help="virtual board: esp32 (100 KB heap, udp4), rp2040 (udp6/udp4), router (default esp32)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args):
    from .scenarios import roam
    p = argparse.ArgumentParser()
    roam.add_arguments(p)
    ra = p.parse_args(["--report", args.report, "--roams", str(args.roams), "--traffic", args.traffic,
                       "--profile", args.profile, "--addressing", "auto", "--board", "unix"])
    return _runner(roam)(ra)


def _state(prefix):
    return os.path.join(STATE_DIR, prefix + "json")


def cmd_up(args):
    if args.bench:
        from .hostbench import cmd_up_bench
        return cmd_up_bench(args)
    from .daemons import start_daemons
    from .netns import check_prefix, require_root_and_tools
    from .topology import Bench
    check_prefix(args.prefix)
    require_root_and_tools(("ip", "nft"))
    sigterm_as_interrupt()
    os.makedirs(STATE_DIR, exist_ok=True)
    workdir = os.path.join(STATE_DIR, args.prefix + "work")
    shutil.rmtree(workdir, ignore_errors=True)
    b = Bench(prefix=args.prefix, workdir=workdir)
    try:
        b.up()
        if not args.no_daemons:
            start_daemons(b)
        if args.attach != "none":
            b.attach(args.attach)
    except BaseException:
        b.down()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    # the daemons run in their own sessions and outlive this command, as a bench should
    with open(_state(args.prefix), "w") as f:
        json.dump({"prefix": args.prefix, "workdir": workdir, "daemons": not args.no_daemons,
                   "board_on": None if args.attach == "none" else args.attach}, f)
    print("bench %s is up: namespaces %s; configs and logs in %s" % (
        args.prefix, ", ".join(b.full(s) for s in Bench.SHORT), workdir))
    print("enter one with: ip netns exec %s bash    remove it with: roam6 hil down --prefix %s" % (b.full("board"),
                                                                                                   args.prefix))
    return 0


def cmd_down(args):
    if args.bench:
        from .hostbench import cmd_down_bench
        return cmd_down_bench(args)
    from .netns import cleanup_prefix, require_root_and_tools
    require_root_and_tools(("ip",))
    gone = cleanup_prefix(args.prefix)
    st = _state(args.prefix)
    if os.path.exists(st):
        with open(st) as f:
            workdir = json.load(f).get("workdir")
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        os.remove(st)
    if gone:
        print("removed %d namespaces: %s" % (len(gone), ", ".join(gone)))
    else:
        print("nothing to remove: no bench with prefix %s is up" % args.prefix)
    return 0


def cmd_status(args):
    from .netns import check_prefix, list_namespaces, ns_pids
    check_prefix(args.prefix)
    names = [n for n in list_namespaces() if n.startswith(args.prefix)]
    if not names:
        print("no bench with prefix %s" % args.prefix)
        return 1
    for n in names:
        procs = []
        for pid in ns_pids(n):
            try:
                with open("/proc/%d/comm" % pid) as f:
                    procs.append("%s(%d)" % (f.read().strip(), pid))
            except OSError:
                pass
        print("%-16s %s" % (n, " ".join(procs) or "-"))
    st = _state(args.prefix)
    if os.path.exists(st):
        with open(st) as f:
            print("state: %s" % f.read().strip())
    return 0


def cmd_report(args):
    from . import report
    path = os.path.join(args.dir, "report.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except (FileNotFoundError, NotADirectoryError):
        raise UserError("no report.json in %s" % args.dir, hint="run `roam6 hil run roam --report %s` first" % args.dir)
    except ValueError as exc:
        raise UserError("%s is not valid JSON: %s" % (path, exc))
    if not isinstance(data, dict) or "rows" not in data or "summary" not in data:
        kind = data.get("scenario") if isinstance(data, dict) else None
        raise UserError("%s is %snot a roam report: `hil report` prints roam tables"
                        % (path, "a %s report, " % kind if kind else ""),
                        hint="read it as it is: python3 -m json.tool %s" % path)
    print(report.table(data))
    png = os.path.join(args.dir, "timeline.png")
    if os.path.exists(png):
        print("timeline: %s" % png)
    return 0
