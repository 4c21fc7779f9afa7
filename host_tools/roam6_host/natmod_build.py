"""Build roam6's native module (firmware/natmod/) for one architecture: `build_natmod(arch, out_dir)`.

The MicroPython build files (py/dynruntime.mk, py/*.h, tools/mpy_ld.py) come from the PyPI sdist of
`mpy-cross-v6-3` (MicroPython 1.23, mpy 6.3, whose native ABI the 1.23..1.29 runtimes load), fetched
once with pip and unpacked under the cache folder ($ROAM6_CACHE, else $XDG_CACHE_HOME/roam6, else
~/.cache/roam6). $ROAM6_MPY_DIR points at another MicroPython tree instead. Compilers:
gcc (x64), arm-none-eabi-gcc from Debian (armv6m), xtensa-esp32-elf-gcc from ESP-IDF (xtensawin).
Object files stay in the cache (make rebuilds only what changed, so a rebuild takes well under a
second); out_dir/<arch>/roam6_native.mpy is the only file written to out_dir.

Also a command: python -m roam6_host.natmod_build ARCH [ARCH...] [--out build/natmod]
(`make test` runs it so the firmware tests find build/natmod/x64/roam6_native.mpy).
"""
import argparse
import fcntl
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

from .errors import UserError
from .mpy import read_header, with_source_name
from .paths import BUILD_DIR, NATMOD_DIR, REPO_ROOT

SDIST = "mpy-cross-v6-3"
SDIST_VERSION = "1.1.1"  # MicroPython 1.23.0 inside; pinned so every machine builds the same bytes
MODULE = "roam6_native"
MPY_VERSION = (6, 3)
REPO = REPO_ROOT         # (bench_hotpaths and tests/natmod read it here)
NATMOD_SRC = NATMOD_DIR
DEFAULT_OUT = os.path.join(BUILD_DIR, "natmod")

ESP_IDF_HINT = ("xtensa-esp32-elf-gcc comes with Espressif's ESP-IDF: install ESP-IDF "
                "(https://docs.espressif.com/projects/esp-idf/en/stable/esp32/get-started/), then run "
                "`. $IDF_PATH/export.sh` (or `get_idf`) in this shell so the compiler is on PATH, and build again")
COMPILERS = {
    "x64": ("gcc", "install the C compiler: apt-get install gcc (or `make setup`)"),
    "armv6m": ("arm-none-eabi-gcc",
               "install Debian's ARM compiler: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
               "(or `make setup`, which reads deps/apt.txt)"),
    "xtensawin": ("xtensa-esp32-elf-gcc", ESP_IDF_HINT),
    # RP2350 (Pico 2 W) in Arm mode: Cortex-M33 with single-precision FPU; dynruntime.mk builds it
    # for -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard, which the M33 runs
    "armv7emsp": ("arm-none-eabi-gcc",
                  "install Debian's ARM compiler: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                  "(or `make setup`, which reads deps/apt.txt)"),
    # ESP32-C3: MicroPython's dynruntime.mk calls riscv64-unknown-elf-gcc (Debian: gcc-riscv64-unknown-elf)
    "rv32imc": ("riscv64-unknown-elf-gcc",
                "install a RISC-V compiler: apt-get install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf, "
                "or ESP-IDF's riscv32-esp-elf-gcc linked under that name"),
}
ARCHS = tuple(COMPILERS)


def cache_dir():
    d = os.environ.get("ROAM6_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "roam6")
    os.makedirs(d, exist_ok=True)
    return d


class _Lock:
    """An exclusive flock on a file in the cache: parallel builds (tests, `roam6 build`) take turns."""

    def __init__(self, name):
        self.path = os.path.join(cache_dir(), name + ".lock")

    def __enter__(self):
        self.f = open(self.path, "w")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def micropython_dir(log=None):
    """The MicroPython tree to build against: $ROAM6_MPY_DIR, or the cached sdist (fetched once)."""
    env = os.environ.get("ROAM6_MPY_DIR")
    if env:
        if not os.path.isfile(os.path.join(env, "py", "dynruntime.mk")):
            raise UserError("ROAM6_MPY_DIR=%s has no py/dynruntime.mk" % env,
                            hint="point it at the top of a MicroPython source tree, or unset it to use the PyPI sdist")
        return env
    root = os.path.join(cache_dir(), "%s-%s" % (SDIST, SDIST_VERSION))
    mpy_dir = os.path.join(root, "micropython")
    stamp = os.path.join(root, ".complete")
    if os.path.exists(stamp):
        return mpy_dir
    with _Lock("sdist"):
        if os.path.exists(stamp):  # another process fetched it while we waited
            return mpy_dir
        if log:
            log("fetching the MicroPython build files (PyPI sdist %s==%s) into %s" % (SDIST, SDIST_VERSION, root))
        with tempfile.TemporaryDirectory(prefix="roam6-sdist-", dir=cache_dir()) as tmp:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                 "-d", tmp, "%s==%s" % (SDIST, SDIST_VERSION)],
                capture_output=True, text=True, timeout=600)
            archives = glob.glob(os.path.join(tmp, "*.tar.gz"))
            if proc.returncode != 0 or not archives:
                tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
                raise UserError("could not download the MicroPython build files (PyPI sdist %s==%s):\n%s"
                                % (SDIST, SDIST_VERSION, tail),
                                hint="check that pip can reach PyPI (proxy, pip.conf), or set ROAM6_MPY_DIR "
                                     "to a MicroPython source tree")
            unpack = os.path.join(tmp, "unpacked")
            with tarfile.open(archives[0]) as tf:
                tf.extractall(unpack, filter="data")
            tops = [os.path.join(unpack, d) for d in os.listdir(unpack)]
            src = [t for t in tops if os.path.isfile(os.path.join(t, "micropython", "py", "dynruntime.mk"))]
            if not src:
                raise UserError("the %s sdist has no micropython/py/dynruntime.mk" % SDIST,
                                hint="report this: the pinned sdist changed layout")
            shutil.rmtree(root, ignore_errors=True)
            shutil.move(src[0], root)
        open(stamp, "w").close()
    return mpy_dir


