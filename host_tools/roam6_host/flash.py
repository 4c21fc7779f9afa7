"""Put MicroPython on a board: esptool for ESP32, a UF2 copy to the BOOTSEL drive for RP2040.

Every check that can fail on the user's side (file, chip, port, permissions, drive) runs before
anything is written, and each has its own message; esptool's own failures are translated too.
"""
import glob
import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
import time

from . import images, ports
from .errors import UserError


# ---- serial ports ----------------------------------------------------------------------------

def serial_candidates():
    return sorted(glob.glob("/dev/ttyUSB*") + glob.glob("/dev/ttyACM*") + glob.glob("/dev/serial/by-id/*"))


def check_port(port):
    """A serial port the user can open read-write; UserError for missing / not permitted."""
    if not port:
        found = serial_candidates()
        raise UserError("--port is missing", hint=("serial ports here: " + " ".join(found)) if found
                        else "plug the board in; it shows up as /dev/ttyUSB0 or /dev/ttyACM0")
    if not os.path.exists(port):
        found = serial_candidates()
        raise UserError("serial port %s does not exist" % port,
                        hint=("ports present: " + " ".join(found)) if found else
                        "no USB serial port is present: check the cable (some are charge-only) and `dmesg | tail`")
    if not stat.S_ISCHR(os.stat(port).st_mode):
        raise UserError("%s is not a serial port (not a character device)" % port,
                        hint="give the board's port, e.g. --port /dev/ttyUSB0 or /dev/ttyACM0")
    if not os.access(port, os.R_OK | os.W_OK):
        raise UserError("permission denied on %s" % port, hint=dialout_hint(port))
    return port


def dialout_hint(port):
    try:
        group = grp.getgrgid(os.stat(port).st_gid).gr_name
    except (KeyError, OSError):
        group = "dialout"
    user = pwd.getpwuid(os.getuid()).pw_name
    return "add yourself to group %s: sudo usermod -aG %s %s, then log out and back in" % (group, group, user)


# ---- ESP32 -----------------------------------------------------------------------------------

def esptool_args(board, port, firmware, baud=None, erase=None, connect_attempts=None):
    """The esptool command line (after `python -m esptool`) from the board profile."""
    fl = board["flash"]
    args = ["--chip", fl["chip"], "--port", port, "--baud", str(baud or fl.get("baud", 460800))]
    if connect_attempts is not None:
        args += ["--connect-attempts", str(connect_attempts)]
    args.append("write-flash")
    if fl.get("erase", True) if erase is None else erase:
        args.append("--erase-all")   # one connection: erase and write, as micropython.org says to do
    args += ["-z", fl["offset"], firmware]
    return args


# esptool's words -> what the user should do
ESPTOOL_FAILURES = [
    ("No serial data received", "the board on {port} does not answer the bootloader",
     "hold the BOOT button, press and release EN/RESET, release BOOT, then run again (some boards need --baud 115200)"),
    ("Failed to connect", "could not talk to the bootloader on {port}",
     "hold the BOOT button, press and release EN/RESET, release BOOT, then run again"),
    ("Permission denied", "permission denied on {port}", None),
    ("could not open port", "cannot open {port}", "is another program (a serial monitor, mpremote) holding it?"),
    ("port is busy", "{port} is busy", "close the program holding it (serial monitor, mpremote, screen)"),
]


def explain_esptool(output, port, chip):
    if "This chip is" in output:
        line = [ln for ln in output.splitlines() if "This chip is" in ln][0].split("This chip is", 1)[1]
        return UserError("wrong chip: the board on %s is %s" % (port, line.split(".")[0].strip()),
                         hint="use the board profile and firmware for that chip", exit_code=1)
    for needle, msg, hint in ESPTOOL_FAILURES:
        if needle in output:
            if hint is None:
                hint = dialout_hint(port)
            return UserError(msg.format(port=port, chip=chip.upper()), hint=hint, exit_code=1)
    tail = "\n".join(output.strip().splitlines()[-3:])
    return UserError("esptool failed:\n%s" % tail, hint="see esptool's output above", exit_code=1)


