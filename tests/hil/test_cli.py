"""`roam6 hil up|status|down|report` through the real CLI, and its user-mistake messages."""
import subprocess
import sys

from roam6_hil.netns import list_namespaces

ROAM6 = [sys.executable, "-m", "roam6_host"]


def roam6(*args, timeout=60):
    return subprocess.run(ROAM6 + list(args), capture_output=True, text=True, timeout=timeout)


def test_up_status_down(prefix):
    try:
        r = roam6("hil", "up", "--prefix", prefix)
        assert r.returncode == 0, r.stderr
        assert len([n for n in list_namespaces() if n.startswith(prefix)]) == 8
        r = roam6("hil", "status", "--prefix", prefix)
        assert r.returncode == 0 and "radvd" in r.stdout and "kea-dhcp6" in r.stdout and "dnsmasq" in r.stdout
        # the bench outlived the `up` command: the board (on apC) reaches the CN
        r = subprocess.run(["ip", "netns", "exec", prefix + "board", "busybox", "ping", "-c1", "-W2", "2001:db8:f3::2"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0
        # a second `up` replaces the first (leftovers found by prefix)
        assert roam6("hil", "up", "--prefix", prefix, "--no-daemons").returncode == 0
    finally:
        r = roam6("hil", "down", "--prefix", prefix)
    assert r.returncode == 0 and "removed 8 namespaces" in r.stdout
    assert not [n for n in list_namespaces() if n.startswith(prefix)]
    r = roam6("hil", "status", "--prefix", prefix)
    assert r.returncode == 1 and "no bench" in r.stdout


def test_user_mistakes_get_clear_messages(tmp_path):
    r = roam6("hil", "down", "--prefix", "Bad Prefix")
    assert r.returncode == 2 and "bad bench prefix" in r.stderr and "Traceback" not in r.stderr
    r = roam6("hil", "report", str(tmp_path))
    assert r.returncode == 2 and "no report.json" in r.stderr
    (tmp_path / "report.json").write_text("{not json")
    r = roam6("hil", "report", str(tmp_path))
    assert r.returncode == 2 and "not valid JSON" in r.stderr
    r = roam6("hil", "run", "roam", "--roams", "0")
    assert r.returncode == 2 and "--roams" in r.stderr and "Traceback" not in r.stderr
    r = roam6("hil", "run", "roam", "--loss", "150")
    assert r.returncode == 2 and "--loss" in r.stderr


def test_bench_roam_prints_the_figures_as_json(prefix, tmp_path):
    import json
    r = roam6("bench", "roam", "--roams", "1", "--profile", "esp32", "--prefix", prefix,
              "--report", str(tmp_path / "rep"), timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["benchmark"] == "roam" and d["ok"] and d["roams"] == 1 and d["transports"] == ["udp4"]
    assert d["interruption_down_ms"]["p50"] > 0 and d["bu_ba_ms"]["p50"] > 0
    assert (tmp_path / "rep" / "report.json").exists()
