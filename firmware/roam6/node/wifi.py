"""Wi-Fi boards (ESP32, Pico W) at boot: join a network named in config.json, keep it joined.

The boards' main.py call roam6.node.wifiboard.run(timer_id, tune), which calls `start` here and
then drops this module before the node's code loads: after boot only the keeper's periodic check
runs (roam6.node.wlanlink.Keeper). Only the timer and the radio tuning differ per port.
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

from roam6.node.wlanlink import Keeper

CONFIG = "config.json"
JOIN_WAIT_MS = 15000  # first join at boot; later re-joins run in the background
KEEP_PERIOD_MS = 3000


def say(text):
    print("wifi: " + text)


def order(wlan, nets):
    """The known networks [(ssid, psk)] -> their SSIDs, the strongest in range first."""
    known = dict(nets)
    try:
        seen = [(r[3], r[0].decode()) for r in wlan.scan()]
    except (OSError, UnicodeError):
        seen = []
    seen.sort(reverse=True)  # strongest RSSI first
    in_range = [s for _rssi, s in seen if s in known]
    return in_range + [s for s, _p in nets if s not in in_range]  # hidden SSIDs last


def join(wlan, nets, wait_ms=JOIN_WAIT_MS):
    """Join the strongest known network in range -> True if joined."""
    known = dict(nets)
    for ssid in order(wlan, nets):
        say("joining " + ssid)
        wlan.connect(ssid, known[ssid])
        t0 = time.ticks_ms()
        while not wlan.isconnected() and time.ticks_diff(time.ticks_ms(), t0) < wait_ms:
            time.sleep_ms(100)
        if wlan.isconnected():
            say("joined %s, %s" % (ssid, wlan.ifconfig()[0]))
            return True
        wlan.disconnect()
    say("no known network joined")
    return False


def keep(wlan, nets, timer_id=-1, period_ms=KEEP_PERIOD_MS):
    """Start the keeper on machine.Timer `timer_id` -> the keeper (hold it while the MN runs)."""
    k = Keeper(wlan, nets, micropython.schedule)
    k.timer = machine.Timer(timer_id)
    k.timer.init(period=period_ms, mode=machine.Timer.PERIODIC, callback=k._tick)
    return k


def wifi_networks(path):
    """config.json's "wifi" list -> [(ssid, psk)]."""
    try:
        with open(path) as f:
            nets = json.load(f).get("wifi") or []
    except (OSError, ValueError):
        return []  # the MN's own config check names what is wrong
    return [(n["ssid"], n.get("psk") or "") for n in nets]


def start(timer_id, tune=None):
    """Join Wi-Fi, keep it joined with machine.Timer `timer_id` -> the keeper, or None if
    config.json names no network. `tune(wlan)` is the board's own radio setting, applied once
    the interface is active."""
    nets = wifi_networks(CONFIG)
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if tune:
        tune(wlan)
    if not nets:
        say("config.json has no \"wifi\" list: staying on whatever network the board is on")
        return None
    join(wlan, nets)
    return keep(wlan, nets, timer_id)
