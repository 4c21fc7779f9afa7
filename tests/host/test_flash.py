"""`roam6 flash`: image checks, esptool arguments and failures, UF2 validation and copy.

No ESP32 chip and no RP2040 in BOOTSEL mode exist here, so: ESP images are built by esptool's own
image classes (synthetic segments); the real esptool runs against a pseudo-terminal where no chip
answers, and against tests/host/standins/esp_rom.py, a stand-in chip speaking the ROM/stub serial
protocol (connect, stub upload, erase, compressed write, MD5 verify) over a pty; a temp folder
with an INFO_UF2.TXT stands in for the BOOTSEL drive.
"""
import hashlib
import os
import shutil
import struct
import sys
import threading
import time

import pytest
from esptool.bin_image import ELFSection, ESP32FirmwareImage, ESP32S3FirmwareImage

from roam6_host import boards, flash, images

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "standins"))
from esp_rom import EspRom, ERASE_FLASH  # noqa: E402  (the stand-in chip)
from roam6_host.cli import main as cli_main
from roam6_host.errors import UserError

RP2040 = 0xE48BFF56
RP2350_ARM_S = 0xE48BFF59
INFO_RP2040 = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"
INFO_RP2350 = "UF2 Bootloader v1.0\nModel: Raspberry Pi RP2350\nBoard-ID: RP2350\n"


def _one_image(cls, entry, fill):
    img = cls()
    img.entrypoint = entry
    img.segments = [ELFSection(b".dram0.data", 0x3FFB0000, bytes(range(256)) * 4, 0),
                    ELFSection(b".iram0.text", 0x40080000, bytes([fill]) * 512, 0)]
    return img.save(None)


def partition_table(entries):
    """ESP-IDF's binary partition table (gen_esp32part.py's layout): 32-byte entries, an MD5 entry, 0xFF."""
    out = b"".join(b"\xaa\x50" + struct.pack("<BBII", t, s, off, size) + label.encode().ljust(16, b"\0") + bytes(4)
                   for t, s, off, size, label in entries)
    return (out + b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(out).digest()).ljust(0xC00, b"\xff")


MP_PARTITIONS = [(1, 2, 0x9000, 0x6000, "nvs"), (1, 1, 0xF000, 0x1000, "phy_init"),
                 (0, 0, 0x10000, 0x1F0000, "factory"), (1, 0x81, 0x200000, 0x200000, "vfs")]


def esp_image(path, cls=ESP32FirmwareImage, offset=0x1000, parts=MP_PARTITIONS):
    """A firmware .bin laid out as micropython.org's for ESP32, written at `offset`: the bootloader
    image, the partition table at flash 0x8000 and the app at 0x10000, each image by esptool's classes."""
    boot = _one_image(cls, 0x40080400, 0x01)
    app = _one_image(cls, 0x40081000, 0x02)
    data = bytearray(boot.ljust(0x8000 - offset, b"\xff") + partition_table(parts))
    data = data.ljust(0x10000 - offset, b"\xff") + app
    with open(str(path), "wb") as f:
        f.write(data)
    return str(path)


def uf2(path, family=RP2040, payload=b"", blocks=None, flags=0x2000):
    """A UF2 file by the spec (microsoft/uf2 README): 256 data bytes per block from 0x10000000."""
    payload = payload or bytes((i * 7) & 0xFF for i in range(256 * 5))
    chunks = [payload[i:i + 256] for i in range(0, len(payload), 256)]
    n = len(chunks) if blocks is None else blocks
    out = bytearray()
    for i, c in enumerate(chunks):
        head = struct.pack("<8I", 0x0A324655, 0x9E5D5157, flags, 0x10000000 + 256 * i, 256, i, n, family)
        out += head + c.ljust(476, b"\0") + struct.pack("<I", 0x0AB16F30)
    with open(path, "wb") as f:
        f.write(out)
    return str(path)


def drive(tmp_path, info=INFO_RP2040, name="RPI-RP2"):
    d = tmp_path / name
    d.mkdir()
    (d / "INFO_UF2.TXT").write_text(info)
    (d / "INDEX.HTM").write_text("<html>redirect</html>")
    return str(d)


# ---- ESP32 -----------------------------------------------------------------------------------

