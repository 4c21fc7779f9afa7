"""`roam6 build --board NAME [--out DIR] [--manifest] [--romfs]` and `roam6 build natmod --arch ARCH`."""

from . import boards
from .errors import UserError


def register(sub):
    p = sub.add_parser("build", help="compile the firmware for a board into a deployable bundle",
                       description="Compile firmware/roam6 with mpy-cross for a board's architecture into a bundle "
                                   "(the .mpy files, the native module when it can be built, the board's files), "
                                   "plus package.json for mip and, with --manifest, a manifest.py for freezing.")
    p.add_argument("what", nargs="?", choices=["bundle", "natmod"], default="bundle",
                   help="bundle (default) or natmod: only the native module for --arch")
    p.add_argument("--board", help="board name: %s, or all (each into DIR/NAME, then the .mpy per board)"
                                   % ", ".join(boards.board_names()))
    p.add_argument("--arch", help="for `build natmod`: x64, armv6m, armv7emsp, xtensawin or rv32imc "
                                  "(default: the board's)")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default build/BOARD; for natmod build/natmod, the .mpy lands in DIR/ARCH/)")
    p.add_argument("--manifest", action="store_true", help="also write manifest.py for freezing roam6 into firmware")
    p.add_argument("--romfs", action="store_true",
                   help="also write roam6.romfs, the modules as a ROMFS image (MicroPython 1.25+ firmware with a ROMFS "
                        "partition runs them in place: less heap; roam6 deploy --romfs writes it)")
    p.add_argument("--no-natmod", action="store_true", help="leave the native module out")
    p.add_argument("--with", dest="features", action="append", default=[], metavar="FEATURE",
                   help="a variant the board.json describes under \"with\", e.g. ipsec on rp2040 (IKEv2 + ESP "
                        "in, what it replaces out)")
    p.add_argument("--debug", action="store_true",
                   help="keep line numbers in tracebacks (mpy-cross -O0); the default -O3 leaves them out: "
                        "~1 KB more free heap on a 32-bit board, ~7%% smaller .mpy")
    p.set_defaults(func=run)


def run(args):
    from . import build

    if args.what == "natmod":
        from . import natmod_build

        arch = args.arch or (boards.load_board(args.board)["natmod_arch"] if args.board else None)
        if not arch:
            raise UserError("`roam6 build natmod` needs --arch (x64, armv6m, armv7emsp, xtensawin, rv32imc) or --board")
        # default out: build/natmod/<arch>/, where roam6.accel looks in a checkout
        natmod_build.build_natmod(arch, args.out or natmod_build.DEFAULT_OUT, log=print)  # it prints the path
        return 0
    if not args.board:
        raise UserError("`roam6 build` needs --board", hint="one of: " + ", ".join(boards.board_names()))
    if args.arch:
        raise UserError("--arch is for `roam6 build natmod`; a bundle is built for its board's architecture",
                        hint="roam6 build --board %s (or: roam6 build natmod --arch %s)" % (args.board, args.arch))
    if args.board == "all":
        import os
        sizes = []
        for name in boards.board_names():
            out = os.path.join(args.out or "build", name)
            index = build.build_bundle(name, out_dir=out, manifest=args.manifest, natmod=not args.no_natmod,
                                       line_numbers=args.debug, romfs=args.romfs)
            sizes.append((name, index))
        print("board     roam6 .mpy  native  total     goal %d KB" % (build.FIRMWARE_GOAL_BYTES // 1024))
        for name, ix in sizes:
            print("%-8s  %9d  %6d  %8d  %s" % (name, ix["package_mpy_bytes"], ix["natmod_mpy_bytes"], ix["mpy_bytes"],
                                               "within" if ix["mpy_bytes"] <= build.FIRMWARE_GOAL_BYTES else "OVER"))
        return 0
    build.build_bundle(args.board, out_dir=args.out, manifest=args.manifest, natmod=not args.no_natmod,
                       line_numbers=args.debug, romfs=args.romfs, features=args.features)
    return 0
