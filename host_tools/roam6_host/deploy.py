"""Deploy a bundle (and config.json) to a board over its serial REPL with mpremote.

Only files whose SHA-256 differs on the board are copied: the board hashes its own files
(hashlib.sha256, read back with `mpremote exec`), so a second deploy of the same bundle copies
nothing. Then the board is reset the way its board.json says and its first log lines are shown:
  "hard"    machine.reset() from the raw REPL (ESP32, Pico W), then read the port again
            (a USB-CDC port such as the Pico's vanishes for a moment and is reopened)
  "restart" Ctrl-D in the raw REPL: the unix port exits and its supervisor starts it again
Paths on the board are relative to its current folder: "/" on a real board, the filesystem
folder on the unix port.

With romfs=True (`roam6 deploy --romfs`) the modules go to the board's ROMFS partition instead
(MicroPython 1.25+ firmware built with one: roam6_host.romfs), written with `mpremote romfs deploy`
when the image there differs (hashed on the board, in place), and main.py and config.json to the
filesystem; module files left there by an earlier deploy are removed (the firmware searches the
filesystem and /rom both, and a stale copy must not win). A plain deploy to a board whose ROMFS
holds roam6 clears that image for the same reason.
"""
import hashlib
import json
import os
import subprocess
import sys
import threading
import time

from . import boards, build, flash, mpy, ports
from .errors import UserError
from .romfs import IMAGE, image as romfs_image, module_files

MARK_HASH, MARK_MPY, MARK_ROM = "R6H", "R6M", "R6R"

# Runs on the board: prints "R6H <path> <sha256 hex | - (absent) | ? (no sha256)>" per path.
HASH_SCRIPT = """
import sys
try:
    import hashlib, binascii
    hashlib.sha256
except (ImportError, AttributeError):
    hashlib = None
def _r6h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return '-'
    if hashlib is None:
        f.close()
        return '?'
    d = hashlib.sha256()
    b = bytearray(256)
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        d.update(m[:n])
    f.close()
    return binascii.hexlify(d.digest()).decode()
for _p in %r:
    print('R6H', _p, _r6h(_p))
print('R6M', getattr(sys.implementation, '_mpy', 0))
# the ROMFS partition: how many, the first one's size, the sha256 of its first %d bytes, and
# whether roam6 is in the image mounted at /rom
try:
    import vfs
    _n = vfs.rom_ioctl(1)
except (ImportError, AttributeError):
    _n = -1
_s = _h = '-'
if _n > 0:
    _d = vfs.rom_ioctl(2, 0)
    if isinstance(_d, int):
        _n = -1
    elif hasattr(_d, 'ioctl'):
        _s = _d.ioctl(4, 0) * _d.ioctl(5, 0)
    else:
        _s = len(_d)
        if hashlib is not None and 0 < %d <= _s:
            _h = binascii.hexlify(hashlib.sha256(memoryview(_d)[:%d]).digest()).decode()
try:
    import os
    os.stat('/rom/roam6')
    _r = 1
except (ImportError, OSError):
    _r = 0
print('R6R', _n, _s, _h, _r)
"""

