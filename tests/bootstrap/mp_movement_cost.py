# Runs ON MicroPython (64 KB heap): what one link event costs the MN — netlink parse in the unix
# adapter plus the movement decision — averaged over many roams. One JSON line out.
import gc
import json
import struct
import time

import link
from roam6.core.movement import Movement

lk = link.Link("lo")
lk.start()
idx = lk.ifindex


def newaddr(t, fam, addr, plen):
    attrs = struct.pack("HH", 4 + len(addr), 1) + addr + struct.pack("HHI", 8, 8, 0x80)
    body = struct.pack("BBBBI", fam, plen, 0x80, 0, idx) + attrs
    return struct.pack("IHHII", 16 + len(body), t, 0, 0, 0) + body


msgs = []
for i in range(2):
    a6 = b"\x20\x01\x0d\xb8\x00\xa1" + bytes(9) + bytes([0x50 + i])
    msgs.append(newaddr(20, 10, a6, 64))
    msgs.append(newaddr(21, 10, a6, 64))
buf = lk._buf
mv = Movement(["udp6", "udp4"])
mv.feed(("link", True), 0)
N = 500
decisions = 0
gc.collect()
free0 = gc.mem_free()
t0 = time.ticks_us()
for r in range(N):
    for m in msgs:
        buf[:len(m)] = m
        evs = []
        lk._parse(len(m), evs)
        for e in evs:
            if mv.feed(e, r):
                decisions += 1
dt = time.ticks_diff(time.ticks_us(), t0)
n_ev = N * len(msgs)
print(json.dumps({"benchmark": "link_event_cost", "events": n_ev, "decisions": decisions,
                  "us_per_event": round(dt / n_ev, 2), "heap_free_before": free0}))
