"""Picks the fastest implementation of each hot path: native module -> viper -> plain Python.

The plain-Python functions stay where they are (`roam6.wire.checksum`: inet_sum, finish, checksum6;
`roam6.crypto`: hmac_sha1, hmac_parts); those modules end with `name = accel.pick("name", name)`,
so every caller of the `roam6.*` names gets the fastest implementation that loaded (the native
module's function of that name), with the same results (tests/firmware/test_accel.py,
tests/natmod/). On CPython only the Python path exists.

The native module is `roam6_native.mpy`, one build per architecture (`roam6 build natmod --arch
ARCH`, C in firmware/natmod/). It is looked for, in order: $ROAM6_NATMOD_DIR/<arch>/ and
$ROAM6_NATMOD_DIR (unix port), build/natmod/<arch>/ of the source checkout this file lives in,
and the folder holding the roam6 package (on a board: next to the firmware, e.g. /lib), where
<arch> comes from sys.implementation._mpy. A file that fails to load (another arch, a stale API)
is reported in `status` and the next tier is used.

$ROAM6_ACCEL=native|viper|python caps the tier (benchmarks compare the tiers of the same code).
"""
import sys

from roam6.compat import IS_MICROPYTHON

NATIVE_MODULE = "roam6_native"
NATIVE_API = 2  # must equal ROAM6_NATIVE_API in firmware/natmod/roam6_native.c
# From which HMAC message length the native module hands the inner hash to the built-in
# hashlib.sha1, per arch (None: never). x64, measured: the unrolled C SHA-1 is as fast as hashlib
# on long buffers and faster on short ones, so never. Elsewhere unmeasured: long messages go to
# hashlib, which may use the chip's SHA hardware (ESP32). MH messages are < 200 bytes anyway.
HASHLIB_MIN = {"x64": None}
HASHLIB_MIN_DEFAULT = 1024
TIERS = ("python", "viper", "native")

# MP_NATIVE_ARCH_* numbers, as in sys.implementation._mpy >> 10 (py/persistentcode.h)
_ARCHS = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
          "xtensa", "xtensawin", "rv32imc", "rv64imc")

status = {"arch": None, "cap": "native", "native": None, "native_error": None,
          "viper": False, "viper_error": None}
impls = {}  # name -> {"python": fn, "viper": fn, "native": fn} for the tiers that loaded
native = None
viper = None


def mpy_arch():
    """The native architecture name this MicroPython runs (None on CPython or without native)."""
    mpy = getattr(sys.implementation, "_mpy", None)
    if mpy is None:
        return None
    a = mpy >> 10
    return _ARCHS[a] if a < len(_ARCHS) else None


def _getenv(name):
    try:
        import os
        return os.getenv(name)
    except (ImportError, AttributeError):  # boards: no environment
        return None


def _dirname(path):
    i = path.rfind("/")
    return path[:i] if i > 0 else ("/" if i == 0 else ".")


def _join(d, name):
    return d + name if d.endswith("/") else d + "/" + name


def _exists(path):
    import os
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def native_dirs(arch, here=None):
    """Folders searched for roam6_native.mpy, in order (`here`: this module's path, for tests)."""
    dirs = []
    env = _getenv("ROAM6_NATMOD_DIR")
    if env:
        dirs.append(_join(env, arch))
        dirs.append(env)
    fw = _dirname(_dirname(here or __file__))  # .../firmware (checkout), / or /lib (board)
    dirs.append(_join(_dirname(fw), "build/natmod/" + arch))
    dirs.append(fw)
    return dirs


def _load_native():
    arch = status["arch"]
    if arch is None:
        status["native_error"] = "no native code on this interpreter"
        return None
    for d in native_dirs(arch):
        path = _join(d, NATIVE_MODULE + ".mpy")
        if not _exists(path):
            continue
        sys.path.insert(0, d)
        try:
            mod = __import__(NATIVE_MODULE)
        except Exception as exc:  # wrong arch or mpy version: fall back, say why
            status["native_error"] = "%s: %s" % (path, exc)
            sys.modules.pop(NATIVE_MODULE, None)
            return None
        finally:
            sys.path.pop(0)
        if getattr(mod, "API", None) != NATIVE_API:
            status["native_error"] = "%s: API %r, this firmware needs %d (rebuild it)" % (
                path, getattr(mod, "API", None), NATIVE_API)
            sys.modules.pop(NATIVE_MODULE, None)
            return None
        status["native"] = path
        return mod
    status["native_error"] = "%s.mpy not found for %s in %s" % (NATIVE_MODULE, arch, ", ".join(native_dirs(arch)))
    return None


def _init():
    global native, viper
    cap = _getenv("ROAM6_ACCEL") or "native"
    if cap not in TIERS:
        raise ValueError("ROAM6_ACCEL must be one of native, viper, python (got %r)" % cap)
    status["cap"] = cap
    if not IS_MICROPYTHON:
        status["native_error"] = status["viper_error"] = "CPython: plain Python only"
        return
    status["arch"] = mpy_arch()
    if cap == "native":
        native = _load_native()
        least = HASHLIB_MIN.get(status["arch"], HASHLIB_MIN_DEFAULT)
        if native is not None and least is not None:
            try:
                import hashlib
                native.use_hashlib(hashlib.sha1, least)
            except (ImportError, AttributeError):  # no hashlib.sha1: the C SHA-1 does it all
                pass
    if cap != "python":
        try:
            from roam6 import accel_viper
            viper = accel_viper
            status["viper"] = True
        except Exception as exc:  # SyntaxError on a port without the viper emitter
            status["viper_error"] = repr(exc)


_init()


def pick(name, py_fn):
    """Register the plain-Python `py_fn` for `name`; return the fastest implementation loaded."""
    tiers = {"python": py_fn}
    if viper is not None and hasattr(viper, name):
        tiers["viper"] = getattr(viper, name)
    if native is not None and hasattr(native, name):
        tiers["native"] = getattr(native, name)
    impls[name] = tiers
    return tiers.get("native") or tiers.get("viper") or py_fn


def tier(name):
    """Which tier `pick` chose for name ("native", "viper" or "python")."""
    tiers = impls[name]
    for t in ("native", "viper", "python"):
        if t in tiers:
            return t
