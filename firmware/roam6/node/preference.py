"""A preference change waits: loaded by the link loop (linkglue.py) the first time movement
detection picks another transport while the care-of address of the binding in use (bound, not
in the middle of a registration) stays usable (a board that
prefers IPv6 on a dual-stack network it visits for the first time: its DHCPv4 lease comes first,
the SLAAC address 10-30 ms later).

Such a switch is no roam: the binding in use still carries everything. Sent at once it would be
a second BU a few ms after the first, and with roams under a second apart it used up RFC 6275's
MAX_UPDATE_RATE (3 BUs in any second, core/bul.py): the next roam's BU then waited ~200 ms.
So the switch is applied `_WAIT_MS` (the rate's window) after the decision, unless movement
decides anything else meanwhile (then that decision was applied and this one is dropped), and at
once when the address in use stops being usable (checked every `_POLL_MS`). When it is applied,
the uplink switches make before break (switchover.py): nothing is lost either way."""
import asyncio

from roam6.compat import const
from roam6.core.movement import usable

from .transport import sleep_ms

_WAIT_MS = const(1000)
_POLL_MS = const(20)


def later(node, mv, coa, transport):
    """Movement's decision ("moved", coa, transport) of `mv.since`, another transport than the
    one in use, the binding in use registered: True if it waits (the CoA in use is still usable:
    applied later); False: apply it now (a roam)."""
    old = node.reg.coa
    if not still(mv, old):
        return False
    asyncio.create_task(_later(node, mv, coa, transport, mv.since, old))
    return True


def still(mv, addr):
    """Is `addr` one of movement's usable addresses?"""
    a = mv._addrs.get(addr)
    return a is not None and usable(a[0], addr, a[1])


async def _later(node, mv, coa, transport, since, old):
    end = node.now() + _WAIT_MS
    while node.now() < end and still(mv, old):
        await sleep_ms(_POLL_MS)
        if mv.since != since:
            return
    if mv.since == since:
        node.moved(coa, transport)
