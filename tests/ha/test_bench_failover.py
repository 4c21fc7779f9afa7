"""`roam6 bench failover` end to end, one failure of each kind (the figures: README, Performance;
the goal is checked by the bench's own numbers, here only that they exist and no binding is lost)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (make test runs as root)")


def test_bench_failover_two_failures_lose_no_binding():
    p = subprocess.run([sys.executable, "-m", "roam6_host", "bench", "failover", "--failures", "2", "--bindings", "3",
                        "--settle", "0.3", "--prefix", "r6tf%s-" % os.urandom(2).hex()],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout)
    shutil.rmtree(r["logs"], ignore_errors=True)          # the bench keeps its logs there
    assert [f["kind"] for f in r["failures"]] == ["crash", "host"]
    assert r["bindings"] == 4 and r["bindings_lost_total"] == 0
    for f in r["failures"]:
        assert f["bindings_after"] == 4 and f["rejoined_synced_bindings"] == 4
        assert f["interruption_down_ms"] is not None and f["interruption_up_ms"] is not None
        assert f["interruption_down_ms"] < 5000          # a takeover, not a re-registration
    assert r["reregistrations"] == 0


def test_keepalived_missing_names_the_debian_package(monkeypatch):
    from roam6_host.errors import UserError
    from roam6_host.ha import vrrp
    monkeypatch.setattr(vrrp.shutil, "which", lambda name: None)
    monkeypatch.setattr(vrrp.os, "access", lambda path, mode: False)
    with pytest.raises(UserError) as e:
        vrrp.keepalived_binary()
    assert "keepalived is not installed" in str(e.value) and "apt-get install keepalived" in e.value.hint