def run_streaming(cmd, timeout=None):
    """Run cmd with its output passed through as it comes (esptool's progress bar), and kept."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    kept = bytearray()
    try:
        while True:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            kept += chunk
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        rc = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rc, kept.decode("utf-8", "replace")


def flash_esp32(board, port, firmware, baud=None, erase=None, connect_attempts=None, log=print):
    fl = board["flash"]
    info = images.check_esp_image(firmware, int(fl["chip_id"]), fl["chip"].upper(), offset=int(fl["offset"], 0))
    port = check_port(ports.resolve(port, board, log=log))
    args = esptool_args(board, port, firmware, baud=baud, erase=erase, connect_attempts=connect_attempts)
    log("%s: %d bytes, %s image, %d segments -> %s at %s (%s baud)"
        % (firmware, info["size"], fl["chip"].upper(), info["segments"], port, fl["offset"],
           args[args.index("--baud") + 1]))
    rc, out = run_streaming([sys.executable, "-m", "esptool"] + args)
    if rc != 0:
        raise explain_esptool(out, port, fl["chip"])
    log("flashed. Next: roam6 deploy --board %s --port %s" % (board["name"], port))
    return args


# ---- RP2040 (UF2 to the BOOTSEL drive) -------------------------------------------------------

def read_info_uf2(drive):
    try:
        with open(os.path.join(drive, "INFO_UF2.TXT"), errors="replace") as f:
            return f.read()
    except OSError:
        return None


def info_board_id(text):
    for line in (text or "").splitlines():
        if line.lower().startswith("board-id:"):
            return line.split(":", 1)[1].strip()
    return None


def _mount_points(mounts_file="/proc/mounts"):
    try:
        with open(mounts_file) as f:
            return [ln.split()[1].replace("\\040", " ") for ln in f if len(ln.split()) > 1]
    except OSError:
        return []


def find_bootsel_drives(board_id, extra_roots=(), mounts_file="/proc/mounts"):
    """Mounted folders whose INFO_UF2.TXT names the board (Board-ID: RPI-RP2 for RP2040)."""
    user = os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name
    cands = list(extra_roots) + _mount_points(mounts_file)
    for root in ("/media/%s" % user, "/run/media/%s" % user, "/media", "/mnt"):
        cands += glob.glob(os.path.join(root, "*"))
    out = []
    for c in cands:
        if c in out:
            continue
        bid = info_board_id(read_info_uf2(c))
        if bid and bid.upper().startswith(board_id.upper()):
            out.append(c)
    return out


def copy_uf2(firmware, drive, log=print):
    """Copy in chunks with progress; the board reboots by itself once the last block lands."""
    size = os.path.getsize(firmware)
    dst = os.path.join(drive, os.path.basename(firmware))
    done, step = 0, max(size // 10, 65536)
    next_report = step
    try:
        with open(firmware, "rb") as src, open(dst, "wb") as out:
            while True:
                chunk = src.read(65536)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if done >= next_report or done == size:
                    log("  %3d%%  %d/%d bytes" % (done * 100 // size, done, size))
                    next_report += step
            out.flush()
            os.fsync(out.fileno())
    except PermissionError:
        raise UserError("permission denied writing to %s" % drive,
                        hint="mount the drive as your user (desktop automount does), or run with sudo") from None
    except OSError as exc:
        # the board may reboot (and the drive vanish) as the last block lands: that is success
        if done < size:
            raise UserError("copy to %s failed after %d of %d bytes: %s" % (drive, done, size, exc.strerror),
                            hint="re-enter BOOTSEL mode and run again") from None
    return dst


def wait_reboot(drive, timeout, log=print):
    """The boot ROM reboots into the new firmware once the whole UF2 is in: its drive goes away.
    A drive still there after `timeout` seconds means the ROM did not take the file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_info_uf2(drive) is None:
            log("the board left BOOTSEL mode and is starting MicroPython")
            return True
        time.sleep(0.2)
    log("warning: %s is still there after %ds: the boot ROM did not take the UF2 (a file for another "
        "board is ignored silently); check it with `roam6 flash --check`, or replug the board" % (drive, timeout))
    return False


def _pico_port(port, board, log):
    """The serial port of a Pico running MicroPython to reboot into BOOTSEL, or None: with "auto"
    the one attached (none: None; several: UserError listing them), else `port` as given."""
    if port == "auto" and not ports.candidates(board):
        return None
    return check_port(ports.resolve(port, board, log=log))


