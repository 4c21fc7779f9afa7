"""Finding the board's port (`--port auto`, the default) and `roam6 boards`.

No USB board is attached here, so pyserial's port list is replaced by a fake one made of
pyserial's own ListPortInfo records; where a port must answer, its device is the pty of the
MicroPython unix port (the `board` fixture), so the probe and the deploy are real."""
import os
import shutil
import subprocess

import pytest
import serial.tools.list_ports
from serial.tools.list_ports_common import ListPortInfo

from roam6_host import boards, build, ports
from roam6_host.cli import main as cli_main
from roam6_host.errors import UserError

needs_socat = pytest.mark.skipif(not shutil.which("socat"),
                                 reason="socat missing: apt-get install socat (deps/apt.txt)")


def usb(device, vid, pid, manufacturer=None, product=None):
    p = ListPortInfo(device, skip_link_detection=True)
    p.vid, p.pid, p.manufacturer, p.product = vid, pid, manufacturer, product
    p.description = product or "n/a"
    p.hwid = "USB VID:PID=%04X:%04X" % (vid, pid) if vid is not None else "n/a"
    return p


CP2102 = usb("/dev/ttyUSB0", 0x10C4, 0xEA60, "Silicon Labs", "CP2102 USB to UART Bridge Controller")
CH340 = usb("/dev/ttyUSB1", 0x1A86, 0x7523, None, "USB Serial")
PICO = usb("/dev/ttyACM0", 0x2E8A, 0x0005, "MicroPython", "Board in FS mode")
S3 = usb("/dev/ttyACM1", 0x303A, 0x1001, "Espressif", "USB JTAG/serial debug unit")
MODEM = usb("/dev/ttyACM2", 0x1BC7, 0x1201, "Telit", "LTE modem")
BUILTIN = usb("/dev/ttyS0", None, None)


@pytest.fixture
def attached(monkeypatch):
    """attached(*ports): what pyserial lists from now on."""
    def set_ports(*ps):
        monkeypatch.setattr(serial.tools.list_ports, "comports", lambda *a, **k: list(ps))
    set_ports()
    return set_ports


def quiet(*a):
    pass


@pytest.mark.parametrize("port,what", [
    (CP2102, "CP210x"), (CH340, "CH340"), (usb("/dev/ttyUSB2", 0x1A86, 0x55D4), "CH9102"),
    (usb("/dev/ttyUSB3", 0x0403, 0x6001), "FT232R"), (usb("/dev/ttyUSB4", 0x0403, 0x6010), "FT2232"),
    (usb("/dev/ttyUSB5", 0x0403, 0x6014), "FT232H"), (usb("/dev/ttyUSB6", 0x0403, 0x6015), "FT231X"),
    (S3, "Espressif native USB"), (PICO, "Raspberry Pi RP2040/RP2350"),
])
def test_every_known_bridge_and_native_usb_is_a_candidate(attached, port, what):
    attached(port, MODEM, BUILTIN)
    found = ports.candidates()
    assert [c.device for c in found] == [port.device] and what in found[0].what
    assert ports.resolve("auto", log=quiet) == port.device == ports.resolve(None, log=quiet)


def test_a_given_port_is_used_as_given(attached):
    attached(CP2102, CH340)
    assert ports.resolve("/dev/ttyUSB1", log=quiet) == "/dev/ttyUSB1"


def test_several_boards_are_listed_and_the_user_asked_to_choose(attached):
    attached(CH340, CP2102, MODEM)
    with pytest.raises(UserError) as ei:
        ports.resolve("auto", log=quiet)
    msg = str(ei.value)
    assert "2 boards are attached; say which with --port" in msg
    assert "/dev/ttyUSB0" in msg and "10c4:ea60" in msg and "CP2102 USB to UART" in msg
    assert "/dev/ttyUSB1" in msg and "1a86:7523" in msg and "ttyACM2" not in msg


def test_the_board_narrows_the_candidates(attached):
    attached(CP2102, PICO)
    assert ports.resolve("auto", boards.load_board("esp32"), log=quiet) == "/dev/ttyUSB0"
    assert ports.resolve("auto", boards.load_board("rp2040"), log=quiet) == "/dev/ttyACM0"
    with pytest.raises(UserError, match="2 boards are attached for unix"):
        ports.resolve("auto", boards.load_board("unix"), log=quiet)


def test_no_board_says_what_to_check(attached):
    attached(MODEM, BUILTIN)
    with pytest.raises(UserError) as ei:
        ports.resolve("auto", boards.load_board("esp32"), log=quiet)
    msg = str(ei.value)
    assert "--port is missing and no board is attached for esp32" in msg
    assert "other serial ports: /dev/ttyACM2, /dev/ttyS0" in msg
    assert "data cable" in msg and "driver" in msg and "dialout" in msg


