# Runs ON MicroPython in the test's namespace: the unix link adapter feeding movement detection,
# awaited with asyncio; one JSON line per event and per decision, with CLOCK_REALTIME in ns.
import sys
import time
import json
import asyncio
from binascii import hexlify

import link
from roam6.core.movement import Movement


def show(kind, ev):
    out = [hexlify(x).decode() if isinstance(x, bytes) else x for x in ev]
    print(json.dumps({"t_ns": time.time_ns(), kind: out}))


async def main(lk, mv, seconds):
    end = time.ticks_add(time.ticks_ms(), seconds * 1000)
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        try:
            evs = await asyncio.wait_for_ms(lk.next_events(), 500)
        except asyncio.TimeoutError:
            continue
        t = time.time_ns()
        for ev in evs:
            show("ev", ev)
            d = mv.feed(ev, time.ticks_ms())
            if d:
                show("decision", d)
        print(json.dumps({"t_ns": t, "batch": len(evs)}))


lk = link.Link(sys.argv[1])
mv = Movement(["udp6", "udp4"], (b"\x20\x01\x0d\xb8\x00\xaa" + bytes(10), 64))  # the bench's home prefix
for ev in lk.start():
    show("ev", ev)
    d = mv.feed(ev, time.ticks_ms())
    if d:
        show("decision", d)
import gc
gc.collect()
print(json.dumps({"ready": lk.ifindex, "mac": hexlify(lk.mac).decode(), "mem_free": gc.mem_free()}))
asyncio.run(main(lk, mv, int(sys.argv[2])))
