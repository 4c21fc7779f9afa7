"""`roam6 hil run soak` run tiny on a live bench: 2 MicroPython MNs with the real HA, roaming at
random between apA/apB/apC for a few seconds under CN probes. The long run (100 MNs, 10 minutes)
is the command's; here: every MN registers, roams and stays reachable, no probe is lost outside a
roam's window, the HA's RSS and the MNs' heaps are sampled, and bad options get a clear error."""
import argparse
import json

import pytest

from roam6_host.errors import UserError
from roam6_hil.scenarios import soak


def _args(*argv):
    p = argparse.ArgumentParser()
    soak.add_arguments(p)
    return p.parse_args(list(argv))


def test_soak_tiny(tmp_path, prefix, capsys):
    rc = soak.run(_args("--mns", "2", "--minutes", "0.04", "--gap", "0.2", "--probe-ms", "100", "--seed", "7",
                        "--prefix", prefix, "--report", str(tmp_path / "rep")))
    r = json.load(open(tmp_path / "rep" / "soak.json"))
    out = capsys.readouterr()
    assert r == json.loads(out.out) and "lost outside windows" in out.err
    assert r["mns_alive"] == 2 and r["roams"] >= 2 and r["roams_without_ba_in_10s"] == [], r
    assert r["probes_sent"] > 20 and r["probes_echoed"] > 0.5 * r["probes_sent"], r
    assert r["lost_outside_windows"] == 0, r["lost_outside_first"]
    assert r["mns_unreachable_at_the_end"] == [], r
    assert len(r["ha_rss_kb_over_time"]) >= 2 and all(kb > 0 for _t, kb in r["ha_rss_kb_over_time"])
    assert r["mn_heap_alloc_bytes_first_median"] > 0 and len(r["mn_heap_per_mn"]) == 2
    assert rc == 0


def test_soak_refuses_bad_options():
    for argv in (["--mns", "0"], ["--mns", "500"], ["--minutes", "0"], ["--probe-ms", "1"]):
        with pytest.raises(UserError):
            soak.run(_args(*argv))
