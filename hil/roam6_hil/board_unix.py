"""The virtual board: the MicroPython unix port running boards/unix/main.py in the bench's `board`
namespace, with a board profile's heap, transports and hot-path tier (CONTRACTS §8.2)."""
import json
import os
import shutil
import subprocess

from roam6_host.paths import BOARDS_DIR, BUILD_DIR, FIRMWARE_DIR, micropython_exe

from .eventlog import EventProc
from .profiles import profile

BOARD_UNIX = os.path.join(BOARDS_DIR, "unix")


def _newest_mtime(*dirs):
    newest = 0.0
    for d in dirs:
        for base, _dirs, files in os.walk(d):
            for f in files:
                if f.endswith((".py", ".json", ".c", ".h")):
                    newest = max(newest, os.path.getmtime(os.path.join(base, f)))
    return newest


def firmware_bundle(native):
    """The MN as a board runs it: .mpy files from `roam6 build --board unix` (a board never compiles
    the sources itself, and compiling them would not fit an ESP32's heap), cached in build/hil/
    under the sources' newest mtime, so a change rebuilds it; built aside and renamed into place,
    so a run never sees a half-built bundle (or one another run is rebuilding)."""
    from roam6_host import build
    src = _newest_mtime(FIRMWARE_DIR, BOARD_UNIX)
    base = os.path.join(BUILD_DIR, "hil")
    name = "unix-%s-%d" % ("natmod" if native else "mpy", int(src * 1000))
    out = os.path.join(base, name)
    if os.path.exists(os.path.join(out, ".built")):
        return out
    os.makedirs(base, exist_ok=True)
    tmp = "%s.tmp%d" % (out, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    build.build_bundle("unix", out_dir=tmp, natmod=native, log=lambda *a, **k: None)
    with open(os.path.join(tmp, ".built"), "w") as f:
        f.write("built from the sources as of %f\n" % src)
    try:
        os.rename(tmp, out)
    except OSError:                  # another run finished the same bundle first: use that one
        shutil.rmtree(tmp, ignore_errors=True)
    # keep the three newest bundles of this kind; older ones belong to older sources
    kind = name.rsplit("-", 1)[0] + "-"
    old = sorted((d for d in os.listdir(base) if d.startswith(kind) and ".tmp" not in d),
                 key=lambda d: int(d.rsplit("-", 1)[1]))[:-3]
    for d in old:
        shutil.rmtree(os.path.join(base, d), ignore_errors=True)
    return out


STAND_IN_HEAP_KB = 32     # on top of a profile's heap when the board addresses itself (see UnixBoard.start)

def start_mn(bench, config_path, heap, logpath=None, accel=None, native=False, from_source=False, extra=()):
    """The one way the bench starts the MN: the MicroPython unix port in the `board` namespace with
    -X heapsize=`heap` (e.g. "64K"), as a board runs it: from the folder of the .mpy bundle of
    `roam6 build --board unix` (with the native module if `native`), which is the board's
    filesystem root (every module's __file__ is a qstr on the heap: a deep checkout's paths would
    cost ~2.5 KB of 64). from_source: the .py files instead (they need a bigger heap). accel caps
    the hot-path tier ($ROAM6_ACCEL; None: the firmware's default). Returns its EventProc."""
    if from_source:
        path, main, cwd = [FIRMWARE_DIR, BOARD_UNIX], os.path.join(BOARD_UNIX, "main.py"), bench.workdir
    else:
        path, main, cwd = ["."], "main.py", firmware_bundle(native)
    # .frozen first: the unix port's asyncio is frozen into it
    env = dict(os.environ, MICROPYPATH=":".join([".frozen"] + path))
    env.pop("ROAM6_NATMOD_DIR", None)
    if accel:
        env["ROAM6_ACCEL"] = accel
    argv = [micropython_exe(), "-X", "heapsize=%s" % heap, main, os.path.abspath(config_path)] + list(extra)
    p = bench.popen("board", argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    return EventProc(bench, p, logpath)


class UnixBoard:
    name = "unix"

    def __init__(self, bench, profile_name="esp32", folder=None, from_source=False):
        self.bench = bench
        self.from_source = from_source
        self.profile = profile(profile_name)
        # absolute: the MN runs in its bundle's folder and is given paths in this one
        self.folder = os.path.abspath(folder or bench.path("board"))
        os.makedirs(self.folder, exist_ok=True)
        self.mn = None               # the MN's EventProc once started
        self.config = None

    @property
    def events(self):
        return self.mn.events if self.mn else []

    def narrow(self, config):
        """config.json as the profile allows it: transports narrowed to the board's."""
        cfg = dict(config)
        allowed = self.profile["transports"]
        cfg["transports"] = [t for t in cfg.get("transports", allowed) if t in allowed] or list(allowed)
        cfg.setdefault("state_file", os.path.join(self.folder, "roam6.state"))
        return cfg

    def start(self, config, args=()):
        self.config = self.narrow(config)
        path = os.path.join(self.folder, "config.json")
        with open(path, "w") as f:
            json.dump(self.config, f, indent=1)
        heap_kb = self.profile["heap_kb"]
        if self.config.get("addressing") in ("dna", "dhcp"):
            # the unix board's stand-in for a board's own network stack (DHCPv4, ARP/NS probes, network
            # memory: ~19 KB on this 64-bit port) is not something an ESP32 or Pico W loads: its heap
            # comes on top of the profile's, or the stand-in's peaks starve the MN (out of memory in the
            # link adapter, seen at 100 KB)
            heap_kb += STAND_IN_HEAP_KB
        self.mn = start_mn(self.bench, path, round(heap_kb * 1024), os.path.join(self.folder, "mn.log"),
                           accel=self.profile["accel"], native=self.profile["accel"] == "native",
                           from_source=self.from_source, extra=args)
        return self

    def wait_event(self, pred, timeout, since=0.0):
        return self.mn.wait_for(pred, timeout, since)

    def alive(self):
        return self.mn is not None and self.mn.alive()

    def log_tail(self, n=15):
        try:
            with open(os.path.join(self.folder, "mn.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.mn is not None:
            self.mn.stop(grace=1.0)
