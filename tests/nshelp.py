"""Network namespaces for tests that build their own small topology (tests/ha, tests/bootstrap):
the bench's namespace API (roam6_hil.netns.Namespaces, CONTRACTS §8.1) with a unique test prefix
`r6t<4 hex>-`, plus sockets opened inside a namespace (roam6_host.nssock), `sh` for commands, and
`Lines` for the JSON lines a process started there writes, `wait_line` for a plain process's.

Import it by this name (`from nshelp import TestNamespaces`): tests/ is on sys.path through
tests/conftest.py, and no other test folder has a module called nshelp.

Methods take the full namespace name that `add()` returns (what `ip netns exec` wants) as well as
the short one. `teardown()` stops the processes started with `popen()`, kills every other process
left in the namespaces, and deletes them.
"""
import json
import queue
import secrets
import select
import subprocess
import threading
import time

from roam6_hil import netns

from roam6_host import nssock


def sh(*cmd, check=True, timeout=30):
    """Run a command (bounded); with check, a failure raises RuntimeError carrying its stderr."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), p.stderr.strip()))
    return p


class TestNamespaces(netns.Namespaces):
    __test__ = False     # not a pytest test class

    def __init__(self):
        super().__init__("r6t%s-" % secrets.token_hex(2))

    def full(self, name):
        return name if name.startswith(self.prefix) else self.prefix + name

    def add(self, short):
        super().add(short)
        return self.full(short)

    def veth(self, ns_a, if_a, ns_b, if_b):
        """A veth pair, if_a in ns_a and if_b in ns_b, both up."""
        self._run(["ip", "link", "add", if_a, "netns", self.full(ns_a), "type", "veth",
                   "peer", "name", if_b, "netns", self.full(ns_b)], True, 10)
        self.ip(ns_a, "link", "set", if_a, "up")
        self.ip(ns_b, "link", "set", if_b, "up")

    def inside(self, ns):
        return nssock.inside(self.full(ns))

    def socket(self, ns, family, kind, proto=0, bind=None, timeout=2.0):
        return nssock.socket_in(self.full(ns), family, kind, proto, bind=bind, timeout=timeout)


class Lines:
    """JSON lines of a process's stdout, read by a thread, taken with a bounded wait."""

    def __init__(self, proc):
        self.proc = proc
        self.q = queue.Queue()
        self.log = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

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

    def wait_closed(self, timeout=5.0):
        """Wait until every line the process wrote is in `log` (its stdout has ended)."""
        self.reader.join(timeout)
        if self.reader.is_alive():
            raise AssertionError("stdout still open after %.1f s; so far:\n%s" % (timeout, "".join(self.log)))

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


def wait_line(proc, want, timeout, seen):
    """Read proc's stdout (binary) into `seen`, a line at a time, until a line read now contains
    `want` -> True; False when the output ends or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _w, _x = select.select([proc.stdout], [], [], 0.2)
        if r:
            line = proc.stdout.readline()
            if not line:
                return False
            seen.append(line.decode(errors="replace").rstrip())
            if want in seen[-1]:
                return True
    return False
