"""roam6 on an ESP32: join a Wi-Fi network named in config.json, then run the mobile node forever.

The start-up and the Wi-Fi keeper are shared with the Pico W (roam6.node.wifiboard.run, which
drops the boot-time Wi-Fi code of roam6/node/wifi.py before the node's code loads); an ESP32
differs only in its timer. A test may import this file instead of running it.
"""
from roam6.node.wifiboard import run

TIMER_ID = 0  # esp32: hardware timer 0 (the port has no virtual timers)

if __name__ == "__main__":
    run(TIMER_ID)
