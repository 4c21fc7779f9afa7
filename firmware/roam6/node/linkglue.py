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
                node.moved(addr, transport)
            elif kind == "home":
                node.at_home()
            else:
                node.detached()
        evs = await link.next_events()

