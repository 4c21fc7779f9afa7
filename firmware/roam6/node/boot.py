"""Finding the HA at boot (CONTRACTS.md §10.3) for a config whose `ha` / `home_prefix` say
"bootstrap": wait for the link's first usable address, run roam6.bootstrap's sequencer (DHCPv6
RFC 6610, DNS RFC 5026, static) and fill the config in. Run once before the node exists; the
bootstrap modules are dropped afterwards (they are ~20 KB of heap a small board needs back).
"""
import asyncio
import gc
import json
import sys
import time

from roam6.compat import ticks_diff, ticks_ms

from . import forget

WAIT_ADDR_MS = 10000


def _text(a):
    if a is None:
        return None
    from .transport import addr_text
    return addr_text(a)


def run(cfg, link, movement_cls, events):
    """Fill cfg from the network; returns None, or the reason it failed (for a fatal error).
    `events` (a list) receives every link event read meanwhile: the node's movement detector
    starts from them (the adapter's start() dumps the link state only once)."""
    if cfg.hoa is None:
        return "the home address itself cannot be bootstrapped yet: give \"hoa\" in the config"
    t0 = ticks_ms()
    events.extend(link.start())
    mv = movement_cls(cfg.transports, cfg.home_prefix)
    for ev in events:
        mv.feed(ev, 0)
    while mv.coa is None and ticks_diff(ticks_ms(), t0) < WAIT_ADDR_MS:
        time.sleep(0.02)
        for ev in link.read():
            events.append(ev)
            mv.feed(ev, 0)
    if mv.coa is None:
        return "no usable address on %s within %d s to look for the HA from" % (link.ifname, WAIT_ADDR_MS // 1000)
    from roam6.node.bootrun import run_bootstrap
    from roam6.bootstrap.sequence import link_has_ip6
    have_ip6 = link_has_ip6(events, cfg.transports)
    b = asyncio.run(run_bootstrap(cfg.raw, link.mac, have_ip6, link.dns_servers(), ifname=link.ifname))
    r = b.result
    err = None
    if r is None:
        err = "bootstrap found no home agent: %s" % (b.error,)
    else:
        if cfg.ha is None and r.get("ha"):
            cfg.ha = bytes(r["ha"][0])
        if cfg.ha_ipv4 is None and r.get("ha_ipv4"):
            cfg.ha_ipv4 = bytes(r["ha_ipv4"][0])
        if cfg.home_prefix is None and r.get("home_prefix"):
            cfg.home_prefix = (bytes(r["home_prefix"][0]), r["home_prefix"][1])
        print(json.dumps({"t_ms": ticks_ms(), "ev": "bootstrap", "method": r.get("method"),
                          "ha": _text(cfg.ha), "ha_ipv4": _text(cfg.ha_ipv4),
                          "ms": ticks_diff(ticks_ms(), t0)}))
        if cfg.ha is None:
            err = "bootstrap (%s) gave no IPv6 address for the HA" % r.get("method")
        elif cfg.transports == ["udp4"] and cfg.ha_ipv4 is None:
            err = "bootstrap (%s) gave no IPv4 address for the HA (udp4 needs one)" % r.get("method")
    b = r = None
    for name in [k for k in sys.modules if k.startswith("roam6.bootstrap")]:
        forget(name)
    forget("roam6.node.bootrun")
    gc.collect()
    return err