# The native-only .mpy that mpy_ld.py links, before dynruntime.mk's final merge: MicroPython up
# to 1.28 names it $(BUILD)/$(MOD).native.mpy, 1.29 renamed it $(BUILD)/$(MOD).mpy. The rule in the
# tree's own dynruntime.mk says which (the final merged $(MOD).mpy would land in the source folder).
LINK_TARGETS = ("$(BUILD)/$(MOD).native.mpy", "$(BUILD)/$(MOD).mpy")


def link_target(mpy_dir):
    """The path (with $(BUILD)/$(MOD) left to fill) of the native .mpy the tree's dynruntime.mk
    links; UserError naming the file when none of the known rules is there."""
    mk = os.path.join(mpy_dir, "py", "dynruntime.mk")
    try:
        with open(mk) as f:
            rules = [ln.split(":", 1)[0].strip() for ln in f if not ln.startswith(("\t", "#", " ")) and ":" in ln]
    except OSError as exc:
        raise UserError("cannot read %s: %s" % (mk, exc.strerror), hint="ROAM6_MPY_DIR must be a MicroPython tree")
    for t in LINK_TARGETS:
        if t in rules:
            return t
    raise UserError("%s has no rule for %s: a MicroPython tree this tool does not know"
                    % (mk, " or ".join(LINK_TARGETS)),
                    hint="use a MicroPython 1.23..1.29 tree, or unset ROAM6_MPY_DIR to use the pinned PyPI sdist")


def _check_arch_known(mpy_dir, arch):
    """UserError when the tree's dynruntime.mk has no branch for arch (1.23 has none for rv32imc)."""
    try:
        with open(os.path.join(mpy_dir, "py", "dynruntime.mk")) as f:
            known = "ifeq ($(ARCH),%s)" % arch in f.read()
    except OSError:
        return                     # link_target says what is wrong with the tree
    if not known:
        raise UserError("the MicroPython build files at %s cannot build native modules for %s" % (mpy_dir, arch),
                        hint="set ROAM6_MPY_DIR to a MicroPython source tree whose py/dynruntime.mk knows %s "
                             "(1.24 or newer for rv32imc)" % arch)


