"""Namespaces and MicroPython processes for the bootstrap/link tests (root only; all torn down)."""
import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from nshelp import TestNamespaces

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


class Lines:
    """JSON lines of a process's stdout, read by a thread, taken with a bounded wait."""

    def __init__(self, proc):
        self.proc = proc
        self.q = queue.Queue()
        self.log = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.append(line)
            try:
                self.q.put(json.loads(line))
            except ValueError:
                pass
        self.q.put(None)

    def next(self, timeout=5.0):
        try:
            item = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no output within %.1f s; so far:\n%s" % (timeout, "".join(self.log)))
        if item is None:
            raise AssertionError("process ended; output:\n%s" % "".join(self.log))
        return item

    def send(self, text):
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def until(self, pred, timeout=5.0):
        end = time.monotonic() + timeout
        seen = []
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("not seen within %.1f s; got %r" % (timeout, seen))
            item = self.next(left)
            seen.append(item)
            if pred(item):
                return item, seen


_MPY = {}


def mpy_dir():
    """firmware/roam6 and boards/unix/link.py compiled to .mpy once per session, as deployed on a
    board: compiling the sources on the device does not fit a 64 KB heap."""
    if "dir" not in _MPY:
        import tempfile
        from roam6_host.mpy import compile_file
        out = tempfile.mkdtemp(prefix="r6mpy-")
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
