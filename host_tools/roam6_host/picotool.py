"""Flashing a Pico (RP2040/RP2350) with picotool when it is installed: Raspberry Pi's own tool
talks to the boot ROM over USB, so no BOOTSEL drive has to be mounted (no automounter needed),
and `load -v` reads the flash back to verify it. `roam6 flash --board rp2040` uses it when
`picotool` is on PATH (and no --drive is given, nor --no-picotool); otherwise the UF2 is copied
to the drive as before (flash.py).

  picotool info              is a board in BOOTSEL mode on USB? (exit 0 and a description)
  picotool load -v -x -t uf2 FILE   write, verify, then run it

Install: Debian 13 and Ubuntu 24.04 have a `picotool` package (Debian 12 does not); else build it
from github.com/raspberrypi/picotool. Without its udev rules (udev/99-picotool.rules in its
source) only root may open the device.
"""
import shutil
import subprocess
import time

from .errors import UserError

PERMISSION_HINT = ("picotool could not open the USB device: install its udev rules (udev/99-picotool.rules from "
                   "picotool's source into /etc/udev/rules.d, then `udevadm control --reload` and replug), or run "
                   "as root")


def exe():
    return shutil.which("picotool")


def _run(argv, timeout):
    try:
        r = subprocess.run([exe()] + argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError("picotool %s did not finish within %ds" % (argv[0], timeout),
                        hint="replug the board in BOOTSEL mode and run again, or pass --no-picotool", exit_code=1)
    return r.returncode, (r.stdout + r.stderr).strip()


def info(timeout=15):
    """(True, text) when picotool sees a board in BOOTSEL mode, else (False, what it said)."""
    rc, text = _run(["info"], timeout)
    if rc != 0 and ("sudo" in text or "permission" in text.lower() or "unable to connect" in text):
        raise UserError("picotool sees a board in BOOTSEL mode but cannot open it: %s" % text.splitlines()[-1],
                        hint=PERMISSION_HINT)
    return rc == 0, text


def wait_device(timeout):
    """Poll `picotool info` until a board in BOOTSEL mode answers (True) or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        ok, _text = info()
        if ok:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)


def load(firmware, log=print, timeout=180):
    """Write, verify and start the UF2; a failure raises UserError with picotool's own words."""
    rc, text = _run(["load", "-v", "-x", "-t", "uf2", firmware], timeout)
    if rc != 0:
        last = text.splitlines()[-1] if text else "exit code %d" % rc
        hint = PERMISSION_HINT if ("sudo" in text or "unable to connect" in text) else \
            "several boards in BOOTSEL mode: leave one attached" if "ultiple" in text else \
            "replug the board in BOOTSEL mode and run again, or copy the UF2 yourself (--no-picotool)"
        raise UserError("picotool load failed: %s" % last, hint=hint, exit_code=1)
    for line in text.splitlines():
        if line.strip():
            log("picotool: " + line.strip())


def flash(board, firmware, pico_port, reboot, bootsel_wait_s, log=print):
    """The picotool path of `flash_rp2040` (the UF2 is checked already): a board in BOOTSEL mode,
    or one running MicroPython (`pico_port()`: its port or None) rebooted into it by `reboot(port)`;
    then load. Returns "picotool"."""
    ok, text = info()
    if not ok:
        port = pico_port()
        if not port:
            raise UserError("picotool found no board in BOOTSEL mode (%s)" % (text.splitlines()[-1] if text else "-"),
                            hint=board["flash"].get("bootsel_hint", "") + "; or pass --no-picotool to copy the UF2 "
                            "to a mounted drive")
        log("no board in BOOTSEL mode: asking MicroPython on %s to reboot into BOOTSEL (mpremote bootloader)" % port)
        reboot(port)
        if not wait_device(bootsel_wait_s):
            raise UserError("the board on %s was sent to BOOTSEL mode, but picotool did not see it within %ds"
                            % (port, bootsel_wait_s), hint=PERMISSION_HINT)
    log("%s -> picotool load -v -x (write, verify, start)" % firmware)
    load(firmware, log=log)
    log("its serial port appears as /dev/ttyACM0 (usually). Next: roam6 deploy --board %s --port /dev/ttyACM0"
        % board["name"])
    return "picotool"
