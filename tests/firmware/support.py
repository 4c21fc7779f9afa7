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
