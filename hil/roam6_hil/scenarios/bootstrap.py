"""`roam6 hil run bootstrap`: the board boots on apA, apB and apC in turn knowing only its NAI, key,
home address and domain; it must find its HA (DHCPv6 RFC 6610 on apA, DNS RFC 5026 on apB, either
on apC) and register. Writes DIR/report.json; exit 0 only if it registered on every network its
profile can use."""
import json
import os
import time

from roam6_host.errors import UserError
from roam6_host.heapsize import HELP as HEAP_HELP, as_kb, heap_size

from ..boards import SCENARIO_BOARD_HELP, get_driver, profile, scenario_board_real
from ..daemons import start_daemons
from ..homeagent import board_config, start_ha, write_ha_config
from ..roaming import Roamer, families_for, networks_for
from ..topology import DOMAIN, Bench


def add_arguments(p):
    p.add_argument("--board", default="unix", type=scenario_board_real, choices=["unix", "serial"],
                   help=SCENARIO_BOARD_HELP + "; serial: a real board with --bench FILE (realboot.py)")
    p.add_argument("--profile", default="esp32", choices=["esp32", "rp2040", "router"],
                   help="virtual board profile: heap, transports (default esp32)")
    p.add_argument("--report", default="reports/bootstrap", metavar="DIR",
                   help="report folder (default reports/bootstrap)")
    p.add_argument("--prefix", default="r6-", help="namespace prefix (default r6-)")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds to register on each network (default 15)")
    p.add_argument("--heap", type=heap_size, metavar="SIZE",
                   help="override the profile's MicroPython heap; " + HEAP_HELP)
    p.add_argument("--order", default="dhcpv6,dns",
                   help="bootstrap methods in order (config 'bootstrap'), default dhcpv6,dns")
    from .. import realboot
    realboot.add_arguments(p)


def run(args, quiet=False):
    if not args.timeout > 0:
        raise UserError("--timeout must be more than 0 seconds, got %s" % args.timeout,
                        hint="e.g. --timeout 15 (the default)")
    prof = profile(args.profile)
    if args.heap:
        prof["heap_kb"] = as_kb(args.heap)
    order = [m.strip() for m in args.order.split(",") if m.strip()]
    bad = [m for m in order if m not in ("dhcpv6", "dns", "static")]
    if bad or not order:
        raise UserError("--order: unknown method(s) %s" % ", ".join(bad or ["(none)"]), hint="use dhcpv6, dns, static")
    if args.board == "serial" or args.labgrid:
        from .. import realboot
        return realboot.run(args, order, quiet)
    folder = os.path.abspath(args.report)
    os.makedirs(folder, exist_ok=True)
    rows = []
    with Bench(prefix=args.prefix, workdir=os.path.join(folder, "bench")) as bench:
        start_daemons(bench)
        ha = start_ha(bench, write_ha_config(bench))
        bench.services.append(ha)
        roamer = Roamer(bench, addressing="auto", families=families_for(prof["transports"])).start()
        bench.services.append(roamer)
        for net in networks_for(prof["transports"]):
            st = roamer.roam(net)
            cfg = board_config(ha="bootstrap", ha_ipv4=None, home_prefix="bootstrap", domain=DOMAIN,
                               bootstrap=order, state_file=bench.path("roam6.state"))
            board = get_driver(args.board)(bench, prof["name"], folder=bench.path("board-" + net))
            board.profile["heap_kb"] = prof["heap_kb"]
            t0 = time.monotonic()
            board.start(cfg)
            ev = board.wait_event(lambda e: e["ev"] in ("registered",) or (e["ev"] == "error" and e.get("fatal")),
                                  args.timeout)
            boot = next((e for e in board.events if e["ev"] == "bootstrap"), None)
            row = {"net": net, "address": st["addr"], "registered": bool(ev and ev["ev"] == "registered"),
                   "seconds": round(ev["t_rx"] - t0, 3) if ev else None,
                   "method": boot.get("method") if boot else None,
                   "ha": boot.get("ha") if boot else None,
                   "transport": ev.get("transport") if ev else None,
                   "error": (ev.get("reason") if ev and ev["ev"] == "error"
                             else None if ev else "no registration in %.0f s" % args.timeout)}
            rows.append(row)
            if not quiet:
                if row["registered"]:
                    what = "registered via %s after %.2f s (bootstrap: %s)" % (row["transport"], row["seconds"],
                                                                             row["method"])
                else:
                    what = "NOT registered: %s\n%s" % (row["error"], board.log_tail(8))
                print("%-4s address %-28s %s" % (net, st["addr"], what))
            board.stop()
    ok = bool(rows) and all(r["registered"] for r in rows)
    with open(os.path.join(folder, "report.json"), "w") as f:
        json.dump({"scenario": "bootstrap", "profile": prof["name"], "heap_kb": prof["heap_kb"], "order": order,
                   "rows": rows, "ok": ok}, f, indent=1)
    if not quiet:
        print("report: %s\nresult: %s" % (os.path.join(folder, "report.json"), "OK" if ok else "FAILED"))
    return 0 if ok else 1
