"""Run the unix board's link adapter with its own addressing (boards/unix/dna.py) for one
association, under MicroPython (or CPython): `micropython dna_run.py MEMORY_FILE [FAMILIES]`
(FAMILIES: "4" (default), "6", or "64" for a board preferring IPv6 with both).
Prints one JSON line: the last global address of FAMILY (4 by default) the kernel announced on
wlan0 once the adapter's work was done (hex), ms from start to it, the adapter's counters and the
memory afterwards, and `order`: the families in the order their first global address was announced.
Used by test_dna.py."""
import json
import sys

import asyncio
from binascii import hexlify

from link import Link
from roam6.compat import ticks_diff, ticks_ms


async def _events(link, ms):
    """What next_events() gives, polled (a wait_for around next_events could drop what it read)."""
    if hasattr(asyncio, "sleep_ms"):
        await asyncio.sleep_ms(ms)
    else:
        await asyncio.sleep(ms / 1000)
    evs = []
    while True:
        got = link.read()
        if not got:
            break
        evs += got
    if evs:
        link.dna.events(evs)
    return evs


async def main(path, fams):
    fam = fams[0]
    order = []
    link = Link("wlan0")
    link.self_addressing(path, fams)
    said = []
    link.dna.log = lambda _ev, **kw: said.append([kw.get("family"), kw.get("how"), kw.get("ms")])
    t0 = ticks_ms()
    evs = link.start()
    got = None
    t_done = None
    while ticks_diff(ticks_ms(), t0) < 4000:
        for ev in evs:
            if ev[0] == "addr" and ev[2][0] != 0xFE and ev[4] and ev[1] not in order:
                order.append(ev[1])
            if ev[0] == "addr" and ev[1] == fam and ev[2][0] != 0xFE:
                got = (ev[2], ticks_diff(ticks_ms(), t0)) if ev[4] else None
        d = link.dna
        if t_done is None and (d._task is None or d._task.done()):
            t_done = ticks_ms()
        if t_done is not None and ticks_diff(ticks_ms(), t_done) > 200:
            break       # the adapter is done, and what it did has been announced by now
        evs = await _events(link, 5)
    d = link.dna
    print(json.dumps({"addr": hexlify(got[0]).decode() if got else None, "ms": got[1] if got else None,
                      "stats": d.stats, "dropped": d.mem.dropped, "order": order, "said": said,
                      "mem": [{"a": hexlify(e["a"]).decode(), "m": hexlify(e["m"]).decode(), "x": e["x"]}
                              for e in d.mem.entries]}))


asyncio.run(main(sys.argv[1], [int(c) for c in sys.argv[2]] if len(sys.argv) > 2 else [4]))
