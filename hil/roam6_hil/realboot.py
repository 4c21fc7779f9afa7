"""The bootstrap scenario on a real board and real access points: `roam6 hil run bootstrap --board
serial --port auto|DEV --bench FILE [--bundle DIR]` (or `--labgrid PLACE`).

As on the virtual bench (scenarios/bootstrap.py): the board knows only its NAI, key, home address
and domain; on each AP the transport can use it boots (joins the AP over its REPL, or the AP's
`switch_to` command, and its MN starts), finds its HA (DHCPv6 with the RFC 6610 options from the
host's Kea, or the RFC 5026 DNS records from the host's dnsmasq, in --order) and registers. The
same report.json rows; the board checked before the host is touched, the host restored after.
"""
import json
import os
import time

from . import realboard
from .hostbench import HostBench


def add_arguments(p):
    realboard.add_arguments(p, roams=False)
    p.add_argument("--transport", choices=["udp4", "udp6"],
                   help="with --board serial: the MN's transport (default: the --profile's first, esp32 udp4)")


def run(args, order, quiet=False):
    from .profiles import profile
    args.transport = args.transport or profile(args.profile)["transports"][0]
    folder = os.path.abspath(args.report)
    bench, port, place = realboard.preflight(args, folder)
    aps = realboard._aps_for(bench, args.transport)
    hb = HostBench(bench)
    board, rows, errors, deployed = None, [], [], []
    try:
        hb.up()
        # the board's config: what the bench's HA knows of it, less the HA and home prefix
        board, deployed = realboard.open_board(args, hb, port, place, os.path.join(folder, "board"))
        with open(hb.path("board-config.json")) as f:
            cfg = json.load(f)
        cfg.update(ha="bootstrap", home_prefix="bootstrap", bootstrap=order)
        cfg.pop("ha_ipv4", None)
        board.put_file("config.json", json.dumps(cfg))
        for ap in aps:
            t0 = time.monotonic()
            try:
                addr = realboard._join(board, ap, args.join_timeout)
            except RuntimeError as exc:
                rows.append({"net": ap["ssid"], "address": None, "registered": False, "seconds": None,
                             "method": None, "ha": None, "transport": None, "error": str(exc)})
                continue
            ev = board.wait_event(lambda e: e["ev"] == "registered" or (e["ev"] == "error" and e.get("fatal")),
                                  args.timeout, t0)
            boot = next((e for e in board.events if e["ev"] == "bootstrap" and e["t_rx"] >= t0), None)
            row = {"net": ap["ssid"], "address": addr, "registered": bool(ev and ev["ev"] == "registered"),
                   "seconds": round(ev["t_rx"] - t0, 3) if ev else None,
                   "method": boot.get("method") if boot else None, "ha": boot.get("ha") if boot else None,
                   "transport": ev.get("transport") if ev else None,
                   "error": (ev.get("reason") if ev and ev["ev"] == "error"
                             else None if ev else "no registration in %.0f s" % args.timeout)}
            rows.append(row)
            if not quiet:
                what = ("registered via %s after %.2f s (bootstrap: %s)" % (row["transport"], row["seconds"],
                                                                           row["method"]) if row["registered"]
                        else "NOT registered: %s\n%s" % (row["error"], board.reader.tail(8)))
                print("%-10s address %-28s %s" % (ap["ssid"], addr, what), flush=True)
    except Exception as exc:          # reported; the board, the place and the host are restored below
        errors.append("%s: %s" % (type(exc).__name__, exc))
    finally:
        if board is not None:
            board.stop()
        if place is not None:
            place.__exit__()
        errors += ["restoring the host: %s" % e for e in hb.down()]
    ok = bool(rows) and all(r["registered"] for r in rows) and not errors
    path = os.path.join(folder, "report.json")
    with open(path, "w") as f:
        json.dump({"scenario": "bootstrap", "board": "serial", "port": port, "labgrid_place": args.labgrid,
                   "bench": bench["name"], "transport": args.transport, "order": order, "deployed": deployed,
                   "rows": rows,
                   "errors": errors, "ok": ok}, f, indent=1)
    if not quiet:
        for e in errors:
            print("error: %s" % e)
        print("report: %s\nresult: %s" % (path, "OK" if ok else "FAILED"))
    return 0 if ok else 1
