"""Start-up with the board's link adapter (no fixed care-of address): the adapter, its own
addressing (config "addressing") and the bootstrap of what the config leaves to it.

roam6.node.app loads this only for a node without --coa/"coa"/--home and forgets it at once:
the names here (a qstr each, for good) are not on the heap of a node with a static care-of
address. Written as app.py is: steps written out, short strings only where they are data.
"""


def plan(cfg, bootstrap):
    """(plan, reason): ("link", Link, Movement class, cfg.iface[, link events seen while
    bootstrapping]) and None, or the bootstrap's reason it found no HA (bootstrap: the config
    leaves the HA's address or the home prefix to it). ValueError: no adapter."""
    iface = cfg.iface
    try:
        from link import Link
    except ImportError:
        raise ValueError("no link adapter (link.py) on the path: give --coa ADDR")
    from roam6.core.movement import Movement
    # The unix adapter reads netlink into a buffer of `buffer_size` (4 KB): the node's
    # packet buffer grows to that size and serves both (each read is handled before the
    # next await), one buffer fewer on a small heap, allocated before the node's code
    # fragments the heap. The MCU boards' adapters poll the WLAN: no buffer.
    n = getattr(Link, "buffer_size", 0)
    if n:
        from roam6 import node
        node.RX = node.TX = bytearray(max(n, len(node.RX)))
        link = Link(iface, node.RX)
    else:
        link = Link(iface)
    p = ("link", link, Movement, iface)
    if cfg.raw.get("addressing", "stack") != "stack":
        _self_addressing(cfg, link)
    reason = None
    if bootstrap:
        try:
            from . import boot
        except ImportError:       # (the rp2040 `--with ipsec` variant leaves bootstrapping out)
            raise ValueError("\"bootstrap\" is not in this firmware: give the HA and home prefix")
        seen = []
        reason = boot.run(cfg, link, Movement, seen)
        p = p + (seen,)               # (app forgets boot with this module)
    return p, reason


def _self_addressing(cfg, link):
    # its own function, not inline in plan: inline in app.setup (with its comprehension) it left
    # start-up code reachable on the ESP32 configuration after trim() (likely a stale reference
    # from its frame; not proven which object): +4.7 KB as files, +1.5 KB in ROMFS on the 32-bit
    # runtime
    a = cfg.raw["addressing"]
    try:
        f = link.self_addressing
    except AttributeError:
        raise ValueError("config addressing %r: this board's network stack does it" % a)
    f(cfg.state_file + ".nets" if a == "dna" else None, [4 if t == "udp4" else 6 for t in cfg.transports])
