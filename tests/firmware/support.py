"""Helpers that work the same on CPython and MicroPython (no pytest on the device side)."""
import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"


def raises(exc_type, fn, *args, **kwargs):
    """Call fn and return the exception of exc_type it raised; fail if it raised nothing."""
    try:
        fn(*args, **kwargs)
    except exc_type as exc:
        return exc
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn), exc_type.__name__))


def unhex(s):
    """bytes from hex text with any whitespace in it."""
    return bytes.fromhex("".join(s.split()))


class Rand:
    """Deterministic stand-in for os.urandom: returns the given bytes in turn (then zeros)."""

    def __init__(self, data=b""):
        self.data = bytearray(data)

    def __call__(self, n):
        out = bytes(self.data[:n]) + bytes(max(0, n - len(self.data)))
        self.data = self.data[n:]
        return out


class BUL:
    """roam6.core.bul's states and limits. There they are private consts (folded into the code by
    mpy-cross, so no names on a board's heap); the tests name them here. Should bul change one, the
    state and timing checks of test_bul.py fail."""
    DETACHED, REGISTERING, BOUND, REFRESHING, DEREGISTERING, HOME, REVOKED = range(7)
    MAX_BINDACK_MS = 32000    # MAX_BINDACK_TIMEOUT: the retry interval after a hard rejection
    RATE_MS = 1000            # MAX_UPDATE_RATE: at most 3 BUs in any RATE_MS
    DEREG_TRIES = 7           # lifetime-0 BUs before giving up
    MAX_RESYNCS = 3           # 135/144 answered at once per attempt
    SEQ_BLOCK = 16            # sequence numbers reserved per state-file write
    NTP_UNIX_DELTA = 2208988800


class BU:
    """A BU request of roam6.core.bul (a plain tuple there, no class on the board's heap) with
    its fields named for the tests."""

    def __init__(self, req):
        self.seq, self.lifetime_units, self.coa, self.timestamp, self.dereg = req


def fresh_state_file(name):
    """A state-file path in /tmp for a node under test, with no file (nor its .tmp) there yet."""
    import os
    path = "/tmp/%s-%d.state" % (name, os.getpid() if hasattr(os, "getpid") else 0)
    for p in (path, path + ".tmp"):
        try:
            os.remove(p)
        except OSError:
            pass
    return path
