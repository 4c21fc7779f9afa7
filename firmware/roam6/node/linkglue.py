"""Movement decisions from the board's link adapter, applied to the node (CONTRACTS.md §10)."""


def decide(node, d):
    """Apply a roam6.core.movement decision: ("moved", coa, transport) | ("home", addr, None) |
    ("detached", None, None) | None."""
    if d is None:
        return
    if d[0] == "moved":
        node.moved(d[1], d[2])
    elif d[0] == "home":
        from .homelink import at_home
        at_home(node)
    else:
        node.detached()


async def link_loop(node, link, mv, seen=None):
    """seen: the events already read from the adapter (at boot, by bootstrapping), else its
    start() dump."""
    for ev in (seen if seen is not None else link.start()):
        decide(node, mv.feed(ev, node.now()))
    while True:
        for ev in await link.next_events():
            decide(node, mv.feed(ev, node.now()))
