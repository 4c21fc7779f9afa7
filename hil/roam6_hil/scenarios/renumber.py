"""`roam6 hil run renumber`: the home network is renumbered under a registered MN (issue 14; RFC 6275
§10.6, §11.4.2-3; docs/PROTOCOL-NOTES.md §11.15-16).

The MicroPython MN (udp4 on apB, config "prefix_solicit_s") registers its HoA in the bench's home
prefix 2001:db8:aa::/64. The operator then puts 2001:db8:bb::/64 on the home link and routes it
there, adds ha.json "renumber" {new_prefix, old_valid_s} and sends the HA SIGHUP. Measured from
the SIGHUP: the HA's unsolicited MPA -> the MN's MPS -> the MPA naming both prefixes (new first,
the old one deprecated) -> the BU for the new HoA (the HA's DAD on the home link) -> its
authenticated BA -> the MN adopts the prefix; the HA releases the old HoA (binding "renumbered",
route). Then UDP from the CN to the new HoA (echoed by the MN's probe) and the MN's own datagrams
from it, and the same to the old HoA (no longer answered). Writes DIR/report.json; exit 0 only if
all of it happened.
"""
import json
import os
import secrets
import signal
import sys
import time

from roam6_host.errors import UserError
from roam6_host.heapsize import HELP as HEAP_HELP, heap_size

from ..board_unix import start_mn
from ..cnprobe import CN_SCRIPT, PROBE_PORT
from ..homeagent import start_ha, write_ha_config
from ..topology import HOA, Bench
from .register import SENSOR_PORT, attach_for, write_mn_config

NEW_PREFIX = "2001:db8:bb::/64"
NEW_HOA = "2001:db8:bb::100"
NEW_ON_LINK = "2001:db8:bb::1/64"          # the home router's address in the new prefix
HA_UPLINK = "2001:db8:f1::2"               # the core routes the home prefixes to the ha namespace


def add_arguments(p):
    p.add_argument("--old-valid", type=int, default=600, metavar="S",
                   help="ha.json renumber.old_valid_s: how long the old prefix is still served (default 600)")
    p.add_argument("--heap", type=heap_size, default="96K", metavar="SIZE",
                   help="the MN's MicroPython heap (default 96K); " + HEAP_HELP)
    p.add_argument("--report", default="reports/renumber", metavar="DIR",
                   help="report folder (default reports/renumber)")
    p.add_argument("--prefix", default="r6rn-", help="namespace prefix (default r6rn-)")


def _cn(bench, dst, n, listen_s):
    r = bench.run("cn", [sys.executable, "-c", CN_SCRIPT, dst, str(PROBE_PORT), str(SENSOR_PORT), str(n), "0.02",
                         str(listen_s)], check=False, timeout=listen_s + 10)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("CN traffic script failed: %s %s" % (r.stdout, r.stderr)) from None


def _after(ev, t0):
    return round(ev["t"] - t0, 3) if ev else None


