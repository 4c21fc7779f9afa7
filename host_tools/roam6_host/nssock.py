"""Sockets in another network namespace, opened from this process.

A socket stays in the namespace it was created in, so switching this thread into a namespace
(setns) for the moment of `socket()` lets one process play several hosts with ordinary sockets:
`roam6 bench ha --live` plays MN and CN around the real HA this way, and the namespace tests do
the same (tests/nshelp.py). `ns` is a full namespace name, as `ip netns` knows it.
"""
import contextlib
import ctypes
import os
import socket

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def inside(ns):
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


def socket_in(ns, family, kind, proto=0, bind=None, timeout=2.0):
    """A socket created in namespace ns, bound to `bind` if given, with a timeout (blocking)."""
    with inside(ns):
        s = socket.socket(family, kind, proto)
    if bind is not None:
        s.bind(bind)
    s.settimeout(timeout)
    return s
