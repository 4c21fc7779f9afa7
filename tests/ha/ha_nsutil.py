"""Network namespaces for the HA's own tests: create, address, open sockets inside, tear down.

Sockets are opened inside a namespace by switching this thread into it (setns) for the moment of
`socket()`: a socket stays in the namespace it was created in, so the test process itself plays
MN, CN and home-link host with ordinary blocking sockets.
"""
import contextlib
import ctypes
import os
import secrets
import socket
import subprocess

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def sh(*cmd, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and p.returncode:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), p.stderr.strip()))
    return p


class Namespaces:
    def __init__(self):
        self.prefix = "r6t%s-" % secrets.token_hex(2)
        self.made = []

    def add(self, short):
        name = self.prefix + short
        sh("ip", "netns", "add", name)
        self.made.append(name)
        self.ip(name, "link set lo up")
        return name

    def ip(self, ns, args):
        return sh("ip", "-n", ns, *args.split())

    def sysctl(self, ns, key, value):
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "%s=%s" % (key, value))

    def veth(self, ns_a, if_a, ns_b, if_b):
        sh("ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
        self.ip(ns_a, "link set %s up" % if_a)
        self.ip(ns_b, "link set %s up" % if_b)

    @contextlib.contextmanager
    def inside(self, ns):
        """Run the body with this thread in namespace ns (for creating sockets there)."""
        here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        there = os.open("/run/netns/" + ns, os.O_RDONLY)
        try:
            if _libc.setns(there, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns %s" % ns)
            try:
                yield
            finally:
                if _libc.setns(here, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(here)
            os.close(there)

    def socket(self, ns, family, kind, proto=0, bind=None, timeout=2.0):
        with self.inside(ns):
            s = socket.socket(family, kind, proto)
        if bind is not None:
            s.bind(bind)
        s.settimeout(timeout)
        return s

    def teardown(self):
        for name in reversed(self.made):
            sh("ip", "netns", "pids", name, check=False)
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", name, check=False)
        self.made = []