MKDIR_SCRIPT = """
import os
for _d in %r:
    try:
        os.mkdir(_d)
    except OSError:
        pass
"""


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def local_files(bundle_dir, config=None):
    """{board path: local path} for every file of the bundle (host-only files left out) + config.json."""
    if not os.path.isfile(os.path.join(bundle_dir, build.INDEX)):
        raise UserError("%s is not a roam6 bundle (no %s)" % (bundle_dir, build.INDEX),
                        hint="build one first: roam6 build --board BOARD --out %s" % bundle_dir)
    files = {}
    for root, dirs, names in os.walk(bundle_dir):
        dirs.sort()
        for n in sorted(names):
            full = os.path.join(root, n)
            rel = os.path.relpath(full, bundle_dir).replace(os.sep, "/")
            if rel not in build.HOST_ONLY:
                files[rel] = full
    if config:
        if os.path.isdir(config):
            raise UserError("config file %s is a folder" % config,
                            hint="give the device's config.json, e.g. --config esp1.json")
        if not os.path.isfile(config):
            raise UserError("config file %s does not exist" % config,
                            hint="make one: roam6 provision --nai ... --out %s" % config)
        try:
            with open(config) as f:
                data = json.load(f)
        except ValueError as exc:
            raise UserError("config file %s is not valid JSON: %s" % (config, exc),
                            hint="roam6 provision writes a valid one")
        except OSError as exc:
            raise UserError("cannot read config file %s: %s" % (config, exc.strerror), hint="check its permissions")
        from roam6.node.config import ConfigError, parse_config
        if not isinstance(data, dict):
            raise UserError("config file %s must hold a JSON object, not a %s" % (config, type(data).__name__),
                            hint="write one with roam6 provision (docs/CONTRACTS.md §5)")
        try:
            parse_config(data)        # the board's own check: refuse here what would stop the MN at start
        except ConfigError as exc:
            raise UserError("config file %s: %s" % (config, str(exc).replace("config: ", "", 1)),
                            hint="fix it (docs/CONTRACTS.md §5), or write a new one with roam6 provision")
        files["config.json"] = config
    return files


def check_config_for_board(config, board):
    """Refuse a config whose transports the board's bundle lacks (udp6 or ip6 on an ESP32): the MN
    would stop at start. A config without "transports" means the firmware's default, all three."""
    with open(config) as f:
        data = json.load(f)
    from roam6.node.config import parse_config
    wanted = parse_config(data).transports
    bad = [t for t in wanted if t not in board["transports"]]
    if bad:
        have = ", ".join(board["transports"])
        raise UserError("config file %s asks for transport%s %s, which board %s cannot use (it has: %s)"
                        % (config, "s" if len(bad) > 1 else "", ", ".join(bad), board["name"], have),
                        hint="set \"transports\": %s in it, or provision it for the board: roam6 provision ... "
                             "--board %s --force" % (json.dumps(board["transports"]), board["name"]))


class Mpremote:
    """mpremote as a subprocess, always with `resume` (no soft reset: it would end the unix port)."""

    def __init__(self, port, timeout=60):
        self.port = port
        self.timeout = timeout
        self.calls = 0

    def run(self, *cmd, passthrough=False, timeout=None, log=print):
        """Run one mpremote command line; with passthrough its lines go to `log` as they come
        (mpremote names each file as it copies it: that is the progress)."""
        argv = [sys.executable, "-m", "mpremote", "connect", self.port, "resume"] + list(cmd)
        timeout = timeout or self.timeout
        self.calls += 1
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        timer = threading.Timer(timeout, proc.kill)   # bounds every wait, even on a silent board
        timer.start()
        try:
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if passthrough:
                    log(line.rstrip("\n"))
            err = proc.stderr.read()
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        out = "".join(lines)
        if rc < 0:
            raise UserError("the board on %s stopped answering (mpremote gave up after %ss)" % (self.port, timeout),
                            hint="unplug and replug it, then run again", exit_code=1)
        if rc != 0:
            raise self._explain(out + err)
        return out

    def _explain(self, out):
        if "could not enter raw repl" in out:
            return UserError("the board on %s does not give its REPL" % self.port,
                             hint="is MicroPython on it (roam6 flash)? "
                                  "Is another program (a serial monitor) using the port?",
                             exit_code=1)
        if "failed to access" in out or "could not open port" in out or "no device found" in out:
            return UserError("cannot open %s" % self.port, hint="check the port and that no other program holds it",
                             exit_code=1)
        last = "\n".join(out.strip().splitlines()[-4:])
        return UserError("mpremote failed on %s:\n%s" % (self.port, last), hint="see the output above", exit_code=1)


