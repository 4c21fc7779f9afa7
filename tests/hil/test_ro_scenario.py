"""`roam6 hil run ro` end to end on a live bench: the MN on the MicroPython unix port (router
profile, ip6 transport) and the real `roam6 cn`, HA and daemons: every check of the scenario
(privacy, RO, roam, forged BU, IPv4-only network, back home) must pass."""
import argparse
import json

from roam6_hil.scenarios import ro

def test_ro_scenario_on_the_bench(tmp_path, prefix, capsys):
    p = argparse.ArgumentParser()
    ro.add_arguments(p)
    ro.run(p.parse_args(["--report", str(tmp_path / "rep"), "--prefix", prefix, "--window", "1.5"]))
    out = capsys.readouterr().out
    rep = json.load(open(tmp_path / "rep" / "report.json"))
    assert rep["errors"] == [], out
    checks = rep["checks"]
    assert len(checks) == ro.N_CHECKS, out
    failed = sorted(k for k, v in checks.items() if not v)
    assert failed == [], out
    assert rep["ok"], out
    figs = rep["figures"]
    assert figs["rtt_ms_via_ha"] > 0 and figs["rtt_ms_direct"] > 0
    assert figs["rr_after_roam_ms_at_mn"] is not None and figs["rr_after_roam_ms_at_mn"] < 1000
    assert figs["home_to_cn_dereg_ms"] < 1000  # sent at once on coming home, not at a retransmission
    # the captures really saw the direct path and the tunnel
    w = rep["windows"]
    assert w["core-cn"]["ro"]["direct_udp"] > 10 and w["core-ha"]["privacy"]["tunnel_udp"] > 10
