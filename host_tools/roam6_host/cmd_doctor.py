"""`roam6 doctor`: check this host for what build, flash, deploy and the bench need."""
import json


def register(sub):
    p = sub.add_parser("doctor",
                       help="check the host: MicroPython, mpy-cross, compilers, esptool, serial, bench daemons",
                       description="Print OK or MISSING for each tool roam6 needs, with the command that fixes it. "
                                   "Exit code 1 when something required is missing.")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--board-only", action="store_true",
                   help="only what a board user needs: mpy-cross, mpremote, esptool, mpflash, pyserial, serial "
                        "permissions, picotool and native-module compilers (optional), the boards attached; "
                        "not the bench's runtime and daemons")
    p.set_defaults(func=run)


def run(args):
    from . import doctor

    board_only = getattr(args, "board_only", False)
    results = doctor.run_checks(board_only=board_only)
    if args.json:
        print(json.dumps([dict(zip(("name", "status", "detail", "needed_for", "fix"), r)) for r in results], indent=1))
        return 1 if any(r[1] == doctor.MISSING for r in results) else 0
    return doctor.report(results, board_only=board_only)