def renumber_once(bench, key, heap="96K", old_valid_s=600):
    """The scenario on a built bench; returns its report (dict). RuntimeError: a step failed to start."""
    conf = write_ha_config(bench, key)
    ha = start_ha(bench, conf)
    _net, coa = attach_for(bench, "udp4")
    mn_conf = write_mn_config(bench, key, "udp4", sensor_interval_ms=50)
    with open(mn_conf) as f:
        cfg = json.load(f)
    cfg["prefix_solicit_s"] = 600          # solicits at its first registration; then when prompted
    with open(mn_conf, "w") as f:
        json.dump(cfg, f)
    mn = start_mn(bench, mn_conf, heap=heap, extra=["--coa", coa, "--transport", "udp4"])
    out = {"scenario": "renumber", "old_prefix": "2001:db8:aa::/64", "new_prefix": NEW_PREFIX, "old_hoa": HOA,
           "new_hoa": NEW_HOA, "old_valid_s": old_valid_s}
    try:
        ev = mn.wait_for(lambda e: e.get("ev") in ("registered", "error"), 10)
        out["registered_old"] = ev is not None and ev["ev"] == "registered"
        if not out["registered_old"]:
            raise RuntimeError("the MN did not register its old HoA:\n" + mn.tail(10))
        out["first_mps"] = mn.wait_for(lambda e: e.get("ev") == "mps", 3) is not None
        # the operator: the new prefix on the home link and routed to it, ha.json, SIGHUP
        bench.ns.batch("ha", ["-6 addr add %s dev home nodad" % NEW_ON_LINK])
        bench.ns.batch("core", ["-6 route add %s via %s" % (NEW_PREFIX, HA_UPLINK)])
        with open(conf) as f:
            hac = json.load(f)
        hac["renumber"] = {"new_prefix": NEW_PREFIX, "old_valid_s": old_valid_s}
        with open(conf, "w") as f:
            json.dump(hac, f)
        t0 = time.monotonic()
        os.kill(ha.p.pid, signal.SIGHUP)
        on = ha.wait_for(lambda e: e.get("ev") == "renumbering", 5)
        out["ha_renumbering"] = on
        hint = mn.wait_for(lambda e: e.get("ev") in ("prefix_hint", "prefix_refused"), 5)
        out["mn_hint"] = hint and {k: hint.get(k) for k in ("ev", "prefix")}
        done = mn.wait_for(lambda e: e.get("ev") in ("home_prefix", "prefix_refused"), 5)
        out["mn_adopted"] = done and {k: done.get(k) for k in ("ev", "prefix", "hoa")}
        added = ha.wait_for(lambda e: e.get("ev") == "binding_added" and e.get("hoa") == NEW_HOA, 3)
        gone = ha.wait_for(lambda e: e.get("ev") == "binding_removed" and e.get("hoa") == HOA, 3)
        out["old_released"] = gone.get("reason") if gone else None
        out["seconds_from_sighup"] = {"hint": _after(hint, t0), "new_hoa_bound_at_ha": _after(added, t0),
                                      "adopted_by_mn": _after(done, t0), "old_released": _after(gone, t0)}
        routes = bench.run("ha", ["ip", "-6", "route", "show", "dev", "r6tun"]).stdout
        out["routes"] = {"new_hoa": NEW_HOA in routes, "old_hoa": HOA in routes}
        st = bench.run("ha", [sys.executable, "-m", "roam6_host", "ha", "status", "--json"], check=False)
        try:
            doc = json.loads(st.stdout)
            out["ha_status"] = {"renumber": doc.get("renumber"), "hoas": [b["hoa"] for b in doc["bindings"]]}
        except (ValueError, KeyError, TypeError):
            out["ha_status"] = None
        out["traffic_new_hoa"] = _cn(bench, NEW_HOA, 10, 1.5)
        out["traffic_old_hoa"] = _cn(bench, HOA, 5, 0.5)
        out["mn_events"] = [e for e in mn.events if e.get("ev") in ("mps", "prefix_hint", "home_prefix", "bu", "ba")]
    finally:
        mn.stop()
        ha.stop()
    tn, to = out["traffic_new_hoa"], out["traffic_old_hoa"]
    out["ok"] = bool(out["registered_old"] and on and on.get("state") == "on" and out["mn_hint"]
                     and out["mn_hint"]["ev"] == "prefix_hint" and out["mn_adopted"]
                     and out["mn_adopted"]["ev"] == "home_prefix" and added and out["old_released"] == "renumbered"
                     and out["routes"] == {"new_hoa": True, "old_hoa": False}
                     and tn["echoed"] >= 9 and tn["up_received"] >= 5 and to["echoed"] == 0)
    return out


def run(args, quiet=False):
    if not 10 <= args.old_valid <= 2592000:
        raise UserError("--old-valid must be 10..2592000 s, got %d" % args.old_valid)
    from ..netns import require_root_and_tools
    require_root_and_tools(("ip",))
    folder = os.path.abspath(args.report)
    os.makedirs(folder, exist_ok=True)
    with Bench(prefix=args.prefix, workdir=os.path.join(folder, "bench")) as bench:
        rep = renumber_once(bench, secrets.token_hex(16), args.heap, args.old_valid)
    path = os.path.join(folder, "report.json")
    with open(path, "w") as f:
        json.dump(rep, f, indent=1)
    if not quiet:
        s = rep["seconds_from_sighup"]
        print("SIGHUP -> MN's hint %s s, new HoA bound %s s, adopted %s s, old HoA released %s s (%s)"
              % (s["hint"], s["new_hoa_bound_at_ha"], s["adopted_by_mn"], s["old_released"], rep["old_released"]))
        print("new HoA: %d/%d echoed, %d datagrams from the MN; old HoA: %d echoed"
              % (rep["traffic_new_hoa"]["echoed"], rep["traffic_new_hoa"]["down_sent"],
                 rep["traffic_new_hoa"]["up_received"], rep["traffic_old_hoa"]["echoed"]))
        print("report: %s\nresult: %s" % (path, "OK" if rep["ok"] else "FAILED"))
    return 0 if rep["ok"] else 1
