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


class Node:
    def __init__(self):
        self.moves, self.logs, self.t = [], [], 0

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