def test_esptool_arguments_come_from_board_json():
    board = boards.load_board("esp32")
    fl = board["flash"]
    assert flash.esptool_args(board, "/dev/ttyUSB0", "fw.bin") == [
        "--chip", fl["chip"], "--port", "/dev/ttyUSB0", "--baud", str(fl["baud"]), "write-flash",
        "--erase-all", "-z", fl["offset"], "fw.bin"]
    args = flash.esptool_args(board, "/dev/ttyUSB1", "fw.bin", baud=115200, erase=False, connect_attempts=1)
    assert args[:8] == ["--chip", "esp32", "--port", "/dev/ttyUSB1", "--baud", "115200", "--connect-attempts", "1"]
    assert "--erase-all" not in args and args[-2:] == [fl["offset"], "fw.bin"]


def test_esp_image_made_by_esptool_passes(tmp_path, capsys):
    path = esp_image(tmp_path / "fw.bin")
    info = images.check_esp_image(path, 0, "ESP32")
    assert info["segments"] == 2 and info["chip_id"] == 0 and info["entry"] == 0x40080400
    assert cli_main(["flash", "--board", "esp32", "--firmware", path, "--check"]) == 0
    assert "a valid ESP32 image, 2 segments" in capsys.readouterr().out


def test_esp_image_for_another_chip_is_refused_before_the_port(tmp_path, capsys):
    path = esp_image(tmp_path / "s3.bin", ESP32S3FirmwareImage)
    # the port does not exist either: the image error must come first, nothing is touched
    assert cli_main(["flash", "--board", "esp32", "--firmware", path, "--port", "/dev/ttyUSB-none"]) == 2
    err = capsys.readouterr().err
    assert "built for ESP32-S3 (chip id 9)" in err and "board is ESP32 (chip id 0)" in err and "Traceback" not in err


@pytest.mark.parametrize("content,message", [
    (None, "does not exist"),
    (b"", "is not an ESP image"),
    (b"\x7fELF" + b"\0" * 60, "an ELF file"),
    (b"\xe9\x00" + b"\0" * 40, "claims 0 segments"),
])
def test_bad_esp_files(tmp_path, capsys, content, message):
    path = tmp_path / "fw.bin"
    if content is not None:
        path.write_bytes(content)
    assert cli_main(["flash", "--board", "esp32", "--firmware", str(path), "--port", "/dev/null"]) == 2
    assert message in capsys.readouterr().err


def test_uf2_given_to_esp32_says_what_it_is(tmp_path, capsys):
    path = uf2(tmp_path / "fw.uf2")
    assert cli_main(["flash", "--board", "esp32", "--firmware", path, "--port", "/dev/null"]) == 2
    err = capsys.readouterr().err
    assert "not an ESP image" in err and "UF2 file" in err


def test_missing_port(tmp_path, capsys):
    path = esp_image(tmp_path / "fw.bin")
    assert cli_main(["flash", "--board", "esp32", "--firmware", path, "--port", "/dev/ttyUSB-none"]) == 2
    assert "serial port /dev/ttyUSB-none does not exist" in capsys.readouterr().err
    assert cli_main(["flash", "--board", "esp32", "--firmware", path]) == 2
    assert "--port is missing" in capsys.readouterr().err


