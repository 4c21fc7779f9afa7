"""Network namespaces for the HA's own tests: create, address, open sockets inside, tear down.

Sockets are opened inside a namespace (roam6_host.nssock: setns for the moment of `socket()`), so
the test process itself plays MN, CN and home-link host with ordinary blocking sockets.
"""
import os
import secrets
import subprocess

from roam6_host import nssock


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

    inside = staticmethod(nssock.inside)
    socket = staticmethod(nssock.socket_in)

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