def reboot_to_bootsel(port, timeout=20):
    """Ask MicroPython on `port` to enter the boot ROM (machine.bootloader(), as `mpremote
    bootloader` does): the Pico then leaves USB serial and comes back as its BOOTSEL drive."""
    ports.probe_repl(port)                      # bounded: is MicroPython there at all?
    try:   # resume: no soft reset before it (nothing to gain from one)
        r = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "resume", "bootloader"],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError("the board on %s did not take `mpremote bootloader` within %ds" % (port, timeout),
                        hint="hold BOOTSEL while plugging it in instead", exit_code=1) from None
    if r.returncode != 0:
        raise UserError("mpremote bootloader failed on %s: %s" % (port, (r.stdout + r.stderr).strip()[-200:]),
                        hint="hold BOOTSEL while plugging it in instead", exit_code=1)


def wait_bootsel(board_id, timeout, extra_roots=(), mounts_file="/proc/mounts"):
    """The BOOTSEL drives mounted within `timeout` seconds (the desktop's automounter takes a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        drives = find_bootsel_drives(board_id, extra_roots=extra_roots, mounts_file=mounts_file)
        if drives or time.monotonic() > deadline:
            return drives
        time.sleep(0.2)


def flash_rp2040(board, firmware, drive=None, log=print, extra_roots=(), mounts_file="/proc/mounts", wait_s=10,
                 port=None, bootsel_wait_s=15, use_picotool=True):
    """Copy the UF2 to the board's BOOTSEL drive: `drive`, or the one mounted; with none mounted and
    `port` ("auto": the one Pico attached) a Pico running MicroPython is rebooted into BOOTSEL
    through its REPL first (no button needed). With picotool installed (and no `drive`), picotool
    loads it over USB instead (picotool.py)."""
    fl = board["flash"]
    family = int(fl["uf2_family_id"], 0)
    chip = fl.get("chip", "RP2040")
    info = images.check_uf2(firmware, family, chip)
    if not drive and use_picotool:
        from . import picotool
        if picotool.exe():
            return picotool.flash(board, firmware, lambda: _pico_port(port, board, log) if port is not None else None,
                                  reboot_to_bootsel, bootsel_wait_s, log=log)
    board_id = fl.get("bootsel_board_id", "RPI-RP2")
    if drive:
        if not os.path.isdir(drive):
            raise UserError("--drive %s is not a folder" % drive, hint="pass where the RPI-RP2 drive is mounted")
        bid = info_board_id(read_info_uf2(drive))
        if bid is None:
            raise UserError("%s has no INFO_UF2.TXT: it is not a board in BOOTSEL mode" % drive,
                            hint=fl.get("bootsel_hint"))
        if not bid.upper().startswith(board_id.upper()):
            raise UserError("%s is a %s boot drive, not %s" % (drive, bid, board_id),
                            hint="that is another board (an RP2350 says RP2350): use its own firmware")
    else:
        drives = find_bootsel_drives(board_id, extra_roots=extra_roots, mounts_file=mounts_file)
        pico = _pico_port(port, board, log) if not drives and port is not None else None
        if pico:
            log("no %s drive is mounted: asking MicroPython on %s to reboot into BOOTSEL (mpremote bootloader)"
                % (board_id, pico))
            reboot_to_bootsel(pico)
            drives = wait_bootsel(board_id, bootsel_wait_s, extra_roots=extra_roots, mounts_file=mounts_file)
            if not drives:
                raise UserError("the board on %s was sent to BOOTSEL mode, but no %s drive was mounted within %ds"
                                % (pico, board_id, bootsel_wait_s),
                                hint="on a machine without an automounter mount it (lsblk shows a small vfat disk "
                                     "labelled %s) and pass the folder with --drive" % board_id)
        if not drives:
            raise UserError("no %s drive (a board in BOOTSEL mode) is mounted" % board_id,
                            hint=fl.get("bootsel_hint", "") + "; if it appears but is not mounted, mount it "
                            "(or pass its folder with --drive)")
        if len(drives) > 1:
            raise UserError("several boards are in BOOTSEL mode: %s" % ", ".join(drives), hint="pick one with --drive")
        drive = drives[0]
    free = shutil.disk_usage(drive).free
    if free and free < os.path.getsize(firmware) // 2:
        log("note: %s reports %d bytes free; the BOOTSEL drive's size is fake, copying anyway" % (drive, free))
    log("%s: UF2, %d blocks, %d bytes for %s -> %s" % (firmware, info["blocks"], info["bytes"], chip, drive))
    dst = copy_uf2(firmware, drive, log=log)
    if wait_s and wait_reboot(drive, wait_s, log=log):
        log("its serial port appears as /dev/ttyACM0 (usually). Next: roam6 deploy --board %s --port /dev/ttyACM0"
            % board["name"])
    return dst