def test_permission_denied_on_the_port(tmp_path):
    """A real pty owned by root, mode 0620: a process running as `nobody` may not open it."""
    if os.getuid() != 0:
        pytest.skip("needs root to drop to another user (CI runs as root)")
    master, slave = os.openpty()
    port = os.ttyname(slave)
    os.chmod(port, 0o620)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: become nobody, try the check, report through the pipe
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                flash.check_port(port)
                msg = "no error"
            except UserError as exc:
                msg = str(exc)
            os.write(w, msg.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        _pid, status = os.waitpid(pid, 0)
        msg = os.read(r, 4096).decode()
    finally:
        os.close(r)
        os.close(master)
        os.close(slave)
    assert status == 0
    assert "permission denied on %s" % port in msg and "usermod -aG" in msg


def test_real_esptool_against_a_silent_port(tmp_path, capsys):
    """esptool really runs and really fails to find a chip on a pty where nothing answers."""
    master, slave = os.openpty()
    try:
        board = boards.load_board("esp32")
        with pytest.raises(UserError) as ei:
            flash.flash_esp32(board, os.ttyname(slave), esp_image(tmp_path / "fw.bin"), connect_attempts=1,
                              log=lambda *a: None)
    finally:
        os.close(master)
        os.close(slave)
    out = capsys.readouterr().out
    assert "esptool" in out                                    # its own output was passed through
    assert "does not answer the bootloader" in str(ei.value) and "BOOT" in str(ei.value)


def test_real_esptool_erases_and_writes_the_image_at_the_board_offset(tmp_path, capsys):
    rom = EspRom("ESP32").start()
    try:
        fw = esp_image(tmp_path / "fw.bin")
        assert cli_main(["flash", "--board", "esp32", "--port", rom.port, "--firmware", fw]) == 0
    finally:
        rom.close()
    data = open(fw, "rb").read()
    offset = int(boards.load_board("esp32")["flash"]["offset"], 0)
    assert bytes(rom.flash[offset:offset + len(data)]) == data         # written where board.json says
    assert rom.flash[:offset] == b"\xff" * offset                      # and nowhere else
    assert ERASE_FLASH in rom.commands                                  # erased first
    out = capsys.readouterr().out
    assert "Hash of data verified" in out and "100.0%" in out and "roam6 deploy --board esp32" in out


def test_real_esptool_meets_another_chip(tmp_path, capsys):
    rom = EspRom("ESP32-S2").start()
    try:
        fw = esp_image(tmp_path / "fw.bin")
        rc = cli_main(["flash", "--board", "esp32", "--port", rom.port, "--firmware", fw])
    finally:
        rom.close()
    assert rc == 1
    assert "wrong chip: the board on %s is ESP32-S2, not ESP32" % rom.port in capsys.readouterr().err
    assert rom.flash == b"\xff" * len(rom.flash)


def test_esptool_wrong_chip_output_is_explained():
    out = "Connecting....\nA fatal error occurred: This chip is ESP32-S3, not ESP32. Wrong chip argument?\n"
    err = flash.explain_esptool(out, "/dev/ttyUSB0", "esp32")
    assert "wrong chip: the board on /dev/ttyUSB0 is ESP32-S3, not ESP32" in str(err)


# ---- RP2040 ----------------------------------------------------------------------------------

def test_uf2_copied_to_the_named_drive(tmp_path, capsys):
    path = uf2(tmp_path / "fw.uf2")
    d = drive(tmp_path)
    assert cli_main(["flash", "--board", "rp2040", "--firmware", path, "--drive", d, "--wait", "1"]) == 0
    assert open(os.path.join(d, "fw.uf2"), "rb").read() == open(path, "rb").read()
    out = capsys.readouterr().out
    assert "100%" in out and "5 blocks" in out
    # the stand-in drive never goes away: that is what a boot ROM refusing the file looks like
    assert "still there after 1s" in out


def test_drive_going_away_means_the_board_rebooted(tmp_path):
    path = uf2(tmp_path / "fw.uf2")
    d = drive(tmp_path)

    def boot_rom():  # plays the RP2040 boot ROM: once the whole UF2 is in, reboot (the drive unmounts)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            f = os.path.join(d, "fw.uf2")
            if os.path.exists(f) and os.path.getsize(f) == os.path.getsize(path):
                shutil.rmtree(d)
                return
            time.sleep(0.02)

    t = threading.Thread(target=boot_rom)
    t.start()
    said = []
    flash.flash_rp2040(boards.load_board("rp2040"), path, drive=d, log=said.append, wait_s=10)
    t.join(10)
    assert any("left BOOTSEL mode" in s for s in said) and any("roam6 deploy --board rp2040" in s for s in said)


def test_bootsel_drive_found_by_its_info_file(tmp_path):
    path = uf2(tmp_path / "fw.uf2")
    d = drive(tmp_path)
    other = tmp_path / "usbstick"
    other.mkdir()
    # the mount table is the one thing faked: it lists our stand-in drive and an ordinary folder
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sdb1 %s vfat rw 0 0\n/dev/sdc1 %s vfat rw 0 0\n" % (other, d))
    assert flash.find_bootsel_drives("RPI-RP2", mounts_file=str(mounts)) == [d]
    board = boards.load_board("rp2040")
    dst = flash.flash_rp2040(board, path, mounts_file=str(mounts), log=lambda *a: None, wait_s=0)
    assert dst == os.path.join(d, "fw.uf2") and os.path.getsize(dst) == os.path.getsize(path)
    assert not os.listdir(other)


def test_no_bootsel_drive_says_how_to_enter_bootsel(tmp_path, capsys):
    path = uf2(tmp_path / "fw.uf2")
    mounts = tmp_path / "mounts"
    mounts.write_text("")
    with pytest.raises(UserError) as ei:
        flash.flash_rp2040(boards.load_board("rp2040"), path, mounts_file=str(mounts), log=lambda *a: None)
    assert "no RPI-RP2 drive" in str(ei.value) and "BOOTSEL" in str(ei.value)


def test_drive_of_another_chip_or_no_drive(tmp_path, capsys):
    path = uf2(tmp_path / "fw.uf2")
    d = drive(tmp_path, INFO_RP2350, "RP2350")
    assert cli_main(["flash", "--board", "rp2040", "--firmware", path, "--drive", d]) == 2
    assert "is a RP2350 boot drive, not RPI-RP2" in capsys.readouterr().err
    plain = tmp_path / "plain"
    plain.mkdir()
    assert cli_main(["flash", "--board", "rp2040", "--firmware", path, "--drive", str(plain)]) == 2
    assert "no INFO_UF2.TXT" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(d, "fw.uf2"))


