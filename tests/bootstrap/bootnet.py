"""Namespaces and MicroPython processes for the bootstrap/link tests (root only; all torn down)."""
import os
import subprocess
import sys

import pytest

from nshelp import Lines, TestNamespaces

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.fail("these tests build network namespaces: run them as root (make test does)")
    n = TestNamespaces()
    try:
        yield n
    finally:
        n.teardown()


_MPY = {}


def mpy_dir():
    """firmware/roam6 and boards/unix/link.py compiled to .mpy once per session, as deployed on a
    board: compiling the sources on the device does not fit a 64 KB heap."""
    if "dir" not in _MPY:
        import atexit
        import shutil
        import tempfile
        from roam6_host.mpy import compile_file
        out = tempfile.mkdtemp(prefix="r6mpy-")
        atexit.register(shutil.rmtree, out, True)    # one per test session, gone when it ends
        srcs = [(os.path.join(ROOT, "boards", "unix", "link.py"), "link.py")]
        for d, _sub, files in os.walk(os.path.join(ROOT, "firmware", "roam6")):
            for f in files:
                if f.endswith(".py"):
                    full = os.path.join(d, f)
                    srcs.append((full, os.path.relpath(full, os.path.join(ROOT, "firmware"))))
        for full, rel in srcs:
            compile_file(full, os.path.join(out, rel[:-3] + ".mpy"), "x64", source_name=rel)
        _MPY["dir"] = out
    return _MPY["dir"]


def micropython(netns, ns, script, *args, heap="64K", stdin=False):
    env = dict(os.environ, MICROPYPATH=":".join([mpy_dir(), HERE, ".frozen"]))
    p = netns.popen(ns, [MICROPYTHON, "-X", "heapsize=" + heap, os.path.join(HERE, script)] + [str(a) for a in args],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                    stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)
    return Lines(p)
