"""roam6 on an ESP32: join a Wi-Fi network named in config.json, then run the mobile node forever.

The Wi-Fi keeper and start-up are shared with the Pico W (roam6/node/wifi.py); an ESP32 differs
only in its timer. A test may import this file instead of running it.
"""
from roam6.node import wifi

TIMER_ID = 0  # esp32: hardware timer 0 (the port has no virtual timers)

if __name__ == "__main__":
    wifi.run(TIMER_ID)