@pytest.mark.parametrize("make,message", [
    (lambda p: uf2(p, family=RP2350_ARM_S), "is for RP2350 Arm secure (0xe48bff59)"),
    (lambda p: uf2(p, blocks=9), "truncated"),
    (lambda p: open(p, "wb").write(b"\0" * 512), "bad UF2 magic"),
    (lambda p: open(p, "wb").write(b"\0" * 100), "not a multiple of 512"),
    (lambda p: uf2(p, flags=0), "needs RP2040 (family 0xe48bff56)"),
])
def test_bad_uf2_files_are_refused_before_the_drive(tmp_path, capsys, make, message):
    path = str(tmp_path / "fw.uf2")
    make(path)
    d = drive(tmp_path)
    assert cli_main(["flash", "--board", "rp2040", "--firmware", path, "--drive", d]) == 2
    assert message in capsys.readouterr().err
    assert sorted(os.listdir(d)) == ["INDEX.HTM", "INFO_UF2.TXT"]


def test_uf2_with_picotool_absolute_block_is_accepted(tmp_path):
    a = open(uf2(tmp_path / "abs.uf2", family=0xE48BFF57, payload=b"\xff" * 256), "rb").read()
    b = open(uf2(tmp_path / "main.uf2"), "rb").read()
    (tmp_path / "both.uf2").write_bytes(a + b)
    info = images.check_uf2(str(tmp_path / "both.uf2"), RP2040, "RP2040")
    assert info["families"] == {0xE48BFF57: 1, RP2040: 5}


def test_unix_board_has_nothing_to_flash(tmp_path, capsys):
    assert cli_main(["flash", "--board", "unix", "--firmware", sys.executable]) == 2
    assert "nothing to flash" in capsys.readouterr().err


