"""`roam6 bench ha` runs end to end and reports what it measured (the figures themselves are for
README, not asserted here)."""
import json
import os
import secrets
import subprocess
import sys

import pytest


def run_bench(*args):
    p = subprocess.run([sys.executable, "-m", "roam6_host", "bench", "ha", *args],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_sans_io_bench_counts_every_ba():
    d = run_bench("--mns", "300", "--rounds", "2", "--repeat", "2")
    assert d["repeats"] == 2 and len(d["bus_per_s_each_run"]) == 2
    assert d["bus"] == 600 and d["bas"] == 600 and d["ba_status"] == {"0": 600} and d["bindings"] == 300
    assert d["bus_per_s"] > 0 and d["us_per_bu"] > 0 and "meets_goal" in d


def test_replica_ack_bench_holds_every_ba_until_the_standby_acked():
    d = run_bench("--mns", "200", "--rounds", "2", "--repeat", "2", "--continuity", "--replica-ack")
    c = d["continuity"]
    assert d["bas"] == 400 and d["ba_status"] == {"0": 400}           # every BA left (after its ACK, or 50 ms)
    assert c["replica_ack"] is True and c["ba_hold_ms"]["n"] >= 1 and c["ba_hold_ms"]["p50"] > 0
    assert 0 <= c["ba_timeouts"] < 400 and c["ack_wait_ms"] == 50     # (a loaded machine may time some out)
    assert 0 < c["standby_lag_ms"]["n"] <= c["messages_to_standby"]     # every message the standby applied


@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root (make test runs as root)")
def test_live_bench_runs_the_real_ha_and_cleans_up():
    # its own prefix: other benches and tests (other checkouts too) may hold r6b... namespaces meanwhile
    prefix = "r6t%s-" % secrets.token_hex(3)
    d = run_bench("--mns", "50", "--rounds", "1", "--live", "--live-n", "50", "--prefix", prefix)
    assert d["live_n"] == 50 and d["live_prefix"] == prefix
    for k in ("live_bu_ba_us_median", "live_bu_ba_us_p99", "live_rtt_via_ha_us_median", "live_rtt_via_ha_us_p99"):
        assert d[k] > 0
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert prefix not in left
