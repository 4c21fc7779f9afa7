"""The official MicroPython image for a board, fetched once through mpflash and cached: `fetch(board)`.

`roam6 flash --board B` without --firmware lands here. The image is the one micropython.org
publishes for the board's download id (board.json flash.micropython_board, e.g. ESP32_GENERIC) at
a pinned version (MICROPYTHON_VERSION: what the tests run on; `--mp-version` picks another). It
is kept as <cache>/firmware/<port>/<ID>-v<version>.<bin|uf2> (cache: $ROAM6_CACHE, else
$XDG_CACHE_HOME/roam6, else ~/.cache/roam6), so a second flash needs no network and does not
even import mpflash. mpflash (PyPI) finds the file on micropython.org's download pages and
downloads it; its own database (mpflash.db) lives in the same folder. A download that is not a
valid image (an HTML error page saved as .bin) is deleted and refused. Offline, or no such
image: a UserError naming the file to download by hand, its page, and where to put it.

$ROAM6_MICROPYTHON_SITE replaces https://micropython.org/ (a mirror; the tests' loopback server):
mpflash has no setting for it, so roam6 sets mpflash.download.from_web.MICROPYTHON_ORG_URL.
"""
import os

from . import images
from .errors import UserError

MICROPYTHON_VERSION = "1.28.0"   # the release the firmware is tested on (the unix port 1.28, natmod ABI 1.23+)
SITE = "https://micropython.org/"
SITE_ENV = "ROAM6_MICROPYTHON_SITE"
EXTS = {"esptool": ".bin", "uf2": ".uf2"}


def firmware_dir():
    from .natmod_build import cache_dir
    return os.path.join(cache_dir(), "firmware")


def image_name(board, version=MICROPYTHON_VERSION):
    """'ESP32_GENERIC-v1.28.0.bin': mpflash's name for it (micropython.org's, date and hash removed)."""
    fl = board["flash"]
    if "micropython_board" not in fl or fl.get("method") not in EXTS:
        raise UserError("board %s has no official MicroPython image to fetch" % board["name"],
                        hint="pass the image with --firmware FILE")
    return "%s-v%s%s" % (fl["micropython_board"], version.lstrip("v"), EXTS[fl["method"]])


def cached_path(board, version=MICROPYTHON_VERSION):
    return os.path.join(firmware_dir(), board["port"], image_name(board, version))


def site():
    return os.environ.get(SITE_ENV) or SITE


def page_url(board):
    return "%sdownload/%s/" % (site(), board["flash"]["micropython_board"])


def check_image(board, path):
    """images' check for the board's kind of image (esptool's loader / UF2 blocks); UserError if bad."""
    fl = board["flash"]
    if fl["method"] == "esptool":
        return images.check_esp_image(path, int(fl["chip_id"]), fl["chip"].upper(), offset=int(fl["offset"], 0))
    return images.check_uf2(path, int(fl["uf2_family_id"], 0), fl.get("chip", "RP2040"))


def _by_hand(board, version, path):
    page = "%sdownload/%s/" % (SITE, board["flash"]["micropython_board"])   # micropython.org's, even behind a mirror
    return ("download %s by hand from %s and pass it with --firmware FILE (or save it as %s)"
            % (image_name(board, version), page, path))


def _mpflash_download(board, version, folder):
    """mpflash's own download into `folder` (its port subfolder); returns its error text or None."""
    os.makedirs(folder, exist_ok=True)
    try:
        from pathlib import Path

        from loguru import logger
        from mpflash.config import config
    except ImportError as exc:
        return "mpflash is not installed (%s): pip install mpflash" % exc
    logger.remove()                      # mpflash logs through loguru: roam6 says what happens itself
    config.firmware_folder = Path(folder)
    from mpflash.db.core import _init_database, migrate_database
    from mpflash.download import download, from_web
    from mpflash.errors import MPFlashError

    logger.remove()
    _init_database(config.db_path)       # its database beside the images, not in ~/Downloads/firmware
    if os.environ.get(SITE_ENV):
        if not hasattr(from_web, "MICROPYTHON_ORG_URL"):
            return "this mpflash has no MICROPYTHON_ORG_URL to point at %s" % site()
        from_web.MICROPYTHON_ORG_URL = site()
    try:
        migrate_database(boards=True, firmwares=True)
        n = download(ports=[board["port"]], boards=[board["flash"]["micropython_board"]],
                     versions=[version], force=True, clean=True, destination=Path(folder))
    except MPFlashError as exc:
        return "%s (%s)" % (exc.message.replace("micropython.org", site()), _cause(exc))
    except OSError as exc:
        return "%s: %s" % (type(exc).__name__, exc)
    if not n:
        return "%s lists no %s for %s" % (site(), image_name(board, version), board["port"])
    return None


def _cause(exc):
    c = exc.__cause__
    while c is not None and c.__cause__ is not None:
        c = c.__cause__
    return type(c).__name__ if c is not None else "no details"


def fetch(board, version=MICROPYTHON_VERSION, log=print):
    """The path of the board's official image at `version`: from the cache, else downloaded
    through mpflash (then checked). UserError (saying what to download by hand) if it cannot be had."""
    version = version.lstrip("v")
    path = cached_path(board, version)
    if os.path.isfile(path):
        log("firmware: %s (cached)" % path)
        return path
    from .natmod_build import _Lock
    with _Lock("firmware"):
        if os.path.isfile(path):            # another roam6 fetched it while we waited
            return path
        log("firmware: fetching MicroPython %s for %s (%s) from %s through mpflash"
            % (version, board["name"], image_name(board, version), site()))
        err = _mpflash_download(board, version, firmware_dir())
        if err is None and not os.path.isfile(path):
            err = "mpflash saved no %s" % path
        if err:
            raise UserError("could not fetch MicroPython %s for %s: %s" % (version, board["name"], err),
                            hint=_by_hand(board, version, path))
        try:
            check_image(board, path)
        except UserError as exc:
            os.remove(path)
            raise UserError("the %s fetched from %s is not a valid image: %s" % (image_name(board, version), site(),
                                                                                exc.message),
                            hint=_by_hand(board, version, path)) from None
    log("firmware: %s (%d bytes)" % (path, os.path.getsize(path)))
    return path
