"""Route optimisation on a real board and real access points: `roam6 hil run ro --board serial
--port auto|DEV --bench FILE [--bundle DIR]` (or `--labgrid PLACE`).

Return routability needs the MN's ip6 transport (node/roglue.py: raw sockets, the unix board;
docs/ARCHITECTURE.md), so the board here is one that has it: the MicroPython unix port (on a
serial pty in the tests), not an ESP32. The phases of the virtual scenario (scenarios/ro.py)
that a bench file's host can give, with its checks and verdict:
  1. privacy: the MN (`"ro": {"default": "never"}`) joins the first IPv6 AP and registers with
     the host's HA; `roam6 cn` (hostbench starts it on the file's [cn].address6, probing the HoA)
     sees no HoTI/CoTI/BU, its probes answered through the HA;
  2. ro: the MN restarted with `"ro": {"default": "auto"}`: the CN's binding holds the CoA,
     probes go direct both ways;
  3. roam: the board joins the next IPv6 AP: only the care-of half again, the binding moves,
     probes direct again.
The captures are the host's AP ports (the HA and the CN are this host: no link between them to
watch): in each phase's window the board's AP port shows tunnelled probes (privacy) or direct
ones and no tunnelled (ro, roam). Not here (the bench file gives no such links): the virtual
scenario's forged BU from the board's network, an IPv4-only AP and going home.
"""
import os
import time

from roam6.wire.addr import ip6_from_text
from roam6_host.errors import UserError

from . import realboard
from .hostbench import HostBench

CHECKS = ("privacy_no_rr_at_cn", "privacy_probes_answered", "privacy_capture_no_coa_at_ap",
          "privacy_capture_all_via_ha", "ro_binding_holds_coa", "ro_probes_direct_both_ways",
          "ro_capture_direct_at_ap", "ro_capture_nothing_via_ha", "roam_binding_moves_to_new_coa",
          "roam_careof_half_only", "roam_probes_direct", "roam_capture_direct_at_ap", "roam_capture_nothing_via_ha",
          "roam_capture_new_coa")


def run(args, quiet, ro):
    """ro: scenarios/ro.py, which hands itself in (its _Run, verdict and capture analysis)."""
    args.transport = getattr(args, "transport", None) or "ip6"
    bench, port, place = realboard.preflight(args, os.path.abspath(args.report))
    aps = [ap for ap in bench["aps"] if ap["ipv6"]]
    if len(aps) < 2:
        raise UserError("route optimisation on a real bench roams between two IPv6 APs; the bench file has %d"
                        % len(aps), hint="give two [[ap]] an `ipv6 = {...}` (examples/bench.toml)")
    phases = [_privacy, _route_optimisation] + ([_roam] if aps[1].get("switch_to") else [])
    r = ro._Run(args, quiet)
    r.ro = ro
    if len(phases) < 3:
        r.rep["skipped"] = ["roam: the bench file's second IPv6 AP (%s) has no switch_to; a join over the REPL "
                            "restarts the MN, which leaves its RR state and the CN's binding behind" % aps[1]["ssid"]]
    r.rep.update(board="serial", port=port, bench=bench["name"], labgrid_place=args.labgrid,
                 measured_at="host: roam6 cn's events, pcaps of the AP ports; board lines stamped on arrival")
    r.hoa, r.aps = bench["home"]["hoa"], aps[:2]
    hb = r.bench = HostBench(bench, cn_probe_ms=args.interval)
    caps = None
    try:
        hb.up()
        r.cn = hb.cn
        from .capture import Captures
        links = [("host", ap["interface"], "host-" + ap["interface"]) for ap in r.aps]
        caps = Captures(hb, os.path.join(r.folder, "pcap"), links).start()
        r.board, r.rep["deployed"] = realboard.open_board(args, hb, port, place, os.path.join(r.folder, "board"),
                                                          {"port": ro.PROBE_PORT}, {"ro": {"default": "never"}})
        for phase in phases:
            phase(r)
    except (RuntimeError, OSError) as exc:
        r.rep["errors"].append(str(exc))
    finally:
        for what, step in (("board", lambda: r.board and r.board.stop()),
                           ("captures", lambda: caps and _stop_caps(caps)),
                           ("labgrid place", lambda: place and place.__exit__())):
            try:
                step()
            except Exception as exc:
                r.rep["errors"].append("stopping the %s: %s" % (what, exc))
        r.rep["errors"] += ["restoring the host: %s" % e for e in hb.down()]
    _capture_checks(r)
    return ro._verdict(r, quiet, n_checks=len([c for c in CHECKS if len(phases) == 3 or not c.startswith("roam")]))


