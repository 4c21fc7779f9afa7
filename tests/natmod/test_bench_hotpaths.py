"""`roam6 bench hotpaths` runs end to end and prints the JSON it promises (figures are not
asserted: timing goals are for the benchmark to report, not for a test to gate)."""
import json
import os
import subprocess
import sys

OPS = {"inet_sum_1500B", "checksum6_1500B", "hmac_sha1_128B", "bu_auth_rfc4285", "kbm", "rr_authenticator",
       "udp4_assembly_64B", "udp4_assembly_1200B"}


def test_bench_hotpaths_prints_every_tier_and_goal(tmp_path):
    roam6 = os.path.join(os.path.dirname(sys.executable), "roam6")
    out = tmp_path / "hot.json"
    proc = subprocess.run([roam6, "bench", "hotpaths", "--rounds", "1", "--repeat", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == doc
    assert set(doc["us"]) == {"python", "viper", "native"}
    for tier, figures in doc["us"].items():
        assert OPS <= set(figures), (tier, sorted(figures))
        assert all(v > 0 for v in figures.values())
    assert doc["native_module"].endswith("x64/roam6_native.mpy")
    for name, goal in doc["goals"].items():
        assert "met" in goal
    assert len(doc["goals"]) == 5


def test_bench_rejects_bad_rounds():
    roam6 = os.path.join(os.path.dirname(sys.executable), "roam6")
    proc = subprocess.run([roam6, "bench", "hotpaths", "--rounds", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--rounds must be at least 1" in proc.stderr and "Traceback" not in proc.stderr
