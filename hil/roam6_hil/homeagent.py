"""Start the real home agent (`roam6 ha --config FILE`, CONTRACTS §6) in the bench's `ha`
namespace, with one security association for the board."""
import json
import os
import subprocess
import sys

from .boards import EventReader
from .topology import HA_ADDR, HA_DAD_MS, HA_IPV4, HOA, HOME_PREFIX, DOMAIN

BOARD_SA = {"nai": "board1@" + DOMAIN, "spi": 4096, "key": "00112233445566778899aabbccddeeff", "hoa": HOA}


def board_config(probe=None, **over):
    """The board's config.json (CONTRACTS §5) matching the HA's SA."""
    cfg = {"nai": BOARD_SA["nai"], "spi": BOARD_SA["spi"], "key": BOARD_SA["key"], "hoa": HOA,
           "home_prefix": HOME_PREFIX, "ha": HA_ADDR, "ha_ipv4": HA_IPV4, "domain": DOMAIN,
           "bootstrap": ["static"], "transports": ["udp6", "udp4", "ip6"], "lifetime": 600, "timestamps": True}
    if probe:
        cfg["probe"] = probe
    cfg.update(over)
    return {k: v for k, v in cfg.items() if v is not None}      # None = leave the field out


class HomeAgentProcess:
    def __init__(self, bench):
        self.bench = bench
        self.folder = bench.path("ha")
        os.makedirs(self.folder, exist_ok=True)
        self.proc = None
        self.reader = None

    def start(self, timeout=10.0):
        keys = os.path.join(self.folder, "ha-keys.json")
        fd = os.open(keys, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"sas": [BOARD_SA]}, f)
        conf = os.path.join(self.folder, "ha.json")
        with open(conf, "w") as f:
            json.dump({"home_prefix": HOME_PREFIX, "address": HA_ADDR, "ipv4": HA_IPV4, "port": 4191,
                       "home_link": "home", "tun": "r6tun", "keys_file": keys, "dad_ms": HA_DAD_MS}, f, indent=1)
        self.proc = self.bench.popen("ha", [sys.executable, "-u", "-m", "roam6_host", "ha", "--config", conf],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.reader = EventReader(self.proc.stdout, os.path.join(self.folder, "ha.log"))
        ev = self.reader.wait(lambda e: e["ev"] in ("ready", "error"), timeout)
        if ev is None or ev["ev"] != "ready":
            with open(os.path.join(self.folder, "ha.log")) as f:
                tail = f.read()[-1500:]
            raise RuntimeError("the home agent did not start:\n" + tail)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None:
            self.bench.ns.stop(self.proc, grace=2.0)
