"""Stand-in for a Pico's `machine.bootloader()` on the unix port (run with `micropython -i`): the
boot ROM's USB drive appears (a folder with the INFO_UF2.TXT an RP2040 shows, at $R6_BOOTSEL_DRIVE)
and MicroPython leaves the serial port, as the real board does when it re-enumerates."""
import os
import sys


class _Machine:
    @staticmethod
    def bootloader():
        d = os.getenv("R6_BOOTSEL_DRIVE")
        os.mkdir(d)
        with open(d + "/INFO_UF2.TXT", "w") as f:
            f.write("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n")
        sys.exit(0)


sys.modules["machine"] = _Machine
