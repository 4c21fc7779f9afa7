"""`roam6 hil run ro` end to end on a live bench: the MN on the MicroPython unix port (router
profile, ip6 transport) and the real `roam6 cn`, HA and daemons. Every check of the scenario is
asserted except the two `home_*` ones: going home the node glue (firmware/roam6/node/roglue.py)
does not yet send the deregistration natively from the HoA (README, CONTRACTS.md §12), so they
are printed here, not asserted; the MN core's deregistration itself is tested in
tests/firmware/test_rr.py and against the real CN process in tests/cn/test_cn_process.py."""
import argparse
import json

from roam6_hil.scenarios import ro

NODE_GAP = {"home_dereg_at_cn", "home_probes_answered_without_ro"}


def test_ro_scenario_on_the_bench(tmp_path, prefix, capsys):
    p = argparse.ArgumentParser()
    ro.add_arguments(p)
    ro.run(p.parse_args(["--report", str(tmp_path / "rep"), "--prefix", prefix, "--window", "1.5"]))
    out = capsys.readouterr().out
    rep = json.load(open(tmp_path / "rep" / "report.json"))
    assert rep["errors"] == [], out
    checks = rep["checks"]
    assert len(checks) == ro.N_CHECKS, out
    failed = sorted(k for k, v in checks.items() if not v and k not in NODE_GAP)
    assert failed == [], out
    print("back-home checks (node glue gap, not asserted):", {k: checks[k] for k in NODE_GAP})
    figs = rep["figures"]
    assert figs["rtt_ms_via_ha"] > 0 and figs["rtt_ms_direct"] > 0
    assert figs["rr_after_roam_ms_at_mn"] is not None and figs["rr_after_roam_ms_at_mn"] < 1000
    # the captures really saw the direct path and the tunnel
    w = rep["windows"]
    assert w["core-cn"]["ro"]["direct_udp"] > 10 and w["core-ha"]["privacy"]["tunnel_udp"] > 10