def obj_dir_for(arch, mpy_dir):
    """Object files per architecture, and per MicroPython tree when ROAM6_MPY_DIR names another one
    (objects compiled against one tree's headers are never linked by another's rules)."""
    base = os.path.join(cache_dir(), "natmod-obj")
    if os.environ.get("ROAM6_MPY_DIR"):
        import hashlib
        return os.path.join(base, "%s-%s" % (arch, hashlib.sha256(os.path.abspath(mpy_dir).encode()).hexdigest()[:12]))
    return os.path.join(base, arch)


def find_compiler(arch):
    """Path of the C compiler for arch, or UserError saying which one is missing and how to get it."""
    if arch not in COMPILERS:
        raise UserError("unknown native architecture %r" % arch, hint="use one of: " + ", ".join(ARCHS))
    name, hint = COMPILERS[arch]
    path = shutil.which(name)
    if not path:
        raise UserError("%s not found on PATH: it is needed to build the %s native module" % (name, arch), hint=hint)
    return path


def _check_tools():
    if not shutil.which("make"):
        raise UserError("make not found on PATH", hint="apt-get install make")
    try:
        import elftools  # noqa: F401  (tools/mpy_ld.py reads the object files with it)
    except ImportError:
        raise UserError("pyelftools is not importable by %s (MicroPython's mpy_ld.py needs it)" % sys.executable,
                        hint="pip install pyelftools (it is in roam6's dependencies: `make setup`)")


def build_natmod(arch, out_dir=DEFAULT_OUT, log=None):
    """Build roam6_native for arch (x64, armv6m, xtensawin) -> path of out_dir/<arch>/roam6_native.mpy.

    Raises UserError for anything the user can fix (missing compiler, no network for the first
    fetch); the message names it and says what to do."""
    compiler = find_compiler(arch)
    _check_tools()
    mpy_dir = micropython_dir(log)
    _check_arch_known(mpy_dir, arch)
    obj_dir = obj_dir_for(arch, mpy_dir)
    native = link_target(mpy_dir).replace("$(BUILD)", obj_dir).replace("$(MOD)", MODULE)
    env = dict(os.environ, PATH=os.path.dirname(compiler) + os.pathsep + os.environ.get("PATH", ""))
    with _Lock("natmod-" + arch):
        proc = subprocess.run(
            ["make", "-C", NATMOD_SRC, "MPY_DIR=" + mpy_dir, "ARCH=" + arch, "BUILD=" + obj_dir,
             "PYTHON=" + sys.executable, native],
            capture_output=True, text=True, timeout=300, env=env)
        if proc.returncode != 0:
            lines = (proc.stdout + proc.stderr).strip().splitlines()
            raise UserError("building the %s native module failed:\n%s" % (arch, "\n".join(lines[-40:])),
                            hint="a compiler error here is a bug in firmware/natmod/: report it with this output")
        head = read_header(native)
        if head["arch"] != arch or (head["version"], head["sub_version"]) != MPY_VERSION:
            raise UserError("%s says arch %s, mpy %d.%d; expected %s, mpy %d.%d" % (
                (native, head["arch"], head["version"], head["sub_version"], arch) + MPY_VERSION),
                hint="ROAM6_MPY_DIR must be a MicroPython tree emitting mpy 6.3")
        dest_dir = os.path.join(out_dir, arch)
        os.makedirs(dest_dir, exist_ok=True)
        dest = os.path.join(dest_dir, MODULE + ".mpy")
        with open(native, "rb") as f:
            # named after the module, not mpy_ld's output path: the same bytes from any machine
            data = with_source_name(f.read(), MODULE + ".mpy")
        old = None
        if os.path.exists(dest):
            with open(dest, "rb") as f:
                old = f.read()
        if old != data:  # leave an unchanged file alone (its mtime says when it last changed)
            tmp = dest + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, dest)
    if log:
        log("native module for %s: %s (%d bytes)" % (arch, dest, len(data)))
    return dest


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m roam6_host.natmod_build",
                                description="build roam6's native module for the given architectures")
    p.add_argument("archs", nargs="+", metavar="ARCH", help=", ".join(ARCHS))
    p.add_argument("--out", default=DEFAULT_OUT, help="output root (default build/natmod); files land in OUT/ARCH/")
    args = p.parse_args(argv)
    try:
        for arch in args.archs:
            build_natmod(arch, args.out, log=print)
    except UserError as exc:
        print("roam6: error: %s" % exc, file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
