"""Movement decisions from the board's link adapter, applied to the node (CONTRACTS.md §10), and
the Wi-Fi boards' start (`run`: their main.py call it)."""


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
            if d[0] == "moved":
                node.moved(d[1], d[2])
            elif d[0] == "home":
                from .homelink import at_home
                at_home(node)
            else:
                node.detached()
        evs = await link.next_events()


def run(timer_id, tune=None):
    """The ESP32's and Pico W's main: join Wi-Fi and keep it joined (roam6.node.wifi, with
    machine.Timer `timer_id` and the board's radio setting `tune(wlan)`), then run the MN until
    it stops. As boards/unix/main.py: the start-up code is dropped before the node's code loads;
    only the keeper stays."""
    from . import forget, wifi
    keeper = wifi.start(timer_id, tune)  # noqa: F841  (held while the MN runs: its timer ticks)
    del wifi
    forget("roam6.node.wifi")
    from . import app
    rc, cfg, plan = app.setup(["config.json"])
    if cfg is not None:
        app.trim()
        del app
        from .driver import MobileNode
        rc = MobileNode(cfg).start(plan)
    print("roam6 stopped, status %s" % rc)
