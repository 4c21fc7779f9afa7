"""roam6 on a Pico 2 W: join Wi-Fi (config.json), run the mobile node (roam6.node.wifiboard.run).
A test may import this file instead of running it."""
from roam6.node.wifiboard import run

TIMER_ID = -1  # rp2 (RP2350 too): a virtual (soft) timer


def tune(wlan):
    try:
        wlan.config(pm=0xA11140)  # CYW43 power saving off: it delays every packet by up to 100+ ms
    except (ValueError, OSError, TypeError):
        pass


if __name__ == "__main__":
    run(TIMER_ID, tune)
