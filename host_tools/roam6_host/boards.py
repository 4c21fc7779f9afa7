"""Board profiles: boards/<name>/board.json, and where the repo's firmware and board files live.

A board profile holds everything the host tools must know per board (mpy-cross arch, flash chip,
offsets and baud, how a reset looks), so adding a board means adding a folder, not code.
"""
import json
import os

from .errors import UserError
from .paths import BOARDS_DIR, FIRMWARE_DIR, REPO_ROOT  # noqa: F401 (REPO_ROOT: build.py reads it here)

PACKAGE_DIR = os.path.join(FIRMWARE_DIR, "roam6")

# fields every board.json must carry; checked on load so a typo fails here, not mid-flash
REQUIRED = ("name", "port", "mpy_arch", "transports", "flash", "deploy")
MPY_ARCHES = ("x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
              "xtensa", "xtensawin", "rv32imc", "rv64imc")


def board_names():
    if not os.path.isdir(BOARDS_DIR):
        return []
    return sorted(n for n in os.listdir(BOARDS_DIR)
                  if os.path.isfile(os.path.join(BOARDS_DIR, n, "board.json")))


def board_dir(name):
    return os.path.join(BOARDS_DIR, name)


def load_board(name):
    """The board.json of `name` as a dict, validated; UserError naming the known boards if absent."""
    path = os.path.join(BOARDS_DIR, name, "board.json")
    if not os.path.isfile(path):
        raise UserError("unknown board %r" % name,
                        hint="known boards: %s (each is a folder in %s)" % (", ".join(board_names()), BOARDS_DIR))
    try:
        with open(path) as f:
            board = json.load(f)
    except ValueError as exc:
        raise UserError("%s is not valid JSON: %s" % (path, exc), hint="fix the file")
    missing = [k for k in REQUIRED if k not in board]
    if missing:
        raise UserError("%s lacks %s" % (path, ", ".join(missing)), hint="see boards/esp32/board.json for the fields")
    if board["mpy_arch"] not in MPY_ARCHES:
        raise UserError("%s: mpy_arch %r is not an mpy-cross -march value" % (path, board["mpy_arch"]),
                        hint="one of: " + ", ".join(MPY_ARCHES))
    board["dir"] = os.path.dirname(path)
    return board


def board_files(board):
    """Files of boards/<name>/ that go onto the device (board.json, main.py, link.py, ...)."""
    out = []
    for n in sorted(os.listdir(board["dir"])):
        p = os.path.join(board["dir"], n)
        if os.path.isfile(p) and not n.startswith(".") and not n.endswith((".pyc", ".md")):
            out.append(n)
    return out
