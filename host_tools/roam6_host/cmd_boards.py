"""`roam6 boards [--probe] [--port PORT]`: the boards attached to this machine's USB ports.

    roam6 boards                      # port, USB id, what it is
    roam6 boards --probe              # and the MicroPython each runs (asked with mpremote)
    roam6 boards --probe --port /dev/pts/5
"""
import argparse

from . import ports
from .errors import UserError

# Runs on the board: one line naming the MicroPython it runs.
VERSION_SCRIPT = ("import sys\n"
                  "i = sys.implementation\n"
                  "v = '.'.join(str(x) for x in i.version[:3])\n"
                  "print('R6V', i.name, v, '|', getattr(i, '_machine', sys.platform))\n")


def register(sub):
    p = sub.add_parser("boards", help="list the boards attached by USB (and with --probe their MicroPython)",
                       description="List the serial ports whose USB id is a board's (Espressif, CP210x, CH340,\n"
                                   "CH9102, FTDI bridges, Raspberry Pi RP2040/RP2350): --port auto picks from these.\n"
                                   "--probe asks each for its MicroPython version with mpremote: that interrupts\n"
                                   "what runs there (Ctrl-C) and leaves the board at its REPL; reset it afterwards.",
                       epilog="examples:\n" + __doc__.split("\n\n", 1)[1].rstrip(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--probe", action="store_true", help="ask each board which MicroPython it runs (mpremote)")
    p.add_argument("--port", action="append", metavar="PORT",
                   help="probe this port too, whatever its USB id (a pty, a board behind a hub's own id); repeatable")
    p.add_argument("--timeout", type=float, default=20, metavar="S", help="seconds to wait for each board (default 20)")
    p.set_defaults(func=run)


def probe(port, timeout=20):
    """'MicroPython 1.26.0 | Generic ESP32 module with ESP32' or raise UserError (exit 1) saying why."""
    from . import deploy
    ports.probe_repl(port)                # bounded: mpremote can wait forever on a silent port
    out = deploy.Mpremote(port, timeout=timeout).run("exec", VERSION_SCRIPT)
    for line in out.splitlines():
        if line.startswith("R6V "):
            return line[4:].strip()
    raise UserError("the board on %s did not say its version" % port, hint="its output: %r" % out[-200:], exit_code=1)


def run(args):
    found = ports.candidates()
    rows = [(c.device, c.usb_id, c.what + (" - " + c.description if c.description else "")) for c in found]
    for extra in args.port or ():
        if extra not in [r[0] for r in rows]:
            rows.append((extra, "-", "given with --port"))
    if not rows:
        raise UserError("no board is attached (no serial port with a board's USB id)", hint=ports.NONE_FOUND_HINT,
                        exit_code=1)
    failed = 0
    print("%-22s %-9s  %s" % ("PORT", "USB ID", "WHAT" + ("  /  MICROPYTHON" if args.probe else "")))
    for device, usb_id, what in rows:
        print("%-22s %-9s  %s" % (device, usb_id, what))
        if args.probe:
            try:
                print("%-22s %-9s  -> %s" % ("", "", probe(device, args.timeout)))
            except UserError as exc:
                failed += 1
                print("%-22s %-9s  -> no MicroPython answer: %s" % ("", "", str(exc).replace("\n", " ")))
    return 1 if failed else 0
