"""`roam6 flash`: put MicroPython on a board (esptool for ESP32, UF2 copy for RP2040/RP2350)."""
import argparse

from . import boards, flash, fwfetch
from .errors import UserError


def register(sub):
    p = sub.add_parser("flash", help="write MicroPython to a board (ESP32: esptool; RP2040: UF2 to BOOTSEL)",
                       description="ESP32: erase and write the MicroPython .bin with esptool (chip, offset and baud\n"
                                   "from boards/esp32/board.json). RP2040: validate the .uf2 and copy it to the\n"
                                   "board's BOOTSEL drive. The image is checked before anything is touched.\n"
                                   "Without --firmware, the official image of MicroPython %s for the board is\n"
                                   "fetched from micropython.org through mpflash, once (cached under ~/.cache/roam6)."
                                   % fwfetch.MICROPYTHON_VERSION,
                       epilog="examples:\n"
                              "  roam6 flash --board esp32    # the one board attached; the official image fetched\n"
                              "  roam6 flash --board esp32 --firmware ESP32_GENERIC-v1.28.0.bin   # your own image\n"
                              "  roam6 flash --board esp32 --port /dev/ttyUSB0 --firmware ESP32_GENERIC-v1.28.0.bin\n"
                              "  roam6 flash --board rp2040 --firmware RPI_PICO_W-v1.28.0.uf2   # a Pico running\n"
                              "        # MicroPython is rebooted into BOOTSEL by itself; a new one: hold BOOTSEL\n"
                              "        # while plugging it in\n"
                              "  roam6 flash --board esp32 --check   # fetch (or find in the cache) and check only",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", required=True, help="board name: " + ", ".join(flashable_boards()))
    p.add_argument("--firmware", metavar="FILE",
                   help="MicroPython .bin (ESP32) or .uf2 (RP2040/RP2350); default: the official image, fetched")
    p.add_argument("--mp-version", default=fwfetch.MICROPYTHON_VERSION, metavar="V",
                   help="without --firmware: the MicroPython release to fetch (default %(default)s, the tested one)")
    p.add_argument("--port", default="auto",
                   help="ESP32: the serial port, e.g. /dev/ttyUSB0; default auto: the one attached board "
                        "(by its USB id: roam6 boards lists them). RP2040: with no BOOTSEL drive mounted, a Pico "
                        "running MicroPython on this port (auto: the one attached) is rebooted into BOOTSEL")
    p.add_argument("--baud", type=int, help="ESP32: override the board's baud rate (slow cables: 115200)")
    p.add_argument("--no-erase", action="store_true", help="ESP32: write without erasing the whole flash first")
    p.add_argument("--drive", help="RP2040: the mounted BOOTSEL drive (default: found by its INFO_UF2.TXT)")
    p.add_argument("--no-picotool", action="store_true",
                   help="RP2040: copy the UF2 to the BOOTSEL drive even when picotool is installed (by default "
                        "picotool loads and verifies it over USB, no drive needed)")
    p.add_argument("--wait", type=int, default=10, metavar="S",
                   help="RP2040: seconds to wait for the board to leave BOOTSEL mode after the copy (0: do not wait)")
    p.add_argument("--check", action="store_true", help="only check the image; touch no port or drive")
    p.set_defaults(func=run)


def flashable_boards():
    """The boards `flash` can write (a flash method in board.json): the unix port is installed, not flashed,
    so --help does not offer it (asked for, it is refused with how to install it)."""
    return [n for n in boards.board_names() if boards.load_board(n)["flash"].get("method") in ("esptool", "uf2")]


def run(args):
    board = boards.load_board(args.board)
    method = board["flash"].get("method")
    fl = board["flash"]
    if method in ("esptool", "uf2") and not args.firmware:
        args.firmware = fwfetch.fetch(board, args.mp_version)
    if method == "esptool":
        if args.check:
            from . import images
            info = images.check_esp_image(args.firmware, int(fl["chip_id"]), fl["chip"].upper(),
                                          offset=int(fl["offset"], 0))
            apps = info["apps"]
            print("%s: a valid %s image, %d segments, %d bytes%s" % (
                args.firmware, fl["chip"].upper(), info["segments"], info["size"],
                ", its partition table and %d app image(s) checked by esptool's loader" % apps if apps else ""))
            return 0
        flash.flash_esp32(board, args.port, args.firmware, baud=args.baud, erase=False if args.no_erase else None)
        return 0
    if method == "uf2":
        if args.check:
            from . import images
            chip = fl.get("chip", "RP2040")
            info = images.check_uf2(args.firmware, int(fl["uf2_family_id"], 0), chip)
            print("%s: a valid %s UF2, %d blocks, %d bytes" % (args.firmware, chip, info["blocks"], info["bytes"]))
            return 0
        flash.flash_rp2040(board, args.firmware, drive=args.drive, wait_s=args.wait, port=args.port,
                           use_picotool=not getattr(args, "no_picotool", False))
        return 0
    raise UserError("board %s has nothing to flash" % board["name"], hint=fl.get("hint"))
