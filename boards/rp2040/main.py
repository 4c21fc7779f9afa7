"""roam6 on a Raspberry Pi Pico W (RP2040): join a Wi-Fi network named in config.json, then run the
mobile node forever.

The start-up and the Wi-Fi keeper are shared with the ESP32 (roam6.node.wifiboard.run, which
drops the boot-time Wi-Fi code of roam6/node/wifi.py before the node's code loads); a Pico W
differs in its timer and in the CYW43's power saving. A test may import this file instead of
running it.
"""
from roam6.node.wifiboard import run

TIMER_ID = -1  # rp2: a virtual (soft) timer


def tune(wlan):
    try:
        wlan.config(pm=0xA11140)  # CYW43 power saving off: it delays every packet by up to 100+ ms
    except (ValueError, OSError, TypeError):
        pass


if __name__ == "__main__":
    run(TIMER_ID, tune)
