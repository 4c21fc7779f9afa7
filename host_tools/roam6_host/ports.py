"""Finding the board's serial port: `--port auto`, and the default when one board is attached.

pyserial's port list (serial.tools.list_ports) names each USB serial port's vendor and product
ids; a board shows up through a USB-serial bridge chip on the board (CP210x, CH340, CH9102, FTDI)
or as the chip's own USB (Espressif's USB-Serial/JTAG, the Pi's RP2040/RP2350 running
MicroPython). Ports with other ids (modems, GPS receivers, a phone) are not candidates.
Also here: opening a port that may be coming back from a reset, and a bounded check that
MicroPython answers on one (flash, deploy and `roam6 boards --probe` use them).
"""
import time

import serial
import serial.tools.list_ports

from .errors import UserError

ESPRESSIF, RASPBERRY_PI = 0x303A, 0x2E8A

# (vid, pid or None for every product of the vendor) -> what it is
KNOWN_USB = {
    (ESPRESSIF, None): "Espressif native USB (ESP32-S2/S3/C3/C6/H2)",
    (0x10C4, 0xEA60): "Silicon Labs CP210x USB-serial bridge",
    (0x1A86, 0x7523): "WCH CH340 USB-serial bridge",
    (0x1A86, 0x55D4): "WCH CH9102 USB-serial bridge",
    (0x0403, 0x6001): "FTDI FT232R USB-serial bridge",
    (0x0403, 0x6010): "FTDI FT2232 USB-serial bridge",
    (0x0403, 0x6014): "FTDI FT232H USB-serial bridge",
    (0x0403, 0x6015): "FTDI FT231X USB-serial bridge",
    (RASPBERRY_PI, None): "Raspberry Pi RP2040/RP2350 (MicroPython's USB serial)",
}

NONE_FOUND_HINT = ("check that the board is plugged in with a data cable (some cables only charge), that "
                   "`dmesg | tail` shows it (a CH340/CP210x bridge may need its driver), and that you are in the "
                   "dialout group (sudo usermod -aG dialout $USER, then log in again); or give --port")


class Candidate:
    """An attached port that looks like a board."""

    def __init__(self, device, vid, pid, what, description):
        self.device = device
        self.vid = vid
        self.pid = pid
        self.what = what                  # from KNOWN_USB
        self.description = description    # what the port says of itself (product, manufacturer)

    @property
    def usb_id(self):
        return "%04x:%04x" % (self.vid, self.pid)

    def line(self):
        desc = " - " + self.description if self.description else ""
        return "%-22s %s  %s" % (self.device, self.usb_id, self.what + desc)


def known(vid, pid):
    """What a USB id is, or None for ids no board uses."""
    if vid is None:
        return None
    return KNOWN_USB.get((vid, pid)) or KNOWN_USB.get((vid, None))


def _fits(c, board):
    """A Raspberry Pi port for an rp2 board, any other board's bridge or native USB for the rest."""
    if board is None or board.get("port") == "unix":
        return True
    return (c.vid == RASPBERRY_PI) == (board.get("port") == "rp2")


def candidates(board=None):
    """The attached ports with a board's USB id, sorted by device; `board` (a board profile)
    narrows them to that kind of board."""
    out = []
    for p in serial.tools.list_ports.comports():
        what = known(p.vid, p.pid)
        if what is None:
            continue
        desc = " ".join(x for x in (p.manufacturer, p.product) if x)
        if not desc and p.description not in (None, "n/a", p.name):
            desc = p.description              # what the kernel says when the device names nothing
        c = Candidate(p.device, p.vid, p.pid, what, desc)
        if _fits(c, board):
            out.append(c)
    return sorted(out, key=lambda c: c.device)


def resolve(port, board=None, log=print):
    """The port to use: `port` as given, or with None/"auto" the one attached board. Several
    candidates or none: UserError listing them or saying what to check."""
    if port not in (None, "auto"):
        return port
    found = candidates(board)
    kind = (" for %s" % board["name"]) if board else ""
    if len(found) == 1:
        log("port: %s (%s %s)" % (found[0].device, found[0].usb_id, found[0].what))
        return found[0].device
    if found:
        raise UserError("%d boards are attached%s; say which with --port:\n  %s"
                        % (len(found), kind, "\n  ".join(c.line() for c in found)),
                        hint="e.g. --port %s (roam6 boards lists them)" % found[0].device)
    others = [p.device for p in serial.tools.list_ports.comports()]
    msg = "--port is missing and no board is attached%s (no serial port with a board's USB id)" % kind
    if others:
        msg += "; other serial ports: " + ", ".join(sorted(others))
    raise UserError(msg, hint=NONE_FOUND_HINT)


# ---- talking to the port --------------------------------------------------------------------

def open_serial(port, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return serial.Serial(port, 115200, timeout=0.1)
        except (serial.SerialException, OSError):
            if time.monotonic() > deadline:
                raise UserError("%s did not come back after the reset" % port, hint="replug the board",
                                exit_code=1) from None
            time.sleep(0.2)


def probe_repl(port, timeout=3):
    """Bounded check that MicroPython answers on the port (mpremote itself can wait forever on a
    silent one): Ctrl-C stops a running main.py, Ctrl-B prints the banner from either REPL mode."""
    ser = open_serial(port, 2)
    try:
        ser.reset_input_buffer()
        ser.write(b"\r\x03\x03\x02")
        deadline = time.monotonic() + timeout
        got = b""
        while time.monotonic() < deadline and b">" not in got:
            got += ser.read(256)
    finally:
        ser.close()
    if b">" not in got:
        raise UserError("nothing answers on %s: no MicroPython REPL%s" % (port, " (got %r)" % got[:40] if got else ""),
                        hint="flash MicroPython first (roam6 flash), check the port is the board's, "
                             "and close other programs using it", exit_code=1)
