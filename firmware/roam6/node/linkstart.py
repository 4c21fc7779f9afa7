"""Start-up with the board's link adapter (no fixed care-of address): the adapter, its own
addressing (config "addressing") and the bootstrap of what the config leaves to it.

roam6.node.app loads this only for a node without --coa/"coa"/--home and forgets it at once:
the names here (a qstr each, for good) are not on the heap of a node with a static care-of
address. Written as app.py is: steps written out, short strings only where they are data.
"""
from . import forget


def plan(cfg, iface):
    """(plan, reason): ("link", Link, Movement class, iface[, link events seen while
    bootstrapping]) and None, or the bootstrap's reason it found no HA. ValueError: no adapter."""
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
    cfg.iface = iface
    reason = None
    # an HA, home prefix or (udp4 only) HA IPv4 address the config leaves to "bootstrap"
    if cfg.ha is None or cfg.home_prefix is None or (cfg.transports == ["udp4"] and cfg.ha_ipv4 is None):
        from . import boot
        seen = []
        reason = boot.run(cfg, link, Movement, seen)
        p = p + (seen,)
        forget("roam6.node.boot")
    return p, reason


def _self_addressing(cfg, link):
    # its own function, not inline in plan: inline in app.setup (with its comprehension) it left
    # start-up code reachable on the ESP32 configuration after trim() (likely a stale reference
    # from its frame; not proven which object): +4.7 KB as files, +1.5 KB in ROMFS on the 32-bit
    # runtime
    a = cfg.raw["addressing"]
    if not hasattr(link, "self_addressing"):
        raise ValueError("config addressing %r: this board's network stack does it" % a)
    link.self_addressing(cfg.state_file + ".nets" if a == "dna" else None,
                         [4 if t == "udp4" else 6 for t in cfg.transports])