def board_hashes(mp, paths, image_len=0):
    """({path: hex or '-' or '?'}, board's sys.implementation._mpy, ROM state): the ROM state is
    {"partitions": n (-1: no vfs.rom_ioctl), "size": bytes of the first, "sha256": of its first
    image_len bytes (or '-'), "roam6": roam6 is in the image mounted at /rom}."""
    out = mp.run("exec", HASH_SCRIPT % (list(paths), image_len, image_len, image_len))
    hashes, mpy_flags, rom = {}, None, {"partitions": -1, "size": 0, "sha256": "-", "roam6": False}
    for line in out.splitlines():
        parts = line.strip().split(" ")
        if parts[0] == MARK_HASH and len(parts) == 3:
            hashes[parts[1]] = parts[2]
        elif parts[0] == MARK_MPY and len(parts) == 2:
            mpy_flags = int(parts[1])
        elif parts[0] == MARK_ROM and len(parts) == 5:
            rom = {"partitions": int(parts[1]), "size": int(parts[2]) if parts[2].isdigit() else 0,
                   "sha256": parts[3], "roam6": parts[4] == "1"}
    missing = [p for p in paths if p not in hashes]
    if missing:
        raise UserError("the board did not report hashes for %d files (first: %s)" % (len(missing), missing[0]),
                        hint="its output was:\n" + out[-500:], exit_code=1)
    return hashes, mpy_flags, rom


def check_native_compat(files, mpy_flags):
    """Refuse .mpy files with machine code for another arch or mpy sub-version than the board's."""
    if not mpy_flags:
        return
    b_ver, b_sub, b_arch = mpy_flags & 0xFF, (mpy_flags >> 8) & 3, mpy.ARCH_NAMES.get(mpy_flags >> 10)
    for rel, local in files.items():
        if not rel.endswith(".mpy"):
            continue
        h = mpy.read_header(local)
        if h["version"] != b_ver:
            raise UserError("%s is mpy v%d but the board runs mpy v%d" % (rel, h["version"], b_ver),
                            hint="rebuild with the mpy-cross matching the board's MicroPython", exit_code=1)
        if h["arch"] and (h["arch"] != b_arch or h["sub_version"] != b_sub):
            raise UserError("%s holds machine code for %s (mpy v%d.%d) but the board is %s (mpy v%d.%d)"
                            % (rel, h["arch"], h["version"], h["sub_version"], b_arch, b_ver, b_sub),
                            hint="build for this board: roam6 build --board <its name>", exit_code=1)


def _parents(paths):
    dirs = set()
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return sorted(dirs, key=lambda d: (d.count("/"), d))


