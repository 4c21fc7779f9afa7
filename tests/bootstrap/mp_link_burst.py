# Runs ON MicroPython: start the adapter, stop reading while the test makes a burst of changes
# (more than one read buffer holds), then read and print the state the events add up to.
import sys
import gc
import json
from binascii import hexlify

import link

lk = link.Link(sys.argv[1])
# the harness's table for up to 128 addresses is made now, while the 64K heap is whole: a dict that
# grows later needs one contiguous block the fragmented heap may not have (MemoryError in the
# harness, twice in many runs, never in the adapter); deleted slots are reused, the table stays
state = {}
for _i in range(128):
    state[_i] = None
for _i in range(128):
    del state[_i]
up = [None]


def apply(evs):
    # the harness's own bookkeeping stays lean (raw address keys, a collection per batch): at
    # 64K its dict growing in a fragmented heap must not be what fails (seen once: MemoryError here)
    for e in evs:
        if e[0] == "addr":
            if e[4]:
                state[bytes(e[2])] = e[3]
            else:
                state.pop(bytes(e[2]), None)
        elif e[0] == "link":
            up[0] = e[1]
    gc.collect()


apply(lk.start())
print(json.dumps({"ready": True}))
sys.stdin.readline()  # the test made its changes: now read what piled up
reads = 0
while True:  # drain: read() hands out one buffer's worth at a time
    evs = lk.read()
    if not evs:
        break
    reads += 1
    apply(evs)
gc.collect()
print(json.dumps({"addrs": sorted(hexlify(k).decode() for k in state), "up": up[0], "resyncs": lk.resyncs,
                  "reads": reads, "mem_free": gc.mem_free()}))
