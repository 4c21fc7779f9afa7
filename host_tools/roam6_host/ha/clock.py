"""The HA's two clocks, read at the edge (the drivers) and handed to the sans-IO parts."""
import time


def now_ms():
    """The binding cache's `now`: monotonic milliseconds (expiry, rate limits, DAD)."""
    return time.monotonic_ns() // 1_000_000


def wall_ms():
    """The binding cache's `wall`: Unix milliseconds (RFC 4285 timestamps only)."""
    return time.time_ns() // 1_000_000