def deploy(port, bundle_dir, config=None, board_name=None, reset=True, log=print, log_lines=None, log_timeout=None,
           romfs=False):
    """Copy what changed, reset, show the first log lines. Returns a dict: copied, unchanged, logs,
    removed (module files taken off the filesystem), rom ("written", "unchanged", "cleared" or None).
    romfs: the modules go to the board's ROMFS partition (see the module's docstring)."""
    files = local_files(bundle_dir, config)
    with open(os.path.join(bundle_dir, build.INDEX)) as f:
        index = json.load(f)
    if board_name and board_name != index.get("board"):
        raise UserError("bundle %s is built for board %s, not %s" % (bundle_dir, index.get("board"), board_name),
                        hint="roam6 build --board %s --out DIR, then deploy DIR" % board_name)
    board = boards.load_board(index["board"])
    if config:
        check_config_for_board(config, board)
    image = None
    in_image = {}
    if romfs:
        in_image = module_files(bundle_dir)
        image = romfs_image(in_image)
    port = flash.check_port(ports.resolve(port, board, log=log))
    ports.probe_repl(port)
    mp = Mpremote(port)
    to_copy = {p: l for p, l in files.items() if p not in in_image}
    paths = sorted(to_copy)
    asked = paths + sorted(in_image) + ([] if "config.json" in files else ["config.json"])
    log("asking the board on %s for the hashes of %d files" % (port, len(asked)))
    remote, mpy_flags, rom_state = board_hashes(mp, asked, len(image) if image else 0)
    if remote.get("config.json") == "-" and "config.json" not in files:
        log("warning: the board has no config.json and none was given: the MN will stop at start "
            "(make one with `roam6 provision`, then deploy with --config)")
    check_native_compat(files, mpy_flags)
    result = {"copied": [], "unchanged": [], "logs": [], "mpremote_calls": 0, "removed": [], "rom": None}
    if image is not None:
        result["rom"] = _write_rom(mp, image, rom_state, port, log)
        # module files an earlier plain deploy left on the filesystem would be imported instead
        result["removed"] = [p for p in sorted(in_image) if remote.get(p, "-") != "-"]
    elif rom_state["roam6"]:
        log("the board's ROMFS holds roam6 modules (an earlier deploy --romfs): clearing it, so the files "
            "copied now are the ones imported")
        _write_rom(mp, romfs_image({}), rom_state, port, log)
        result["rom"] = "cleared"
    elif rom_state["partitions"] > 0:
        log("note: this board's firmware has a ROMFS partition (%d bytes): `roam6 deploy --romfs` puts the "
            "modules there, where their code runs from flash instead of the heap" % rom_state["size"])
    if result["removed"]:
        log("removing %d module files from the board's filesystem (they are in ROMFS now)" % len(result["removed"]))
        mp.run("exec", REMOVE_SCRIPT % (result["removed"], _parents(result["removed"])[::-1]))
    changed = [p for p in paths if remote[p] != _sha256(files[p])]
    result["unchanged"] = [p for p in paths if p not in changed]
    result["copied"] = changed
    if not changed:
        log("board up to date: %d files unchanged, nothing copied" % len(result["unchanged"]))
    else:
        log("copying %d changed files (%d unchanged)" % (len(changed), len(result["unchanged"])))
        dirs = _parents(changed)          # mkdir of an existing folder fails quietly on the board
        if dirs:
            mp.run("exec", MKDIR_SCRIPT % (dirs,))
        cmd = []
        for p in changed:
            cmd += (["+"] if cmd else []) + ["fs", "cp", files[p], ":" + p]
        mp.run(*cmd, passthrough=True, timeout=60 + 5 * len(changed), log=log)
        after, _, _ = board_hashes(mp, changed)
        bad = [p for p in changed if after[p] != _sha256(files[p])]
        if bad:
            raise UserError("%d files differ on the board after copying (first: %s)" % (len(bad), bad[0]),
                            hint="the filesystem may be full: `mpremote df`; or run deploy again", exit_code=1)
        log("copied and verified %d files" % len(changed))
    result["mpremote_calls"] = mp.calls
    touched = changed or result["removed"] or result["rom"] in ("written", "cleared")
    if reset and touched:
        dep = board["deploy"]
        result["logs"] = reset_and_read(port, dep.get("reset", "hard"), log_lines or dep.get("log_lines", 10),
                                        log_timeout or dep.get("log_timeout_s", 10), log=log)
        if dep.get("reset") == "restart" and not result["logs"]:
            log("no output after the restart: %s" % dep.get("restart_note", ""))
    elif reset:
        log("nothing changed: the board was not reset")
    elif result["rom"] in ("written", "cleared"):
        log("the firmware mounts the new ROMFS image at its next reset: until then /rom is unmounted")
    return result


REMOVE_SCRIPT = """
import os
for _p in %r:
    os.remove(_p)
for _d in %r:
    try:
        os.rmdir(_d)
    except OSError:
        pass
"""


