"""`roam6 bench roam`: the roam scenario as a benchmark; prints (JSON) the figures of the goals:
p50/p90/max interruption both ways, "address usable -> first probe", BU->BA, where the time goes,
losses outside interruptions, duplicates, and the MN's heap at the first and last report."""
import argparse
import json
import os
import shutil
import tempfile

from .scenarios import roam


def register(sub):
    p = sub.add_parser("roam", help="roam the virtual board N times and report the handover figures")
    p.add_argument("--roams", type=int, default=20, help="number of roams (default 20)")
    p.add_argument("--profile", default="esp32", choices=["esp32", "rp2040", "router"],
                   help="virtual board profile (default esp32)")
    p.add_argument("--addressing", default="static", choices=["static", "auto"],
                   help="static (default): the address is set at the instant of the roam; auto: the board "
                        "addresses itself (DHCPv4, SLAAC; RFC 4436/6059 on revisits)")
    p.add_argument("--traffic", default="echo", choices=["echo", "sensor"], help="echo (default) or sensor")
    p.add_argument("--loss", type=float, default=0.0, help="%% of packets dropped on the access links (default 0)")
    p.add_argument("--report", default=None, metavar="DIR", help="keep the full report here (default: a temp folder)")
    p.add_argument("--prefix", default="r6b-", help="namespace prefix (default r6b-)")
    p.add_argument("--probe-ms", type=float, default=5.0, help="ms between probes, 1 at the finest (default 5)")
    p.add_argument("--no-memory", action="store_true",
                   help="auto: the board remembers no network (first visits only; RFC 4436/6059 off)")
    p.add_argument("--dna-nak", action="store_true",
                   help="auto: the board's lease on a network it comes back to is given away meanwhile (the server "
                        "NAKs); checks the move to a new address within one DHCP exchange and no loss outside")
    p.add_argument("--dwell", type=float, default=0.4, help="seconds on each network after registering (default 0.4)")
    p.add_argument("--app", default="mn", choices=["mn", "reference"],
                   help="reference: the bench's own app without mobility, at the same probe step (a bench check)")
    p.set_defaults(func=run)


KEYS = ("interruption_down_ms", "interruption_up_ms", "addr_to_first_probe_ms", "bu_ba_ms", "link_ms", "addr_ms",
        "mn_ms", "ba_to_first_probe_ms", "bu_ba_stage_ms", "split_total_ms")


def _holds_a_file(folder):
    for _root, _dirs, files in os.walk(folder):
        if files:
            return True
    return False


def run(args):
    from .cli import run_scenario
    made = None if args.report else tempfile.mkdtemp(prefix="roam6-bench-roam-")
    folder = args.report or made
    probe_ms, app = getattr(args, "probe_ms", 5.0), getattr(args, "app", "mn")
    no_memory = getattr(args, "no_memory", False)
    p = argparse.ArgumentParser()
    roam.add_arguments(p)
    ra = p.parse_args(["--roams", str(args.roams), "--profile", args.profile, "--addressing", args.addressing,
                       "--traffic", args.traffic, "--loss", str(args.loss), "--report", folder,
                       "--prefix", args.prefix, "--no-pcap", "--probe-ms", str(probe_ms), "--app", app]
                      + (["--no-memory"] if no_memory else [])
                      + (["--dna-nak"] if getattr(args, "dna_nak", False) else [])
                      + ["--dwell", str(getattr(args, "dwell", 0.4))])
    try:
        rc = run_scenario(roam.run, ra, quiet=True)     # as `hil run roam`: keeps a `hil up` bench, no traceback
    except BaseException:
        # a refused run (a kept `hil up` bench, a bad value, not root) wrote nothing: leave no empty
        # temp folder behind; one that failed on the way keeps its logs there (the error says so)
        if made and not _holds_a_file(made):
            shutil.rmtree(made, ignore_errors=True)
        raise
    with open(os.path.join(folder, "report.json")) as f:
        rep = json.load(f)
    s = rep["summary"]
    out = {"benchmark": "roam", "ok": rc == 0, "roams": s["roams"], "profile": args.profile,
           "addressing": args.addressing, "traffic": args.traffic, "loss_percent": args.loss,
           "probe_ms": probe_ms, "app": app, "memory": not no_memory,
           "revisited": s.get("revisited"), "dhcp_leases": s.get("dhcp_leases"), "dhcp_naks": s.get("dhcp_naks"),
           "transports": s.get("transports"), "lost_outside_interruptions": s["lost_outside_interruptions"],
           "duplicated": s["duplicated_total"], "recovered_all": s["recovered_all"],
           "heap_first": s.get("heap_first"), "heap_last": s.get("heap_last"), "heap_max": s.get("heap_max"),
           "report": os.path.join(folder, "report.json")}
    for k in KEYS:
        out[k] = s.get(k)
    out["split_mean_ms"] = s.get("split_mean_ms")
    out["dwell_s"] = getattr(args, "dwell", 0.4)
    if s.get("dna_nak"):
        out["dna_nak"] = s["dna_nak"]   # the stages' means: >= 0 each, adding up to the total
    for k in ("revisit_interruption_down_ms", "revisit_interruption_up_ms", "first_interruption_down_ms",
              "first_interruption_up_ms"):
        out[k] = s.get(k)
    return out
