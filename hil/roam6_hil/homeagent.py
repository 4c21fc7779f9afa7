"""The real home agent (`roam6 ha --config FILE`, CONTRACTS §6) in the bench's `ha` namespace, with
one security association for the board, and the board's config.json matching it:

    ha = start_ha(bench, write_ha_config(bench))      # an EventProc: wait_for, events, alive, stop
    board.start(board_config(probe=...))
"""
import json
import os
import subprocess
import sys

from .eventlog import EventProc
from .topology import HA_ADDR, HA_DAD_MS, HA_IPV4, HOA, HOME4_POOL, HOME4_PREFIX, HOME_PREFIX, DOMAIN

BOARD_SA = {"nai": "board1@" + DOMAIN, "spi": 4096, "key": "00112233445566778899aabbccddeeff", "hoa": HOA}
# the board's IKEv2 pre-shared key with "security": "ipsec" (the bench's, like the key above)
BOARD_PSK = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"


def board_config(probe=None, **over):
    """The board's config.json (CONTRACTS §5) matching the HA's SA."""
    cfg = {"nai": BOARD_SA["nai"], "spi": BOARD_SA["spi"], "key": BOARD_SA["key"], "hoa": HOA,
           "home_prefix": HOME_PREFIX, "ha": HA_ADDR, "ha_ipv4": HA_IPV4, "domain": DOMAIN,
           "bootstrap": ["static"], "transports": ["udp6", "udp4", "ip6"], "lifetime": 600, "timestamps": True}
    if probe:
        cfg["probe"] = probe
    if over.pop("security", None) == "ipsec":      # IKEv2 + ESP instead of RFC 4285 (CONTRACTS §5)
        cfg.update(security="ipsec", psk=BOARD_PSK, spi=None, key=None, timestamps=None)
    cfg.update(over)
    return {k: v for k, v in cfg.items() if v is not None}      # None = leave the field out


def write_ha_config(bench, key_hex=BOARD_SA["key"], nat_refresh=110, max_lifetime=3600, name="ha", ipv4_home=False,
                    security="rfc4285"):
    """The HA's config (CONTRACTS §6) and its keys file (one SA: the board's, with `key_hex`) in
    the folder bench.path(name); returns the config's path. nat_refresh and max_lifetime default to
    the HA's own defaults (as does replay_window, written out too); `name` tells two HAs apart;
    ipv4_home: RFC 5555 IPv4 home addresses from the bench's home IPv4 prefix and pool;
    security "ipsec": the board's entry is an IPsec device (IKEv2 PSK, CONTRACTS §6) instead."""
    folder = bench.path(name)
    os.makedirs(folder, exist_ok=True)
    keys = os.path.join(folder, "ha-keys.json")
    fd = os.open(keys, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)      # never readable by others
    with os.fdopen(fd, "w") as f:
        sa = dict(BOARD_SA, key=key_hex)
        if security == "ipsec":
            sa = {"nai": BOARD_SA["nai"], "security": "ipsec", "psk": BOARD_PSK, "hoa": HOA}
        json.dump({"sas": [sa]}, f)
    conf = os.path.join(folder, "ha.json")
    with open(conf, "w") as f:
        json.dump({"home_prefix": HOME_PREFIX, "address": HA_ADDR, "ipv4": HA_IPV4, "port": 4191,
                   "home_link": "home", "tun": "r6tun", "keys_file": keys, "max_lifetime": max_lifetime,
                   "replay_window": 7, "nat_refresh": nat_refresh, "dad_ms": HA_DAD_MS,
                   **({"ipv4_home_prefix": HOME4_PREFIX, "ipv4_pool": HOME4_POOL} if ipv4_home else {}),
                   **({"security": ["rfc4285", "ipsec"]} if security == "ipsec" else {})}, f, indent=1)
    return conf


def start_ha(bench, config_path, timeout=10.0):
    """The one way the bench starts the home agent: `roam6 ha --config` in the `ha` namespace, its
    lines logged beside its config (ha.log). Returns its EventProc once it is ready; RuntimeError
    with the log's tail if it is not within `timeout` s."""
    log = os.path.join(os.path.dirname(config_path), "ha.log")
    p = bench.popen("ha", [sys.executable, "-u", "-m", "roam6_host", "ha", "--config", config_path],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ha = EventProc(bench, p, log)
    ev = ha.wait_for(lambda e: e["ev"] in ("ready", "error"), timeout)
    if ev is None or ev["ev"] != "ready":
        ha.stop()
        raise RuntimeError("the home agent did not start:\n" + ha.tail())
    return ha
