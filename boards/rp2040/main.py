"""roam6 on a Raspberry Pi Pico W (RP2040): join a Wi-Fi network named in config.json, then run the
mobile node forever.

The Wi-Fi keeper and start-up are shared with the ESP32 (roam6/node/wifi.py); a Pico W differs in
its timer and in the CYW43's power saving. A test may import this file instead of running it.
"""
from roam6.node import wifi

TIMER_ID = -1  # rp2: a virtual (soft) timer


def tune(wlan):
    try:
        wlan.config(pm=0xA11140)  # CYW43 power saving off: it delays every packet by up to 100+ ms
    except (ValueError, OSError, TypeError):
        pass


if __name__ == "__main__":
    wifi.run(TIMER_ID, tune)
