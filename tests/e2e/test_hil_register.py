"""`roam6 hil run register`: the whole scenario through the CLI, report.json checked."""
import json
import os
import secrets
import subprocess
import sys

import pytest

from roam6_hil.netns import cleanup_prefix, list_namespaces


@pytest.mark.parametrize("transport", ["udp4"])
def test_hil_run_register_writes_a_passing_report(tmp_path, transport):
    if os.geteuid() != 0:
        pytest.skip("the bench needs root (network namespaces); `make test` runs as root")
    prefix = "r6t%s-" % secrets.token_hex(2)
    try:
        r = subprocess.run([sys.executable, "-m", "roam6_host", "hil", "run", "register", "--board", "unix",
                            "--transport", transport, "--prefix", prefix, "--report", str(tmp_path)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        rep = json.loads((tmp_path / "report.json").read_text())
        assert rep["family"] == "ipv6" and "ipv4_hoa" not in rep
        assert rep["transport"] == transport and rep["registered"] and rep["ok"]
        assert 0 < rep["bu_ba_ms"] < 1000
        assert rep["udp_down_sent"] == 20 and rep["udp_down_received"] >= 18
        assert rep["udp_up_received"] > 0 and rep["ping_ok"]
        assert rep["errors"] == []
    finally:
        cleanup_prefix(prefix)
        assert not [n for n in list_namespaces() if n.startswith(prefix)]


def test_hil_run_register_refuses_a_bad_prefix_up_front_without_traceback(tmp_path):
    """A bad prefix (a name `ip netns` refuses) is the user's mistake: said before any bench is
    built (exit status 2, what to use instead), no traceback, no report, nothing left behind."""
    if os.geteuid() != 0:
        pytest.skip("the bench needs root (network namespaces); `make test` runs as root")
    r = subprocess.run([sys.executable, "-m", "roam6_host", "hil", "run", "register", "--prefix", "r6t/bad-",
                        "--report", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    out = r.stdout + r.stderr
    assert "Traceback" not in out and "bad bench prefix 'r6t/bad-'" in out and "e.g. r6-" in out
    assert not (tmp_path / "report.json").exists()
    assert not [n for n in list_namespaces() if n.startswith("r6t/bad")]


def test_hil_run_register_family_ipv4(tmp_path):
    """--family ipv4: the MN gets an RFC 5555 IPv4 home address from the HA's pool; UDP both ways
    and ping from the IPv4-only correspondent (cn4)."""
    if os.geteuid() != 0:
        pytest.skip("the bench needs root (network namespaces); `make test` runs as root")
    prefix = "r6t%s-" % secrets.token_hex(2)
    try:
        r = subprocess.run([sys.executable, "-m", "roam6_host", "hil", "run", "register", "--board", "unix",
                            "--transport", "udp4", "--family", "ipv4", "--prefix", prefix, "--report", str(tmp_path)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        rep = json.loads((tmp_path / "report.json").read_text())
        assert rep["family"] == "ipv4" and rep["ok"] and rep["errors"] == []
        assert rep["ipv4_status"] == 0 and rep["ipv4_hoa"] == "198.18.50.100"
        assert rep["ipv4_udp_sent"] == 20 and rep["ipv4_udp_echoed"] >= 18 and rep["ipv4_udp_from"] == ["198.18.50.100"]
        assert rep["ipv4_ping_ok"]
        assert rep["ipv4_cn"] == "198.18.4.2"          # from the IPv4-only correspondent (cn4)
    finally:
        cleanup_prefix(prefix)
        assert not [n for n in list_namespaces() if n.startswith(prefix)]
