"""Wi-Fi boards (ESP32, Pico W): join a network named in config.json, keep it joined, run the MN.

The boards' main.py call `run(timer_id, tune)`; only the timer and the radio tuning differ per port.
`roam6 deploy` puts main.py, link.py, config.json and the roam6 package on the board; MicroPython
runs main.py at every reset. Ctrl-C (mpremote, a serial terminal) stops it and leaves the REPL.
The keeper re-joins a known network whenever the link drops: that re-association is the "roam" the
MN sees through link.py. Ordinary log lines here; JSON lines come from the MN (CONTRACTS.md §7).
A wrong config.json stops the MN with a message naming the field. Board-only modules (machine,
network) are imported here, so this module is left out of the unix bundle.
"""
import json
import time

import machine
import micropython
import network

CONFIG = "config.json"
JOIN_WAIT_MS = 15000  # first join at boot; later re-joins run in the background
KEEP_PERIOD_MS = 3000


def say(text):
    print("wifi: " + text)


class WifiKeeper:
    """Joins the strongest known network in range, and again whenever the link is lost."""

    def __init__(self, wlan, nets):
        self.wlan = wlan
        self.nets = [(n["ssid"], n.get("psk") or "") for n in nets]
        self.next = 0
        self.timer = None
        self._check_ref = self.check  # bound once: schedule() from an IRQ must not allocate

    def order(self):
        known = dict(self.nets)
        try:
            seen = [(r[3], r[0].decode()) for r in self.wlan.scan()]
        except (OSError, UnicodeError):
            seen = []
        seen.sort(reverse=True)  # strongest RSSI first
        in_range = [s for _rssi, s in seen if s in known]
        return in_range + [s for s, _p in self.nets if s not in in_range]  # hidden SSIDs last

    def join(self, wait_ms=JOIN_WAIT_MS):
        known = dict(self.nets)
        for ssid in self.order():
            say("joining " + ssid)
            self.wlan.connect(ssid, known[ssid])
            t0 = time.ticks_ms()
            while not self.wlan.isconnected() and time.ticks_diff(time.ticks_ms(), t0) < wait_ms:
                time.sleep_ms(100)
            if self.wlan.isconnected():
                say("joined %s, %s" % (ssid, self.wlan.ifconfig()[0]))
                return True
            self.wlan.disconnect()
        say("no known network joined")
        return False

    def check(self, _arg=None):
        # runs scheduled (not in the IRQ): a non-blocking connect to the next known network
        if self.wlan.isconnected() or not self.nets:
            return
        ssid, psk = self.nets[self.next % len(self.nets)]
        self.next += 1
        say("link lost, trying " + ssid)
        try:
            self.wlan.connect(ssid, psk)
        except OSError as e:
            say("connect failed: %s" % e)

    def _tick(self, _t):
        try:
            micropython.schedule(self._check_ref, None)
        except RuntimeError:  # schedule queue full: try again next period
            pass

    def keep(self, period_ms=KEEP_PERIOD_MS, timer_id=-1):
        self.timer = machine.Timer(timer_id)
        self.timer.init(period=period_ms, mode=machine.Timer.PERIODIC, callback=self._tick)


def wifi_networks(path):
    try:
        with open(path) as f:
            return json.load(f).get("wifi") or []
    except (OSError, ValueError):
        return []  # the MN's own config check names what is wrong


def run(timer_id, tune=None):
    """Join Wi-Fi, keep it joined with machine.Timer `timer_id`, then run the MN until it stops.
    `tune(wlan)` is the board's own radio setting, applied once the interface is active."""
    nets = wifi_networks(CONFIG)
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if tune:
        tune(wlan)
    if nets:
        keeper = WifiKeeper(wlan, nets)
        keeper.join()
        keeper.keep(timer_id=timer_id)
    else:
        say("config.json has no \"wifi\" list: staying on whatever network the board is on")
    # as boards/unix/main.py: the start-up code is dropped before the node's code loads
    from roam6.node import app
    rc, cfg, plan = app.setup([CONFIG])
    if cfg is not None:
        app.trim()
        del app
        from roam6.node.driver import MobileNode
        rc = MobileNode(cfg).start(plan)
    print("roam6 stopped, status %s" % rc)

