"""Movement decisions from the board's link adapter, applied to the node (CONTRACTS.md §10).
Imports neither the driver nor the start-up code: the driver loads this (the Wi-Fi boards'
entry point is roam6.node.wifiboard)."""


async def link_loop(node, link, mv, seen=None):
    """Feed the adapter's events to roam6.core.movement and apply its decisions: ("moved", coa,
    transport) | ("home", addr, None) | ("detached", None, None) | None. seen: the events
    already read from the adapter (at boot, by bootstrapping), else its start() dump."""
    evs = seen if seen is not None else link.start()
    while True:
        for ev in evs:
            d = mv.feed(ev, node.now())
            if d is None:
                continue
            kind, addr, transport = d
            if kind == "moved":
                up = node.uplink.active
                if up is not None and up.name != transport and node.reg.bound:
                    from .preference import later           # the CoA in use may stay: then a
                    if later(node, mv, addr, transport):    # preference change, no roam, waits
                        continue
                node.moved(addr, transport)
            elif kind == "home":
                node.at_home()
            else:
                node.detached()
        try:
            evs = await link.next_events()
        except MemoryError:
            # a burst the heap could not hold: its events are lost, so take the whole state again
            # (the loop must outlive it: without it the node never learns of another move)
            evs = await _state_again(node, link)


async def _state_again(node, link):
    import gc

    from .transport import sleep_ms
    while True:
        gc.collect()
        node.log("error", reason="link adapter out of memory: reading the link's state again")
        try:
            return link.start()
        except MemoryError:
            await sleep_ms(100)