def _start(r, ap, mode):
    """The board on `ap` (joined over its REPL, or the AP's switch_to), its MN registered; the CoA."""
    t0 = time.monotonic()
    coa = realboard._join(r.board, ap, r.args.join_timeout)
    reg = r.board.wait_event(lambda e: e.get("ev") in ("registered", "error"), r.args.reg_timeout, t0)
    if reg is None or reg.get("ev") != "registered":
        raise RuntimeError("the board (ro %s, ip6) did not register on %s within %.0f s: %s; its last lines:\n%s"
                           % (mode, ap["ssid"], r.args.reg_timeout, reg or "no answer", r.board.reader.tail(15)))
    return reg.get("coa") or coa, t0


def _restart(r, mode):
    """The MN again on the same AP, with another RO policy (its config rewritten over the REPL)."""
    import json
    board = r.board
    board.interrupt()
    out, _ = board.exec("print(open('config.json').read())")
    conf = json.loads(out)
    conf["ro"] = {"default": mode}
    board.put_file("config.json", json.dumps(conf))
    t0 = time.monotonic()
    board.start_main()
    return t0


def _privacy(r):
    r.coa_a, _ = _start(r, r.aps[0], "never")
    r.say("phase 1 (privacy): board registered on %s (CoA %s), ro never" % (r.aps[0]["ssid"], r.coa_a))
    time.sleep(0.5)
    r.window("privacy", r.args.window)
    rtt = r.rtts("privacy")
    via = [e["rtt_ms"] for e in rtt if e["out"] == e["back"] == "tunnel"]
    r.figs["rtt_ms_via_ha"] = r.ro.median(via)
    r.rep["rtt_via_ha"] = r.ro.spread(via)
    cn = r.cn
    r.checks["privacy_no_rr_at_cn"] = not cn.events("hot") and not cn.events("cot") and not cn.events("binding")
    r.checks["privacy_probes_answered"] = len(rtt) > 0


def _route_optimisation(r):
    t2 = _restart(r, "auto")
    b = r.cn.wait(lambda e: e["ev"] == "binding" and e.get("coa") == r.coa_a, 15, since=t2)
    r.checks["ro_binding_holds_coa"] = b is not None and r.cn.bindings().get(r.hoa) == r.coa_a
    if b is None:
        raise RuntimeError("the CN got no binding for %s within 15 s (board ro events: %s)"
                           % (r.coa_a, [e for e in r.board.events if e["ev"].startswith("ro")]))
    r.say("phase 2 (ro): CN binding %s -> %s" % (b["hoa"], b["coa"]))
    time.sleep(0.5)
    r.window("ro", r.args.window)
    rtt = r.rtts("ro")
    direct = [e["rtt_ms"] for e in rtt if e["out"] == e["back"] == "direct"]
    r.figs["rtt_ms_direct"] = r.ro.median(direct)
    r.rep["rtt_direct"] = r.ro.spread(direct)
    r.checks["ro_probes_direct_both_ways"] = bool(rtt) and all(e["out"] == e["back"] == "direct" for e in rtt)


