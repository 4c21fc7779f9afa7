"""`roam6 hil run failover`, tiny: one crash of the active `roam6 ha` in the middle of a roam of the
real MicroPython MN (the figures over many failures: README, Performance). VRRP adverts every
50 ms: 10 ms ones can starve on a loaded 2-core machine and flap, which would lose probes
outside the window and fail a test about something else."""
import argparse
import json

from roam6_hil.scenarios import failover


def test_a_mid_roam_ha_crash_loses_no_binding_and_nothing_outside_the_window(tmp_path, prefix, capsys):
    p = argparse.ArgumentParser()
    failover.add_arguments(p)
    rc = failover.run(p.parse_args(["--failures", "1", "--kinds", "crash", "--mid-roam", "always", "--bindings", "2",
                                    "--dwell", "0.3", "--advert-ms", "50", "--report", str(tmp_path / "rep"),
                                    "--prefix", prefix]))
    out = capsys.readouterr().out
    rep = json.load(open(tmp_path / "rep" / "report.json"))
    assert rc == 0 and rep["ok"], out
    (f,) = rep["failures"]
    assert f["kind"] == "crash" and f["mid_roam"] and f["failed"] == "ha1"
    assert f["bindings_before"] == 3 and f["bindings_after"] == 3 and f["rejoined_synced_bindings"] == 3
    assert f["recovered"] and f["interruption_down_ms"] < 5000 and f["interruption_up_ms"] < 5000, f
    assert rep["lost_outside_interruptions"] == {"down": 0, "up": 0}
    assert rep["roams"] == 2 and rep["probes_sent"]["down"] > 100 and rep["probes_sent"]["up"] > 100


def test_bad_arguments_are_refused_before_the_bench_is_built(tmp_path, capsys):
    import pytest
    from roam6_host.errors import UserError
    p = argparse.ArgumentParser()
    failover.add_arguments(p)
    for bad in (["--kinds", "reboot"], ["--failures", "0"], ["--interval", "0.5"], ["--dwell", "0"]):
        with pytest.raises(UserError):
            failover.run(p.parse_args(bad + ["--report", str(tmp_path / "rep"), "--prefix", "s5hx-"]))


def test_ipsec_rekey_figures_from_the_mn_events():
    """--security ipsec's figures (`roam6 hil run failover --security ipsec`, run by hand: README): per
    failure, the MN's first BU after it (dropped: the new active has the binding, not the SAs), its
    recheck, the new CHILD_SA and the BA under it; a failure with no BU after it has no figure."""
    ev = [{"ev": "bu", "t": 9.0}, {"ev": "ba", "status": 0, "t": 9.001},
          {"ev": "bu", "t": 10.5}, {"ev": "ike", "state": "recheck", "t": 10.65}, {"ev": "bu", "t": 10.65},
          {"ev": "ike", "state": "child_up", "t": 10.675}, {"ev": "bu", "t": 10.675},
          {"ev": "ba", "status": 0, "t": 10.676}]
    f = [{"t_fail": 10.0}, {"t_fail": 11.0}]
    failover._rekeys(f, ev)
    assert f[0]["ipsec_recheck"] and f[0]["ipsec_rekeyed_after_ms"] == 675.0
    assert f[0]["ipsec_registered_after_ms"] == 676.0 and f[0]["ipsec_first_bu_to_ba_ms"] == 176.0
    assert f[0]["ipsec_bu_after"] and not f[1]["ipsec_bu_after"] and f[1]["ipsec_first_bu_to_ba_ms"] is None
