"""The Wi-Fi boards' entry point (ESP32, Pico W): their main.py call `run(timer_id[, tune])`; an
ESP32 and a Pico W differ only in the timer and the radio tuning (the Pico W's CYW43 power saving).

Its own module so that the link loop (roam6.node.linkglue, which the node's driver loads) imports
neither the start-up code (roam6.node.app) nor the driver. Stays loaded while the MN runs (its
frame does), so it holds nothing but `run`.
"""


def run(timer_id, tune=None):
    """Join Wi-Fi and keep it joined (roam6.node.wifi, with machine.Timer `timer_id` and the
    board's radio setting `tune(wlan)`), then run the MN until it stops. As boards/unix/main.py:
    the start-up code is dropped before the node's code loads; only the keeper stays."""
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