def _roam(r):
    """The board moved by the next AP's switch_to while its MN runs (a REPL join restarts the MN:
    the RR state and the old binding at the CN would stay behind; run() skips this phase then)."""
    import ipaddress
    import subprocess
    cn, ap = r.cn, r.aps[1]
    hot_before = len(cn.events("hot"))
    net = ipaddress.ip_network(ap["ipv6"]["prefix"])
    t0 = time.monotonic()
    p = subprocess.run(ap["switch_to"], shell=True, capture_output=True, text=True, timeout=r.args.join_timeout)
    if p.returncode:
        raise RuntimeError("switch_to of %s failed: %s" % (ap["ssid"], p.stderr.strip()))
    # the board's new address: the one the CN binds, in the new AP's prefix, and the board's own word
    b2 = cn.wait(lambda e: e["ev"] == "binding" and ipaddress.ip_address(e.get("coa", "::")) in net, 15, since=t0)
    reg = r.board.wait_event(lambda e: e.get("ev") == "registered", 5, since=t0)
    r.coa_c = reg.get("coa") if reg else None
    r.checks["roam_binding_moves_to_new_coa"] = b2 is not None and b2["coa"] == r.coa_c
    r.say("phase 3 (roam): %s, CoA %s; CN binding %s" % (ap["ssid"], r.coa_c, b2 and b2["coa"]))
    if b2 is not None:
        cot = cn.events("cot", t0)
        r.figs["rr_after_roam_ms_at_cn"] = round(b2["t_ms"] - cot[0]["t_ms"], 3) if cot else None
        r.figs["join_to_cn_binding_ms"] = round((b2["t_rx"] - t0) * 1000, 2)
        mnb = r.board.wait_event(lambda e: e["ev"] == "ro_bound" and e.get("coa") == r.coa_c, 2, since=t0)
        r.figs["rr_after_roam_ms_at_mn"] = mnb.get("rr_ms") if mnb else None
        r.checks["roam_careof_half_only"] = len(cn.events("hot")) == hot_before and len(cot) >= 1
    time.sleep(0.5)
    r.window("roam", r.args.window)
    rtt = r.rtts("roam")
    r.checks["roam_probes_direct"] = bool(rtt) and all(e["out"] == e["back"] == "direct" for e in rtt)


def _capture_checks(r):
    """The AP port the board was on, in each phase's window (ro.paths on the host's pcaps)."""
    checks, win = r.checks, r.win
    pc = os.path.join(r.folder, "pcap")
    cn_b, hoa_b = ip6_from_text(r.bench.spec["cn"]["address6"]), ip6_from_text(r.hoa)
    coas = tuple(ip6_from_text(a) for a in (getattr(r, "coa_a", None), getattr(r, "coa_c", None)) if a)
    port = {ap["interface"]: r.ro.paths(os.path.join(pc, "host-%s.pcap" % ap["interface"]), cn_b, hoa_b, win, coas)
            for ap in r.aps}
    r.rep["windows"] = port
    a, c = port[r.aps[0]["interface"]], port[r.aps[1]["interface"]]
    if "privacy" in win:
        w = a["privacy"]
        checks["privacy_capture_no_coa_at_ap"] = w["direct_udp"] == 0 and not w["coa_seen"] and \
            not any(k in w["mh"] for k in ("HoTI", "CoTI", "BU"))
        checks["privacy_capture_all_via_ha"] = w["tunnel_udp"] > 0
    for name, at in (("ro", a), ("roam", c)):
        if name in win:
            checks["%s_capture_direct_at_ap" % name] = at[name]["direct_udp"] > 0
            checks["%s_capture_nothing_via_ha" % name] = at[name]["tunnel_udp"] == 0
    if "roam" in win:
        checks["roam_capture_new_coa"] = c["roam"]["coa_seen"] == [r.coa_c]


def _stop_caps(caps):
    from types import SimpleNamespace
    from .realroam import _stop_caps as stop
    stop(SimpleNamespace(caps=caps))
