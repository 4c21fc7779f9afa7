"""roam6: a Mobile IPv6 mobile node for MicroPython boards (and CPython, which reuses the codec).

This package imports nothing outside itself and runs unchanged on MicroPython 1.23+ and CPython 3.11.
"""
__version__ = "0.1.0"
