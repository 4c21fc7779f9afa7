# Runs ON MicroPython in the board namespace: the unix link adapter gives the MAC, IPv6 presence
# and DNS servers, then the bootstrap sequencer runs with real sockets. One JSON line out.
import sys
import json
import gc
import time
import asyncio
from binascii import hexlify

import link
from roam6.node.boot import run_bootstrap

cfg = json.loads(sys.argv[1])
opts = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
lk = link.Link(opts.get("ifname", "wlan0"))
from roam6.bootstrap.sequence import link_has_ip6
have6 = link_has_ip6(lk.start())
servers = lk.dns_servers()
lk.close()
gc.collect()
free0 = gc.mem_free()
t0 = time.ticks_us()
b = asyncio.run(run_bootstrap(cfg, lk.mac, have6, servers, lk.ifname, dhcp_delay_ms=0,
                              budget_ms=opts.get("budget_ms", 4000)))
ms = time.ticks_diff(time.ticks_us(), t0) / 1000
out = {"ms": ms, "have_ip6": have6, "dns_servers": [hexlify(s).decode() for s in servers],
       "notes": b.notes, "error": b.error, "heap_used": free0 - gc.mem_free()}
r = b.result
if r:
    out["result"] = {"method": r["method"], "ha": [hexlify(a).decode() for a in r["ha"]],
                     "ha_ipv4": [hexlify(a).decode() for a in r["ha_ipv4"]], "ha_fqdn": r["ha_fqdn"],
                     "refresh_s": r["refresh_s"], "container": r.get("container"),
                     "home_prefix": ([hexlify(r["home_prefix"][0]).decode(), r["home_prefix"][1]]
                                     if r["home_prefix"] else None)}
print(json.dumps(out))
