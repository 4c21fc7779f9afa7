"""roam6 on an ESP32-S3: join Wi-Fi (config.json), run the mobile node (roam6.node.wifiboard.run).
A test may import this file instead of running it."""
from roam6.node.wifiboard import run

TIMER_ID = 0  # ESP32-S3: hardware timer 0 (the esp32 port has no virtual timers)

if __name__ == "__main__":
    run(TIMER_ID)
