"""`roam6 flash` without --firmware: the official image fetched through mpflash, cached, checked.

There is no internet here, so micropython.org is played by a loopback HTTP server serving the
same shapes mpflash reads: /download/?port=P with `board-card` links, /download/BOARD/ with
/resources/firmware/BOARD-DATE-vX.Y.Z.ext links, and the images (made by esptool's own image
classes, and UF2 blocks by the spec, as in test_flash). $ROAM6_MICROPYTHON_SITE points mpflash
at it. Real mpflash code runs (its page scraping, version matching, download, its database);
what is NOT tested is micropython.org's live pages themselves.
"""
import http.server
import os
import subprocess
import sys
import threading

import pytest

from roam6_host import boards, fwfetch
from roam6_host.cli import main as cli_main
from roam6_host.errors import UserError
from test_flash import INFO_RP2040, RP2040, EspRom, drive, esp_image, uf2

V = fwfetch.MICROPYTHON_VERSION
ESP_NAME = "ESP32_GENERIC-v%s.bin" % V
PICO_NAME = "RPI_PICO_W-v%s.uf2" % V


class Site:
    """A stand-in micropython.org on 127.0.0.1: the requests it saw are kept in .paths."""

    def __init__(self, root):
        self.root, self.paths = root, []
        site = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(root), **kw)

            def do_GET(self):
                site.paths.append(self.path)
                super().do_GET()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, board_id, files):
        """files: {dated file name: bytes}, linked from /download/BOARD_ID/ as micropython.org does."""
        d = self.root / "download" / board_id
        d.mkdir(parents=True, exist_ok=True)
        fw = self.root / "resources" / "firmware"
        fw.mkdir(parents=True, exist_ok=True)
        links = []
        for name, data in files.items():
            if data is not None:
                (fw / name).write_bytes(data)
            links.append('<a href="/resources/firmware/%s">%s</a>' % (name, name))
        (d / "index.html").write_text("<html><body>%s</body></html>" % "".join(links))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    s = Site(root)
    (root / "download").mkdir()
    cards = "".join('<a class="board-card" href="%s">%s</a>' % (b, b)
                    for b in ("ESP32_GENERIC", "ESP32_GENERIC_S3", "RPI_PICO_W", "RPI_PICO2_W", "NOPE"))
    (root / "download" / "index.html").write_text("<html><body>%s</body></html>" % cards)
    img = tmp_path_factory.mktemp("img")
    s.esp_bytes = open(esp_image(img / "e.bin"), "rb").read()
    s.uf2_bytes = open(uf2(str(img / "p.uf2"), family=RP2040), "rb").read()
    s.publish("ESP32_GENERIC", {"ESP32_GENERIC-20260412-v%s.bin" % V: s.esp_bytes,
                                "ESP32_GENERIC-20251201-v1.27.0.bin": b"\xe9older"})
    s.publish("RPI_PICO_W", {"RPI_PICO_W-20260412-v%s.uf2" % V: s.uf2_bytes})
    # an image link whose file is missing: the server answers 404 with an HTML page
    s.publish("ESP32_GENERIC_S3", {"ESP32_GENERIC_S3-20260412-v%s.bin" % V: None})
    yield s
    s.httpd.shutdown()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")   # one mpflash database for the module (its first load: ~2 s)


