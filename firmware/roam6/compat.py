"""The few things that differ between MicroPython and CPython, in one place.

Import `const`, `IS_MICROPYTHON`, `ticks_ms` etc. from here instead of from `micropython`/`time`.
"""
import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"

if IS_MICROPYTHON:
    from micropython import const  # noqa: F401  (folded at compile time by mpy-cross)
    # the built-ins themselves: no wrapper functions on a small heap
    from time import ticks_diff, ticks_ms, ticks_us  # noqa: F401

else:   # (in a module of their own: its names are no qstrs on a board's heap)
    from roam6.compat_cpython import const, ticks_diff, ticks_ms, ticks_us  # noqa: F401
