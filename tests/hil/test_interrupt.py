"""Ctrl-C in the middle of a bench run (as `make demo` runs it): the bench is torn down even when
an impatient user presses Ctrl-C again during the teardown, and no traceback is printed."""
import os
import signal
import subprocess
import sys
import time

from roam6_hil.netns import list_namespaces


def _procs_mentioning(text):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_ctrl_c_twice_still_removes_the_bench(prefix, tmp_path):
    report = str(tmp_path / "rep")
    proc = subprocess.Popen([sys.executable, "-m", "roam6_host", "hil", "run", "roam", "--prefix", prefix,
                             "--roams", "200", "--addressing", "static", "--no-pcap", "--report", report],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        for line in proc.stdout:                       # wait until the board roams: everything is running
            if line.startswith("roam 1/") or time.monotonic() > deadline:
                break
        assert [n for n in list_namespaces() if n.startswith(prefix)], "the bench did not come up"
        for _ in range(3):                             # Ctrl-C, and again while the bench comes down
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.05)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "roam6: stopping: removing the bench" in err and "Traceback" not in err, err
    assert not [n for n in list_namespaces() if n.startswith(prefix)]
    assert not _procs_mentioning(report), "bench processes left running"


def test_ctrl_c_during_hil_up_leaves_nothing(prefix):
    proc = subprocess.Popen([sys.executable, "-m", "roam6_host", "hil", "up", "--prefix", prefix],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not [n for n in list_namespaces() if n.startswith(prefix)] and time.monotonic() < deadline:
            time.sleep(0.01)                           # the bench is being built: interrupt that
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert not [n for n in list_namespaces() if n.startswith(prefix)]
    assert not os.path.exists("/run/roam6-hil/%swork" % prefix)      # its configs and logs went too
    assert not os.path.exists("/run/roam6-hil/%sjson" % prefix)      # and no state says it is up
