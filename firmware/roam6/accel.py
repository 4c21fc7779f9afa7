"""Picks the fastest implementation of each hot path: native module -> viper -> plain Python.

The plain-Python functions stay where they are (`roam6.wire.checksum`: inet_sum, finish, checksum6;
`roam6.crypto`: hmac_sha1, hmac_parts); those modules end with `name = accel.pick("name", name)`,
so every caller of the `roam6.*` names gets the fastest implementation that loaded, with the same
results (tests/firmware/test_accel.py, tests/natmod/). On CPython only the Python path exists.

The native module is `roam6_native.mpy`, one build per architecture (`roam6 build natmod --arch
ARCH`, C in firmware/natmod/). It is looked for, in order: $ROAM6_NATMOD_DIR/<arch>/ and
$ROAM6_NATMOD_DIR (unix port), build/natmod/<arch>/ of the source checkout this file lives in,
and the folder holding the roam6 package (on a board: next to the firmware, e.g. /lib), where
<arch> comes from sys.implementation._mpy. A file that fails to load (another arch, a stale API)
is reported in `status` and the next tier is used. An interpreter without native code (no arch)
tries neither native nor viper.

$ROAM6_ACCEL=native|viper|python caps the tier (benchmarks compare the tiers of the same code).

The MN drops this module once roam6.crypto and roam6.wire.checksum have picked (node.app), and
every name in it (a qstr) stays on the board's heap for good: so few names, helpers inlined, no
module-level constants (const() with a leading underscore is folded away), and strings that are
only data longer than 10 characters (those are not qstrs). Only what tests and benches read has a
name: status, impls, native, viper, pick, tier, native_dirs.
"""
import sys

from roam6.compat import IS_MICROPYTHON, const

_NATIVE_API = const(2)  # must equal ROAM6_NATIVE_API in firmware/natmod/roam6_native.c

# what loaded and why not ("hashlib_min": from which HMAC message length the native module hands
# the inner hash to the built-in hashlib.sha1, None: never)
status = {"arch": None, "cap": "native", "native": None, "native_error": None,
          "viper": False, "viper_error": None, "hashlib_min": None}
impls = {}  # name -> {"python": fn, "viper": fn, "native": fn} for the tiers that loaded
native = None
viper = None


def native_dirs(arch, path=None):
    """Folders searched for roam6_native.mpy, in order (`path`: this module's file, for tests)."""
    up = lambda path: (path[:path.rfind("/")] or "/") if "/" in path else "."  # noqa: E731  dirname
    dirs = []
    try:
        from os import getenv
        env = getenv("ROAM6_NATMOD_DIR")
    except ImportError:  # boards: no environment
        env = None
    if env:
        dirs.append(env.rstrip("/") + "/" + arch)
        dirs.append(env)
    fw = up(up(path or __file__))  # .../firmware (checkout), / or /lib (board)
    dirs.append(up(fw).rstrip("/") + "/build/natmod/" + arch)
    dirs.append(fw)
    return dirs


def _init():
    global native, viper
    try:
        from os import getenv
        cap = getenv("ROAM6_ACCEL") or "native"
    except ImportError:
        cap = "native"
    if cap not in ("python", "viper", "native"):
        raise ValueError("ROAM6_ACCEL must be one of native, viper, python (got %r)" % cap)
    status["cap"] = cap
    if not IS_MICROPYTHON:
        status["native_error"] = status["viper_error"] = "CPython: plain Python only"
        return
    # MP_NATIVE_ARCH_* numbers, as in sys.implementation._mpy >> 10 (py/persistentcode.h)
    a = getattr(sys.implementation, "_mpy", 0) >> 10
    arch = status["arch"] = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp",
                             "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc")[a] if a < 13 else None
    if not a:  # no native emitter: neither a native module nor viper code can run
        status["native_error"] = status["viper_error"] = "no native code on this interpreter"
        return
    if cap == "native" and arch is None:
        status["native_error"] = "no native module for arch number %d" % a
    elif cap == "native":
        dirs = native_dirs(arch)
        for d in dirs:
            path = d.rstrip("/") + "/roam6_native.mpy"
            try:
                import os
                os.stat(path)
            except OSError:
                continue
            sys.path.insert(0, d)
            try:
                mod = __import__("roam6_native")
            except Exception as exc:  # wrong arch or mpy version: fall back, say why
                status["native_error"] = "%s does not load: %s" % (path, exc)
                sys.modules.pop("roam6_native", None)
                break
            finally:
                sys.path.pop(0)
            if getattr(mod, "API", None) != _NATIVE_API:
                status["native_error"] = "%s: API %r, this firmware needs %d (rebuild it)" % (
                    path, getattr(mod, "API", None), _NATIVE_API)
                sys.modules.pop("roam6_native", None)
                break
            status["native"] = path
            native = mod
            # x64, measured: the unrolled C SHA-1 is as fast as hashlib on long buffers and faster
            # on short ones, so never. Elsewhere unmeasured: long messages go to hashlib, which may
            # use the chip's SHA hardware (ESP32). MH messages are < 200 bytes anyway.
            least = status["hashlib_min"] = None if a == 2 else 1024
            if least is not None:
                try:
                    import hashlib
                    getattr(mod, "use_hashlib")(hashlib.sha1, least)  # (by a long string: no qstr)
                except (ImportError, AttributeError):  # no hashlib.sha1: the C SHA-1 does it all
                    pass
            break
        else:
            status["native_error"] = "roam6_native.mpy not found for %s in %s" % (arch, ", ".join(dirs))
    if cap != "python":
        try:
            # (by a long string: its name is no qstr where it does not load)
            viper = __import__("roam6.accel_viper", None, None, ("hmac_sha1",))
            status["viper"] = True
        except Exception as exc:  # SyntaxError on a port without the viper emitter
            status["viper_error"] = repr(exc)


_init()


def pick(name, f):
    """Register the plain-Python function `f` for `name`; return the fastest implementation loaded."""
    tiers = impls[name] = {"python": f}
    fn = getattr(viper, name, None)
    if fn is not None:
        tiers["viper"] = fn
    fn = getattr(native, name, None)
    if fn is not None:
        tiers["native"] = fn
    return fn or tiers.get("viper") or f


def tier(name):
    """Which tier `pick` chose for name ("native", "viper" or "python")."""
    for t in ("native", "viper", "python"):
        if t in impls[name]:
            return t