@pytest.fixture
def env(site, cache, monkeypatch):
    monkeypatch.setenv("ROAM6_CACHE", str(cache))
    monkeypatch.setenv(fwfetch.SITE_ENV, site.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    for name in (ESP_NAME, PICO_NAME):
        for port in ("esp32", "rp2"):
            p = os.path.join(str(cache), "firmware", port, name)
            if os.path.exists(p):
                os.remove(p)
    site.paths.clear()
    return site


def test_flash_without_firmware_fetches_the_pinned_image_once(env, cache, capsys):
    assert cli_main(["flash", "--board", "esp32", "--check"]) == 0
    out = capsys.readouterr().out
    path = os.path.join(str(cache), "firmware", "esp32", ESP_NAME)
    assert "fetching MicroPython %s for esp32 (%s)" % (V, ESP_NAME) in out
    assert "%s: a valid ESP32 image" % path in out
    with open(path, "rb") as f:
        assert f.read() == env.esp_bytes
    assert "/resources/firmware/ESP32_GENERIC-20260412-v%s.bin" % V in env.paths
    assert not any("1.27.0" in p for p in env.paths)          # only the pinned version is downloaded
    env.paths.clear()
    assert cli_main(["flash", "--board", "esp32", "--check"]) == 0
    assert "(cached)" in capsys.readouterr().out
    assert env.paths == []                                    # the second time: no network at all


def test_fetched_image_is_what_esptool_writes(env, capsys):
    """`roam6 flash --board esp32` with no --firmware, end to end: fetched, then written by the real
    esptool to the stand-in chip of test_flash (tests/host/standins/esp_rom.py) at 0x1000."""
    rom = EspRom("ESP32").start()
    try:
        assert cli_main(["flash", "--board", "esp32", "--port", rom.port]) == 0
    finally:
        rom.close()
    assert bytes(rom.flash[0x1000:0x1000 + len(env.esp_bytes)]) == env.esp_bytes
    out = capsys.readouterr().out
    assert "fetching MicroPython %s" % V in out and "Hash of data verified" in out


def test_pico_w_uf2_is_fetched_and_checked(env, cache, capsys):
    assert cli_main(["flash", "--board", "rp2040", "--check"]) == 0
    out = capsys.readouterr().out
    path = os.path.join(str(cache), "firmware", "rp2", PICO_NAME)
    assert "%s: a valid RP2040 UF2, 5 blocks" % path in out
    with open(path, "rb") as f:
        assert f.read() == env.uf2_bytes


def test_fetched_uf2_goes_onto_the_bootsel_drive(env, tmp_path, capsys):
    d = drive(tmp_path, INFO_RP2040)
    assert cli_main(["flash", "--board", "rp2040", "--drive", d, "--wait", "0"]) == 0
    with open(os.path.join(d, PICO_NAME), "rb") as f:
        assert f.read() == env.uf2_bytes


def test_a_version_not_published_names_the_file_to_get_by_hand(env, cache):
    with pytest.raises(UserError) as e:
        fwfetch.fetch(boards.load_board("esp32"), "1.99.0", log=lambda s: None)
    assert "could not fetch MicroPython 1.99.0 for esp32" in e.value.message
    assert "lists no ESP32_GENERIC-v1.99.0.bin" in e.value.message
    assert "download ESP32_GENERIC-v1.99.0.bin by hand from https://micropython.org/download/ESP32_GENERIC/" \
        in e.value.hint
    assert os.path.join(str(cache), "firmware", "esp32", "ESP32_GENERIC-v1.99.0.bin") in e.value.hint


def test_an_error_page_saved_as_the_image_is_refused_and_removed(env, cache):
    board = dict(boards.load_board("esp32"), name="esp32s3-like")
    board["flash"] = dict(board["flash"], micropython_board="ESP32_GENERIC_S3")
    with pytest.raises(UserError) as e:
        fwfetch.fetch(board, log=lambda s: None)
    assert "ESP32_GENERIC_S3-v%s.bin fetched from %s is not a valid image" % (V, env.url) in e.value.message
    assert not os.path.exists(fwfetch.cached_path(board))     # not kept: the next run tries again
    assert "by hand" in e.value.hint


def test_offline_is_a_clear_error_without_a_traceback(tmp_path):
    """The real command in its own process, micropython.org unreachable (a loopback port nobody listens on)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = "http://127.0.0.1:%d/" % s.getsockname()[1]
    s.close()
    env = dict(os.environ, ROAM6_CACHE=str(tmp_path), NO_PROXY="127.0.0.1", **{fwfetch.SITE_ENV: dead})
    r = subprocess.run([sys.executable, "-m", "roam6_host", "flash", "--board", "esp32", "--check"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert "could not fetch MicroPython %s for esp32" % V in r.stderr
    assert "ConnectionError" in r.stderr
    assert "download %s by hand from https://micropython.org/download/ESP32_GENERIC/" % ESP_NAME in r.stderr


def test_a_board_without_an_official_image_says_to_pass_one():
    with pytest.raises(UserError) as e:
        fwfetch.image_name(boards.load_board("unix"))
    assert "no official MicroPython image" in e.value.message
