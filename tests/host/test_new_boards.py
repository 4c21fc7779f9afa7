"""The boards added after the first three: ESP32-S3, ESP32-C3 (esp32 port, udp4, no native module
without their toolchains) and the Raspberry Pi Pico 2 W (RP2350 in Arm mode: UF2 family
0xe48bff59, the native module for armv7emsp built by Debian's arm-none-eabi-gcc).

The shared tests run them too (test_build's BOARDS, test_board_main's boot on the unix port with
stand-in Wi-Fi). Here: their images (made by esptool's own classes for the ESP32-S3/C3, by the
UF2 spec for the RP2350) checked and refused as for the others, the UF2 copied to a stand-in
RP2350 BOOTSEL drive, a config's transports checked by deploy before the port, a bundle deployed
to the serial stand-in board, and the build saying why a native module is missing.
"""
import json
import os

import pytest
from esptool.bin_image import ESP32C3FirmwareImage, ESP32S3FirmwareImage

from roam6_host import boards, build, fwfetch, natmod_build
from roam6_host.cli import main as cli_main
from roam6_host.deploy import deploy
from roam6_host.mpy import read_header
from test_flash import INFO_RP2040, INFO_RP2350, RP2040, RP2350_ARM_S, drive, esp_image, uf2

NEW = {"esp32s3": ("xtensawin", "ESP32_GENERIC_S3"), "esp32c3": ("rv32imc", "ESP32_GENERIC_C3"),
       "rp2350": ("armv7emsp", "RPI_PICO2_W")}


def quiet(*a):
    pass


@pytest.mark.parametrize("name", sorted(NEW))
def test_profiles(name):
    b = boards.load_board(name)
    arch, mp_board = NEW[name]
    assert b["mpy_arch"] == arch and b["natmod_arch"] == arch
    assert b["flash"]["micropython_board"] == mp_board
    assert fwfetch.image_name(b).startswith(mp_board + "-v" + fwfetch.MICROPYTHON_VERSION)
    assert b["flash"]["firmware_url"] == "https://micropython.org/download/%s/" % mp_board
    assert os.path.isfile(os.path.join(b["dir"], "main.py")) and os.path.isfile(os.path.join(b["dir"], "link.py"))
    if name.startswith("esp32"):
        assert b["transports"] == ["udp4"] and b["flash"]["offset"] == "0x0"      # bootloader at 0 on S3/C3
        assert "natmod_note" in b                                                 # says why there is none here
        assert b["exclude"].keys() == boards.load_board("esp32")["exclude"].keys()
    else:
        assert b["transports"] == ["udp6", "udp4"] and int(b["flash"]["uf2_family_id"], 0) == RP2350_ARM_S


@pytest.mark.parametrize("name,cls", [("esp32s3", ESP32S3FirmwareImage), ("esp32c3", ESP32C3FirmwareImage)])
def test_esp_images_for_s3_and_c3(tmp_path, capsys, name, cls):
    good = esp_image(tmp_path / "good.bin", cls=cls, offset=0)
    assert cli_main(["flash", "--board", name, "--firmware", good, "--check"]) == 0
    out = capsys.readouterr().out
    assert "a valid %s image" % name.upper() in out and "partition table and 1 app image(s)" in out
    # the ESP32's image (bootloader at 0x1000) is refused, naming the chip it is for
    esp32 = esp_image(tmp_path / "esp32.bin")
    assert cli_main(["flash", "--board", name, "--firmware", esp32, "--check"]) == 2
    err = capsys.readouterr().err
    assert "is built for ESP32 (chip id 0), but this board is %s" % name.upper() in err, err
    # truncated before its app: refused before any port
    with open(good, "rb") as f:
        data = f.read()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(data[:0x9000])
    assert cli_main(["flash", "--board", name, "--firmware", str(cut), "--check", "--port", "/dev/none"]) == 2
    assert "truncated" in capsys.readouterr().err