def _write_rom(mp, image, state, port, log):
    """Put `image` in the board's first ROMFS partition unless it is there already (its hash):
    "written" or "unchanged"; a board without one is told what it needs."""
    if state["partitions"] <= 0:
        raise UserError("the MicroPython on %s has no ROMFS partition (%s)"
                        % (port, "no vfs.rom_ioctl" if state["partitions"] < 0 else "vfs.rom_ioctl(1) is 0"),
                        hint="flash a firmware built with ROMFS (MicroPython 1.25+, MICROPY_VFS_ROM and a romfs "
                             "partition; roam6 flash --firmware F.bin), or deploy without --romfs (the modules "
                             "then load into the heap)", exit_code=1)
    if len(image) > state["size"]:
        raise UserError("the ROMFS image is %d bytes but the board's ROMFS partition holds %d"
                        % (len(image), state["size"]),
                        hint="a firmware with a bigger romfs partition, or deploy without --romfs", exit_code=1)
    want = hashlib.sha256(image).hexdigest()
    if state["sha256"] == want:
        log("ROMFS: the board's image is this one (%d bytes): not written" % len(image))
        return "unchanged"
    import tempfile
    with tempfile.TemporaryDirectory(prefix="roam6-romfs-") as tmp:
        path = os.path.join(tmp, IMAGE)
        with open(path, "wb") as f:
            f.write(image)
        log("ROMFS: writing the modules' image (%d bytes) to the board's partition (%d bytes)" % (len(image),
                                                                                                  state["size"]))
        mp.run("romfs", "-p", "0", "deploy", path, passthrough=True, timeout=60 + len(image) // 512,
               log=lambda line: log("  " + line.split("\r")[-1]) if line.strip() else None)
    _, _, after = board_hashes(mp, [], len(image))
    if after["sha256"] not in (want, "-"):
        raise UserError("the board's ROMFS partition does not hold the image after writing it",
                        hint="run deploy --romfs again; if it persists the partition may be worn or locked",
                        exit_code=1)
    return "written"


def _enter_raw_repl(ser, timeout=5):
    ser.write(b"\r\x03\x03")
    time.sleep(0.1)
    ser.reset_input_buffer()
    ser.write(b"\x01")
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"raw REPL; CTRL-B to exit\r\n>"):
        if time.monotonic() > deadline:
            raise UserError("the board does not enter its raw REPL to be reset", hint="press its reset button",
                            exit_code=1)
        buf += ser.read(64)


HARD_RESET_CODE = "import machine\nmachine.reset()\n"


def reset_and_read(port, how, lines, timeout, log=print, code=HARD_RESET_CODE):
    """Reset the board (`how` from board.json) and return its first `lines` output lines.
    `code` is what a "hard" reset runs in the raw REPL."""
    import serial

    ser = ports.open_serial(port, 5)
    try:
        _enter_raw_repl(ser)
        if how == "restart":
            ser.write(b"\x04")              # raw REPL Ctrl-D on empty input: the unix port exits
        elif how == "hard":
            ser.write(code.encode() + b"\x04")
        else:
            raise UserError("board.json deploy.reset %r is not hard or restart" % how, hint="fix the board profile")
        log("reset (%s); first lines from the board:" % how)
        out, buf = [], b""
        deadline = time.monotonic() + timeout
        while len(out) < lines and time.monotonic() < deadline:
            try:
                chunk = ser.read(256)
            except (serial.SerialException, OSError):
                ser.close()                   # USB-CDC re-enumerates after machine.reset()
                ser = ports.open_serial(port, max(1, deadline - time.monotonic()))
                continue
            buf += chunk
            while b"\n" in buf and len(out) < lines:
                raw, buf = buf.split(b"\n", 1)
                text = raw.decode("utf-8", "replace").replace("\x04", "").strip("\r")
                if not out:
                    if text.startswith("OK"):  # the raw REPL's acknowledgement of the reset command
                        text = text[2:]
                    if text.strip() in ("", ">"):
                        continue
                out.append(text)
                log("  board| " + text)
        return out
    finally:
        ser.close()
