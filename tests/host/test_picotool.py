"""`roam6 flash --board rp2040` with picotool installed (host_tools/roam6_host/picotool.py).

No RP2040 in BOOTSEL mode can exist on this machine (and Debian 12 has no picotool package), so
picotool itself is the one stand-in here: a small script on PATH with picotool's command line
(`info`, `load -v -x -t uf2 FILE`), its exit codes and its messages, whose "board" is a folder
that exists while the board is in BOOTSEL mode and receives the loaded image. Everything of
roam6's around it is real: the UF2 checks, flash_rp2040, the CLI."""
import os
import stat
import sys

import pytest

from roam6_host import boards, flash, picotool
from roam6_host.cli import main as cli_main
from roam6_host.errors import UserError

from test_flash import uf2

FAKE = r'''#!%s
import os, shutil, sys
dev, mode = os.environ["R6_FAKE_BOOTSEL"], os.environ.get("R6_FAKE_PICOTOOL_MODE", "ok")
with open(os.environ["R6_FAKE_PICOTOOL_LOG"], "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
if not os.path.isdir(dev):
    print("No accessible RP-series devices in BOOTSEL mode were found.")
    sys.exit(252)
if mode == "perm":
    print("Device at bus 1, address 7 appears to be an RP-series device in BOOTSEL mode, but picotool was unable "
          "to connect. Maybe try 'sudo' or check your permissions.")
    sys.exit(250)
if sys.argv[1] == "info":
    print("Program Information\n name:          MicroPython")
    sys.exit(0)
if sys.argv[1] == "load":
    if mode == "fail":
        print("ERROR: Write to flash failed")
        sys.exit(1)
    shutil.copy(sys.argv[-1], os.path.join(dev, "flash.uf2"))
    print("Loading into Flash:   [==============================]  100%%")
    print("Verifying Flash:      [==============================]  100%%\n  OK\n")
    print("The device was rebooted to start the application.")
    sys.exit(0)
sys.exit(1)
''' % sys.executable


@pytest.fixture
def fake(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "picotool"
    exe.write_text(FAKE)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bindir) + os.pathsep + os.environ["PATH"])
    dev = tmp_path / "bootsel"
    monkeypatch.setenv("R6_FAKE_BOOTSEL", str(dev))
    monkeypatch.setenv("R6_FAKE_PICOTOOL_LOG", str(tmp_path / "calls"))
    return dev, tmp_path / "calls"


def test_picotool_loads_verifies_and_starts_without_a_drive(tmp_path, fake, capsys):
    dev, calls = fake
    dev.mkdir()                         # a board in BOOTSEL mode on USB; no drive mounted anywhere
    fw = uf2(tmp_path / "fw.uf2")
    assert cli_main(["flash", "--board", "rp2040", "--firmware", fw]) == 0
    out = capsys.readouterr().out
    assert calls.read_text().splitlines() == ["info", "load -v -x -t uf2 %s" % fw]
    assert open(dev / "flash.uf2", "rb").read() == open(fw, "rb").read()
    assert "picotool: Verifying Flash" in out and "roam6 deploy --board rp2040" in out


def test_picotool_reboots_a_pico_running_micropython_first(tmp_path, fake):
    """No board in BOOTSEL mode, one running MicroPython: reboot it (the REPL path itself is tested
    with a real MicroPython in test_ports.py), then picotool sees it and loads."""
    dev, calls = fake
    fw = uf2(tmp_path / "fw.uf2")
    said, rebooted = [], []
    out = picotool.flash(boards.load_board("rp2040"), fw, lambda: "/dev/ttyACM0",
                         lambda port: (rebooted.append(port), dev.mkdir()), 5, log=said.append)
    assert out == "picotool" and rebooted == ["/dev/ttyACM0"]
    assert "asking MicroPython on /dev/ttyACM0 to reboot into BOOTSEL" in said[0]
    assert calls.read_text().splitlines()[-1].startswith("load -v -x")


def test_no_board_permissions_and_failures_are_explained(tmp_path, fake, monkeypatch):
    dev, calls = fake
    fw = uf2(tmp_path / "fw.uf2")
    board = boards.load_board("rp2040")
    with pytest.raises(UserError) as ei:       # nothing in BOOTSEL mode, no Pico port
        flash.flash_rp2040(board, fw, log=lambda *a: None)
    assert "picotool found no board in BOOTSEL mode" in str(ei.value) and "BOOTSEL button" in str(ei.value)
    dev.mkdir()
    monkeypatch.setenv("R6_FAKE_PICOTOOL_MODE", "perm")
    with pytest.raises(UserError) as ei:
        flash.flash_rp2040(board, fw, log=lambda *a: None)
    assert "cannot open it" in str(ei.value) and "99-picotool.rules" in str(ei.value)
    monkeypatch.setenv("R6_FAKE_PICOTOOL_MODE", "fail")
    with pytest.raises(UserError) as ei:
        flash.flash_rp2040(board, fw, log=lambda *a: None)
    assert "picotool load failed: ERROR: Write to flash failed" in str(ei.value)


def test_bad_uf2_refused_before_picotool_and_drive_or_flag_copies(tmp_path, fake, capsys):
    dev, calls = fake
    dev.mkdir()
    bad = uf2(tmp_path / "esp.uf2", family=0x1C5F21B0)      # an ESP32 UF2
    with pytest.raises(UserError):
        flash.flash_rp2040(boards.load_board("rp2040"), bad, log=lambda *a: None)
    assert not calls.exists()                               # picotool never ran
    fw = uf2(tmp_path / "fw.uf2")
    mounts = tmp_path / "mounts"
    mounts.write_text("")
    with pytest.raises(UserError) as ei:                    # --no-picotool: the drive path as before
        flash.flash_rp2040(boards.load_board("rp2040"), fw, mounts_file=str(mounts), log=lambda *a: None,
                           use_picotool=False)
    assert "no RPI-RP2 drive" in str(ei.value) and not calls.exists()