def test_rp2350_uf2_checked_and_copied_to_its_bootsel_drive(tmp_path, capsys):
    good = uf2(str(tmp_path / "p2.uf2"), family=RP2350_ARM_S)
    assert cli_main(["flash", "--board", "rp2350", "--firmware", good, "--check"]) == 0
    assert "a valid RP2350 UF2, 5 blocks" in capsys.readouterr().out
    pico1 = uf2(str(tmp_path / "p1.uf2"), family=RP2040)
    assert cli_main(["flash", "--board", "rp2350", "--firmware", pico1, "--check"]) == 2
    err = capsys.readouterr().err
    assert "is for RP2040 (0xe48bff56), but this board needs RP2350 (family 0xe48bff59)" in err
    d = drive(tmp_path, INFO_RP2350, name="RP2350")
    assert cli_main(["flash", "--board", "rp2350", "--firmware", good, "--drive", d, "--wait", "0"]) == 0
    with open(os.path.join(d, "p2.uf2"), "rb") as f, open(good, "rb") as g:
        assert f.read() == g.read()
    assert "for RP2350 ->" in capsys.readouterr().out
    # a Pico W's (RP2040) boot drive is not the Pico 2 W's
    old = drive(tmp_path, INFO_RP2040)
    assert cli_main(["flash", "--board", "rp2350", "--firmware", good, "--drive", old, "--wait", "0"]) == 2
    assert "is a RPI-RP2 boot drive, not RP2350" in capsys.readouterr().err


def test_rp2350_native_module_is_armv7emsp(tmp_path):
    path = natmod_build.build_natmod("armv7emsp", str(tmp_path))
    head = read_header(path)
    assert (head["arch"], head["version"], head["sub_version"]) == ("armv7emsp", 6, 3)
    assert 1000 < os.path.getsize(path) < 16384
    index = build.build_bundle("rp2350", out_dir=str(tmp_path / "b"), log=quiet)
    assert index["natmod"] == {"files": ["roam6_native.mpy"], "skipped": None}
    assert read_header(str(tmp_path / "b" / "roam6_native.mpy"))["arch"] == "armv7emsp"


def test_c3_build_says_why_it_has_no_native_module(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")          # no RISC-V compiler here (nor in Debian's default set)
    lines = []
    index = build.build_bundle("esp32c3", out_dir=str(tmp_path / "c3"), log=lines.append)
    assert index["natmod"]["files"] == [] and "riscv64-unknown-elf-gcc not found" in index["natmod"]["skipped"]
    said = "\n".join(lines)
    assert "native module: SKIPPED for rv32imc" in said
    assert "board esp32c3: the native module (rv32imc) needs a RISC-V compiler" in said


def test_c3_native_module_with_the_pinned_tree_says_it_needs_a_newer_one(tmp_path, monkeypatch):
    """With a RISC-V compiler on PATH (a stand-in script: none is installed here), the pinned
    MicroPython 1.23 build files are what stops it, and the error says what to use instead."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "riscv64-unknown-elf-gcc"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ["PATH"])
    monkeypatch.delenv("ROAM6_MPY_DIR", raising=False)
    with pytest.raises(Exception) as e:
        natmod_build.build_natmod("rv32imc", str(tmp_path / "o"))
    assert "cannot build native modules for rv32imc" in str(e.value) and "1.24 or newer" in str(e.value)


@pytest.mark.parametrize("name,ok", [("esp32c3", False), ("esp32s3", False), ("rp2350", True)])
def test_deploy_checks_the_config_transports_for_the_new_boards(tmp_path, capsys, name, ok):
    pkg = tmp_path / "src" / "vpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("X = 1\n")
    out = tmp_path / name
    build.build_bundle(name, out_dir=str(out), natmod=False, package_dir=str(pkg), log=quiet)
    cfg = tmp_path / "c.json"
    assert cli_main(["provision", "--nai", "u@example.test", "--hoa", "2001:db8:aa::100", "--ha", "2001:db8:aa::1",
                     "--transports", "udp6", "--keys-file", str(tmp_path / "k.json"), "--out", str(cfg)]) == 0
    capsys.readouterr()
    assert cli_main(["deploy", "--port", "/dev/ttyUSB-none", "--bundle", str(out), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    if ok:
        assert "serial port /dev/ttyUSB-none does not exist" in err, err
    else:
        assert "asks for transport udp6, which board %s cannot use (it has: udp4)" % name in err, err


def test_rp2350_bundle_lands_on_a_board(board, tmp_path):
    """deploy copies a Pico 2 W bundle (bytecode only here: the stand-in board is x64) and its board files."""
    pkg = tmp_path / "src" / "vpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("X = 1\n")
    out = tmp_path / "rp2350"
    build.build_bundle("rp2350", out_dir=str(out), natmod=False, package_dir=str(pkg), log=quiet)
    res = deploy(board.port, str(out), reset=False, log=quiet)
    assert "main.py" in res["copied"] and "board.json" in res["copied"]
    with open(os.path.join(board.fs_dir, "board.json")) as f:
        assert json.load(f)["name"] == "rp2350"
