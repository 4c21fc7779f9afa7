"""The MN-side IPsec costs, run by `roam6 bench ipsec` under MicroPython (MICROPYPATH = firmware/,
$ROAM6_ACCEL picks the HMAC-SHA1 tier) and under CPython (PYTHONPATH = firmware/): one X25519,
ESP seal and open (AES-128-CBC + HMAC-SHA1-96, and HMAC-SHA2-256-128; AES-128-GCM, RFC 4106) of 64- and
1200-byte payloads.
Prints one JSON line of microseconds per call (the best of many short runs). argv: ROUNDS
"""
import gc
import json
import sys

from roam6 import accel, crypto  # noqa: F401  (crypto registers hmac_sha1's tiers)
from roam6.compat import ticks_diff, ticks_us
from roam6.ipsec import x25519
from roam6.ipsec.esp import SA


def best_us(fn, n, rounds):
    best = None
    for _ in range(rounds):
        gc.collect()
        t = ticks_us()
        for _ in range(n):
            fn()
        dt = ticks_diff(ticks_us(), t)
        best = dt if best is None or dt < best else best
    return best / n


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    us = {}
    k = bytes(range(1, 33))
    u = x25519.public_key(bytes(range(2, 34)))
    # short runs, many of them, the best kept: on a loaded host a short run is likelier to go unpreempted
    us["x25519"] = best_us(lambda: x25519.x25519(k, u), 1, 3 * rounds)
    for integ, name, klen in ((2, "sha1_96", 20), (12, "sha256_128", 32)):
        for size in (64, 1200):
            payload = bytes(i & 255 for i in range(size))
            out = SA(0x1001, bytes(16), bytes(klen), integ)
            pkt = out.seal(payload, 41)
            inn = SA(0x1001, bytes(16), bytes(klen), integ)
            us["esp_seal_%s_%dB" % (name, size)] = best_us(lambda: out.seal(payload, 41), 10, 20 * rounds)

            def opening():
                inn.top = inn.bitmap = 0      # the same packet each time: reset the window
                inn.open(pkt)
            us["esp_open_%s_%dB" % (name, size)] = best_us(opening, 10, 20 * rounds)
            assert inn.opened > 0
    from roam6.ipsec.gcm import GcmSA         # AES-GCM (RFC 4106): Python GHASH, AES-CTR over cryptolib's ECB
    for size in (64, 1200):
        payload = bytes(i & 255 for i in range(size))
        out = GcmSA(0x1001, bytes(20))
        pkt = out.seal(payload, 41)
        inn = GcmSA(0x1001, bytes(20))
        # (milliseconds per call in Python: fewer, longer runs than the CBC figures)
        us["esp_seal_aes_gcm_%dB" % size] = best_us(lambda: out.seal(payload, 41), 2, 5 * rounds)

        def opening_gcm():
            inn.top = inn.bitmap = 0
            inn.open(pkt)
        us["esp_open_aes_gcm_%dB" % size] = best_us(opening_gcm, 2, 5 * rounds)
        assert inn.opened > 0
    print(json.dumps({"runtime": sys.implementation.name, "hmac_sha1": accel.tier("hmac_sha1"),
                      "us": {k: round(v, 1) for k, v in us.items()}}))


main()
