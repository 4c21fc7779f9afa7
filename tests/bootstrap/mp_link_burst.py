# Runs ON MicroPython: start the adapter, stop reading while the test makes a burst of changes
# (more than one read buffer holds), then read and print the state the events add up to.
import sys
import time
import json
from binascii import hexlify

import link

lk = link.Link(sys.argv[1])
state = {}
up = [None]


def apply(evs):
    for e in evs:
        if e[0] == "addr":
            if e[4]:
                state[hexlify(e[2]).decode()] = e[3]
            else:
                state.pop(hexlify(e[2]).decode(), None)
        elif e[0] == "link":
            up[0] = e[1]


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
import gc
gc.collect()
print(json.dumps({"addrs": sorted(state), "up": up[0], "resyncs": lk.resyncs, "reads": reads, "mem_free": gc.mem_free()}))
