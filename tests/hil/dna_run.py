"""Run the unix board's link adapter with its own addressing (boards/unix/dna.py) for one
association, under MicroPython (or CPython): `micropython dna_run.py MEMORY_FILE [FAMILIES]`.
Prints one JSON line: the IPv4 address the adapter put on wlan0, ms from start to the kernel's
announcement of it, the adapter's counters and the memory afterwards. Used by test_dna.py."""
import json
import sys

import asyncio
from binascii import hexlify

from link import Link
from roam6.compat import ticks_diff, ticks_ms


async def main(path, fams):
    link = Link("wlan0")
    link.self_addressing(path, fams)
    t0 = ticks_ms()
    evs = link.start()
    got = None
    while True:
        for ev in evs:
            if ev[0] == "addr" and ev[1] == 4 and ev[4]:
                got = (ev[2], ticks_diff(ticks_ms(), t0))
        d = link.dna
        done = d._task is None or d._task.done()
        if (got and done) or ticks_diff(ticks_ms(), t0) > 4000:
            break
        try:
            evs = await asyncio.wait_for_ms(link.next_events(), 20) if hasattr(asyncio, "wait_for_ms") else \
                await asyncio.wait_for(link.next_events(), 0.02)
        except asyncio.TimeoutError:
            evs = []
    d = link.dna
    print(json.dumps({"addr": ".".join(str(b) for b in got[0]) if got else None, "ms": got[1] if got else None,
                      "stats": d.stats, "dropped": d.mem.dropped,
                      "mem": [{"a": ".".join(str(b) for b in e["a"]), "m": hexlify(e["m"]).decode(), "x": e["x"]}
                              for e in d.mem.entries]}))


asyncio.run(main(sys.argv[1], [int(f) for f in (sys.argv[2] if len(sys.argv) > 2 else "4").split(",")]))
