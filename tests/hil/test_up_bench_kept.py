"""A bench the user keeps with `roam6 hil up` is not silently replaced by a run with its prefix."""
import subprocess
import sys

from roam6_hil.netns import list_namespaces

ROAM6 = [sys.executable, "-m", "roam6_host"]


def test_a_run_refuses_to_replace_a_hil_up_bench(prefix):
    try:
        r = subprocess.run(ROAM6 + ["hil", "up", "--prefix", prefix, "--no-daemons"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        for run in (["hil", "run", "roam", "--prefix", prefix], ["hil", "run", "register", "--prefix", prefix]):
            r = subprocess.run(ROAM6 + run, capture_output=True, text=True, timeout=60)
            assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
            assert "a bench from `roam6 hil up` is up with prefix %s" % prefix in r.stderr
            assert "roam6 hil down --prefix %s" % prefix in r.stderr
        assert len([n for n in list_namespaces() if n.startswith(prefix)]) == 8     # still there, untouched
    finally:
        subprocess.run(ROAM6 + ["hil", "down", "--prefix", prefix], capture_output=True, timeout=60)