def test_flash_without_port_chooses_or_asks_after_checking_the_image(attached, tmp_path, capsys):
    from test_flash import esp_image
    fw = esp_image(tmp_path / "fw.bin")
    attached(CP2102, CH340)
    assert cli_main(["flash", "--board", "esp32", "--firmware", fw]) == 2
    err = capsys.readouterr().err
    assert "2 boards are attached for esp32" in err and "/dev/ttyUSB0" in err and "/dev/ttyUSB1" in err
    attached(PICO)                        # a Pico is no ESP32: nothing to flash esptool at
    assert cli_main(["flash", "--board", "esp32", "--firmware", fw, "--port", "auto"]) == 2
    assert "no board is attached for esp32" in capsys.readouterr().err
    attached(CP2102)                      # the one: chosen, then checked like a given port
    assert cli_main(["flash", "--board", "esp32", "--firmware", fw]) == 2
    out, err = capsys.readouterr()
    assert "port: /dev/ttyUSB0 (10c4:ea60" in out and "serial port /dev/ttyUSB0 does not exist" in err


def test_boards_lists_the_candidates(attached, capsys):
    attached(MODEM, PICO, CP2102)
    assert cli_main(["boards"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["PORT", "USB", "ID", "WHAT"]
    assert lines[1].split()[:2] == ["/dev/ttyACM0", "2e8a:0005"] and "MicroPython Board in FS mode" in lines[1]
    assert lines[2].split()[:2] == ["/dev/ttyUSB0", "10c4:ea60"] and len(lines) == 3
    attached(MODEM)
    assert cli_main(["boards"]) == 1
    assert "no board is attached" in capsys.readouterr().err


@needs_socat
def test_boards_probe_asks_micropython_over_mpremote(attached, board, tmp_path, capsys):
    attached(usb(board.port, 0x303A, 0x1001, "Espressif", "USB JTAG/serial debug unit"))
    master, slave = os.openpty()          # a port with nothing behind it
    try:
        silent = os.ttyname(slave)
        rc = cli_main(["boards", "--probe", "--port", silent, "--timeout", "10"])
    finally:
        os.close(master)
        os.close(slave)
    out = capsys.readouterr().out.splitlines()
    assert rc == 1                                       # one board did not answer
    assert out[1].split()[:2] == [board.port, "303a:1001"]
    assert out[2].split()[:2] == ["->", "micropython"], out   # the unix port: its name, version, machine
    version = out[2].split()[2]
    real = subprocess.run([board.exe, "-c", "import sys; print(sys.implementation.version)"],
                          capture_output=True, text=True, timeout=30).stdout
    assert tuple(int(x) for x in version.split(".")) == eval(real)[:3]
    assert out[3].split()[:2] == [silent, "-"] and "no MicroPython answer: nothing answers on %s" % silent in out[4]


@needs_socat
def test_deploy_finds_the_one_attached_board(attached, board, tmp_path, capsys):
    pkg = tmp_path / "src" / "tiny"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("X = 1\n")
    bundle = tmp_path / "bundle"
    build.build_bundle("unix", out_dir=str(bundle), natmod=False, package_dir=str(pkg), log=quiet)
    attached(usb(board.port, 0x10C4, 0xEA60, "Silicon Labs", "CP2102"), MODEM)
    assert cli_main(["deploy", "--bundle", str(bundle), "--no-reset"]) == 0
    out = capsys.readouterr().out
    assert "port: %s (10c4:ea60" % board.port in out and "deploy done" in out
    assert (tmp_path / "fs" / "tiny" / "__init__.mpy").is_file()


@needs_socat
def test_flash_reboots_a_pico_running_micropython_into_bootsel(attached, tmp_path, capsys):
    """No BOOTSEL drive mounted, one Pico attached running MicroPython: `roam6 flash --board
    rp2040` asks it into BOOTSEL through its REPL (mpremote bootloader), waits for the drive and
    copies the UF2. The Pico is the unix port with a stand-in machine.bootloader() that makes the
    drive appear and leaves the port."""
    from roam6_host import flash
    from roam6_host.unixboard import UnixBoard
    from test_flash import uf2
    here = os.path.dirname(os.path.abspath(__file__))
    drive = str(tmp_path / "RPI-RP2")
    fw = uf2(tmp_path / "fw.uf2")
    mounts = tmp_path / "mounts"
    mounts.write_text("")
    env = dict(os.environ, R6_BOOTSEL_DRIVE=drive)
    bootsel = os.path.join(here, "standins", "pico_bootsel.py")
    with UnixBoard(str(tmp_path / "fs"), args=["-i", bootsel], env=env) as pico:
        attached(usb(pico.port, 0x2E8A, 0x0005, "MicroPython", "Board in FS mode"), CP2102)
        said = []
        dst = flash.flash_rp2040(boards.load_board("rp2040"), fw, port="auto", extra_roots=(drive,),
                                 mounts_file=str(mounts), log=said.append, wait_s=0)
    assert dst == os.path.join(drive, "fw.uf2") and open(dst, "rb").read() == open(fw, "rb").read()
    assert "asking MicroPython on %s to reboot into BOOTSEL (mpremote bootloader)" % pico.port in said[1]
    # nothing attached and no drive: the BOOTSEL hint as before, no port complaint
    attached(MODEM)
    with pytest.raises(UserError) as ei:
        flash.flash_rp2040(boards.load_board("rp2040"), fw, port="auto", mounts_file=str(mounts), log=quiet)
    assert "no RPI-RP2 drive" in str(ei.value) and "BOOTSEL" in str(ei.value)
