"""CPython's stand-ins for what MicroPython has built in (roam6.compat, roam6.node.transport).

A module of its own, imported only on CPython: every name in a module a board loads is a qstr on
its heap for good (docs/ARCHITECTURE.md "Heap"), and boards never load this one (board.json
excludes it)."""
import asyncio
import time as _time


def const(x):
    return x


def ticks_ms():
    return int(_time.monotonic() * 1000)


def ticks_us():
    return int(_time.monotonic() * 1000000)


def ticks_diff(a, b):
    return a - b


async def readinto(sock, buf):
    """Await one datagram into buf; its length (roam6.node.transport.readinto on CPython)."""
    return await asyncio.get_running_loop().sock_recv_into(sock, buf)


async def sleep_ms(ms):
    await asyncio.sleep(ms / 1000)
