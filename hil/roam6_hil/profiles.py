"""Board profiles of the virtual board: a real board's limits played on the unix port."""
import json
import os

from roam6_host.errors import UserError
from roam6_host.paths import BOARDS_DIR

# the real board's limits on the unix port: heap (-X heapsize), the transports its MicroPython
# network stack allows, and which hot-path tier it has (esp32: no native module built without
# ESP-IDF, so viper at best; rp2040: its armv6m module, the x64 one stands in here)
PROFILES = {
    "esp32": {"board": "esp32", "heap_kb": 100, "transports": ["udp4"], "accel": "viper"},
    "rp2040": {"board": "rp2040", "heap_kb": 160, "transports": ["udp6", "udp4"], "accel": "native"},
    "router": {"board": "unix", "heap_kb": 1024, "transports": ["udp6", "udp4", "ip6"], "accel": "native"},
}


def profile(name):
    if name not in PROFILES:
        raise UserError("unknown board profile %r" % name, hint="one of: %s" % ", ".join(PROFILES))
    p = dict(PROFILES[name], name=name)
    bj = os.path.join(BOARDS_DIR, p["board"], "board.json")
    if os.path.exists(bj) and name != "router":
        with open(bj) as f:
            data = json.load(f)
        p["heap_kb"] = data.get("heap_free_kb", p["heap_kb"])
        p["transports"] = data.get("transports", p["transports"])
    return p
