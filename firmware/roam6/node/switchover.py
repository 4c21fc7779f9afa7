"""Make before break when the uplink switches to another transport (e.g. udp4 -> udp6 on a
dual-stack network, the old CoA still on): loaded on the first switch, so a node that never
switches carries none of it (roam6 bench footprint).

The HA sends to the old CoA until it has the new BU, and drops data from a CoA it has not bound.
So the old transport is kept (`Uplink.old`: [transport, its reading tasks, until ms, carries
data]): still read, and carrying the data until the new BU has left; then the data follows the
BU. It is closed on the BA (registered or deregistered), at the next open, or at the first
registration event `_KEEP_MS` or more after the switch (no BA yet: a BU retransmission; a lost
link, where nothing comes on it anyway)."""
from roam6.compat import const

_KEEP_MS = const(2000)


def keep(up, tr):
    """Uplink.open: `tr` (its socket just opened) becomes active; keep the current one if it is
    another transport, and end what an earlier switch kept."""
    o = up.old
    if o is not None:
        up.old = None
        for t in o[1]:
            t.cancel()
        if o[0] is not tr and o[0] is not up.active:
            o[0].close()           # (tr's socket was just opened again: not that one)
    if up.active is not None and up.active is not tr:
        up.old = [up.active, up.tasks, up.node.now() + _KEEP_MS, True]
    else:
        for t in up.tasks:
            t.cancel()


def step(up, kind, now):
    """The driver's flush: a registration event of kind `kind` at `now`."""
    o = up.old
    if kind == "bu":
        o[3] = False               # the BU left on the new transport: the data follows it
    if kind == "registered" or kind == "deregistered" or now >= o[2]:
        up.old = None
        for t in o[1]:
            t.cancel()
        if o[0] is not up.active:
            o[0].close()