def test_esptool_floor_in_pyproject_is_the_release_with_the_commands_flash_runs():
    """esptool 5.0 renamed commands to dashed names (write_flash -> write-flash); roam6 runs the dashed
    ones, so the floor pyproject.toml declares must be 5.0, and the installed esptool must know them."""
    import re
    import subprocess
    from importlib.metadata import version
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml")) as f:
        floor = re.search(r'"esptool>=([0-9.]+)"', f.read()).group(1)
    args = flash.esptool_args(boards.load_board("esp32"), "/dev/ttyUSB0", "fw.bin", connect_attempts=1)
    assert "write-flash" in args and floor.split(".")[0] == "5"
    assert tuple(int(x) for x in version("esptool").split(".")[:2]) >= tuple(int(x) for x in floor.split(".")[:2])
    r = subprocess.run([sys.executable, "-m", "esptool", "write-flash", "--help"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "--erase-all" in r.stdout
    r = subprocess.run([sys.executable, "-m", "esptool", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and all(o in r.stdout for o in ("--connect-attempts", "--chip", "--baud", "--port"))


# ---- truncated and corrupt images: esptool's loader refuses them before any port is touched

def _damaged(tmp_path, how):
    data = bytearray(open(esp_image(tmp_path / "good.bin"), "rb").read())
    app = 0x10000 - 0x1000
    if how == "cut-in-bootloader":
        data = data[:0x200]
    elif how == "cut-before-table":
        data = data[:0x5000]
    elif how == "cut-before-app":
        data = data[:app]
    elif how == "cut-in-app":
        data = data[:app + 0x300]
    elif how == "cut-app-digest":
        data = data[:-10]
    elif how == "bootloader-byte":
        data[0x100] ^= 0x40                    # inside a segment: the XOR checksum sees it
    elif how == "app-byte":
        data[app + 0x100] ^= 0x01
    elif how == "app-header":
        data[app + 4] ^= 0x10                   # the entry point: outside the checksum, inside the SHA-256
    elif how == "table-entry":
        data[0x7000 + 36] ^= 0x01              # the second entry's offset field: the MD5 sees it
    elif how == "no-table":
        data[0x7000:0x7000 + 0xC00] = b"\0" * 0xC00
    p = tmp_path / ("%s.bin" % how)
    p.write_bytes(bytes(data))
    return str(p)


@pytest.mark.parametrize("how,message", [
    ("cut-in-bootloader", "is truncated or damaged (esptool: End of file reading segment"),
    ("cut-before-table", "is truncated: it ends at 0x5000, before the partition table at flash 0x8000"),
    ("cut-before-app", "is truncated: it ends at flash 0x10000, before its app partition 'factory' at 0x10000"),
    ("cut-in-app", "(app 'factory' at flash 0x10000) is truncated or damaged (esptool: End of file reading segment"),
    ("cut-app-digest", "(app 'factory' at flash 0x10000) is truncated: its SHA-256 is cut short"),
    ("bootloader-byte", "is damaged: checksum 0x"),
    ("app-byte", "(app 'factory' at flash 0x10000) is damaged: checksum 0x"),
    ("app-header", "(app 'factory' at flash 0x10000) is damaged: its SHA-256 does not match its content"),
    ("table-entry", "its partition table is damaged (MD5 mismatch)"),
    ("no-table", "has no partition table at flash 0x8000 (file offset 0x7000)"),
])
def test_truncated_or_corrupt_image_is_refused_before_the_port(tmp_path, capsys, how, message):
    path = _damaged(tmp_path, how)
    rom = EspRom("ESP32").start()             # a chip that would take it: it must never be spoken to
    try:
        assert cli_main(["flash", "--board", "esp32", "--firmware", path, "--port", rom.port]) == 2
    finally:
        rom.close()
    out, err = capsys.readouterr()
    assert message in err and "download the .bin again" in err and "Traceback" not in err, err
    assert rom.commands == [] and rom.flash == b"\xff" * len(rom.flash)
    assert cli_main(["flash", "--board", "esp32", "--firmware", path, "--check"]) == 2
    assert message in capsys.readouterr().err


def test_check_names_what_esptools_loader_checked(tmp_path, capsys):
    path = esp_image(tmp_path / "fw.bin")
    assert cli_main(["flash", "--board", "esp32", "--firmware", path, "--check"]) == 0
    assert "its partition table and 1 app image(s) checked by esptool's loader" in capsys.readouterr().out
    # an app image alone, for an app offset (0x10000): no partition table is looked for
    app = tmp_path / "app.bin"
    app.write_bytes(open(path, "rb").read()[0x10000 - 0x1000:])
    assert images.check_esp_image(str(app), 0, "ESP32", offset=0x10000)["apps"] == 0
    # an OTA layout: the second app partition left empty is fine
    ota = esp_image(tmp_path / "ota.bin", parts=MP_PARTITIONS[:2] + [(0, 0x10, 0x10000, 0x180000, "ota_0"),
                                                                     (0, 0x11, 0x190000, 0x180000, "ota_1")])
    assert images.check_esp_image(ota, 0, "ESP32", offset=0x1000)["apps"] == 1
