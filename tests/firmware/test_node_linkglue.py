"""The link loop (roam6.node.linkglue): decisions applied to the node, and a link adapter that runs
out of heap mid-burst does not end movement detection (the whole state is read again)."""
try:
    import asyncio
except ImportError:                     # MicroPython ports name it uasyncio
    import uasyncio as asyncio
from support import unhex
from roam6.core.movement import Movement
from roam6.node.linkglue import link_loop

B4 = unhex("c0000232")   # 192.0.2.50 (apB)
C4 = unhex("c6336432")   # 198.51.100.50 (apC)


def addr(a, added=True):
    return ("addr", 4, a, 24, added, 0)


class Stub:
    def __init__(self, **kw):
        for k in kw:
            setattr(self, k, kw[k])


class Node:
    def __init__(self):
        self.moves, self.logs, self.t = [], [], 0
        self.uplink = Stub(active=None)           # what the link loop reads of the node
        self.reg = Stub(bound=False, coa=None)

    def now(self):
        self.t += 1
        return self.t

    def moved(self, coa, transport):
        self.moves.append((bytes(coa), transport))

    def at_home(self):
        self.moves.append(("home",))

    def detached(self):
        self.moves.append(("detached",))

    def log(self, ev, **fields):
        self.logs.append((ev, fields))


class Link:
    """Adapter stand-in: the second read fails with MemoryError; start() gives the state again."""

    def __init__(self):
        self.state = [("link", True), addr(B4)]
        self.reads = 0
        self.starts = 0

    def start(self):
        self.starts += 1
        return list(self.state)

    async def next_events(self):
        self.reads += 1
        if self.reads == 1:
            self.state = [("link", True), addr(C4)]
            return [addr(B4, False), addr(C4)]
        if self.reads == 2:
            self.state = [("link", True), addr(B4)]
            raise MemoryError("memory allocation failed")   # the burst (C4 gone, B4 back) is lost
        await asyncio.sleep(10)
        return []


def test_a_memory_error_in_the_adapter_reads_the_state_again():
    node, link = Node(), Link()

    async def main():
        task = asyncio.create_task(link_loop(node, link, Movement(("udp4",))))
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(main())
    assert link.starts == 2 and link.reads == 3
    assert node.moves == [(B4, "udp4"), ("detached",), (C4, "udp4"), (B4, "udp4")]   # back on apB after the error
    assert [ev for ev, _ in node.logs] == ["error"] and "out of memory" in node.logs[0][1]["reason"]


V6 = unhex("20010db8c1000000000000fffe00b001")   # 2001:db8:c1::ff:fe00:b001 (apC)


class BoundNode(Node):
    """A node whose moves register at once (bound), on the real ms clock."""

    def now(self):
        from roam6.compat import ticks_ms
        return ticks_ms()

    def moved(self, coa, transport):
        Node.moved(self, coa, transport)
        self.uplink.active = Stub(name=transport)
        self.reg.coa, self.reg.bound = bytes(coa), True


class DualStack:
    """apC: the DHCPv4 lease first, the SLAAC address a moment later, then `then` (if any)."""

    def __init__(self, then):
        self.then = list(then)

    def start(self):
        return [("link", True), addr(C4)]

    async def next_events(self):
        await asyncio.sleep(0.01)
        if self.then:
            return [self.then.pop(0)]
        await asyncio.sleep(10)
        return []


def _run(node, link, ms, early=None):
    """The moves after `ms` (and after `early` ms, if given: both)."""
    async def main():
        task = asyncio.create_task(link_loop(node, link, Movement(("udp6", "udp4"))))
        first = None
        if early is not None:
            await asyncio.sleep(early / 1000)
            first = list(node.moves)
        await asyncio.sleep((ms - (early or 0)) / 1000)
        n = list(node.moves)
        task.cancel()
        return n if early is None else (first, n)
    return asyncio.run(main())


def test_a_preference_change_waits_the_rate_window():
    # the IPv6 address after the IPv4 one the node registered: no second BU at once (MAX_UPDATE_RATE)
    node = BoundNode()
    seen, then = _run(node, DualStack([("addr", 6, V6, 64, True, 0)]), 1300, 300)
    assert seen == [(C4, "udp4")], seen
    assert then == [(C4, "udp4"), (V6, "udp6")], then         # ... but a second later


def test_a_waiting_preference_change_goes_at_once_when_the_coa_goes_or_is_dropped():
    node = BoundNode()                            # the IPv4 address goes: udp6 now, not in a second
    seen = _run(node, DualStack([("addr", 6, V6, 64, True, 0), addr(C4, False)]), 250)
    assert seen == [(C4, "udp4"), (V6, "udp6")], seen
    node = BoundNode()                            # the link goes: the detach, and nothing after it
    seen = _run(node, DualStack([("addr", 6, V6, 64, True, 0), ("link", False)]), 150)
    assert seen == [(C4, "udp4"), ("detached",)], seen
    node = BoundNode()                            # not bound (registering): no waiting
    node.moved = lambda coa, t: node.moves.append((bytes(coa), t))
    seen = _run(node, DualStack([("addr", 6, V6, 64, True, 0)]), 100)
    assert seen == [(C4, "udp4"), (V6, "udp6")], seen
