"""`roam6 deploy [--port PORT|auto] [--bundle DIR] [--config FILE] [--romfs]`: copy what changed, reset,
show the logs."""
import os

from .errors import UserError


def register(sub):
    p = sub.add_parser("deploy", help="copy a built bundle and config.json to a board (only what changed)",
                       description="Compare SHA-256 hashes computed on the board with the bundle's files, copy "
                                   "only the changed ones with mpremote, reset the board and show its first log lines.",
                       epilog="example: roam6 deploy --board esp32 --port /dev/ttyUSB0 --config esp1.json "
                              "(after roam6 build --board esp32)")
    p.add_argument("--port", default="auto",
                   help="the board's serial port (/dev/ttyUSB0, /dev/ttyACM0, a pty); default auto: the one attached "
                        "board, by its USB id (roam6 boards lists them)")
    p.add_argument("--bundle", metavar="DIR", help="the bundle folder from `roam6 build` (default build/BOARD)")
    p.add_argument("--board", metavar="BOARD", help="the board name; with no --bundle it picks build/BOARD")
    p.add_argument("--config", metavar="FILE", help="the device's config.json from `roam6 provision`")
    p.add_argument("--romfs", action="store_true",
                   help="write the modules to the board's ROMFS partition (MicroPython 1.25+ firmware built with one): "
                        "their code then runs from flash, not the heap; main.py and config.json stay files")
    p.add_argument("--no-reset", action="store_true", help="copy only; do not reset the board")
    p.add_argument("--log-lines", type=int, metavar="N",
                   help="how many lines of the board's output to show after the reset")
    p.set_defaults(func=run)


def run(args):
    from . import deploy

    bundle = args.bundle
    if not bundle:
        if not args.board:
            raise UserError("say which bundle: --bundle DIR or --board NAME (for build/NAME)")
        from .boards import load_board
        load_board(args.board)                    # an unknown board name is said as such
        bundle = os.path.join("build", args.board)
        if not os.path.isdir(bundle):
            raise UserError("no bundle for %s in %s" % (args.board, bundle),
                            hint="build it first: roam6 build --board %s (or pass --bundle DIR)" % args.board)
    res = deploy.deploy(args.port, bundle, config=args.config, board_name=args.board,
                        reset=not args.no_reset, log_lines=args.log_lines, romfs=args.romfs)
    rom = {"written": ", ROMFS image written", "unchanged": ", ROMFS image unchanged",
           "cleared": ", ROMFS image cleared"}.get(res["rom"], "")
    print("deploy done: %d copied, %d unchanged%s" % (len(res["copied"]), len(res["unchanged"]), rom))
    return 0
