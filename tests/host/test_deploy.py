"""`roam6 deploy` for real: mpremote over a socat pty pair to the MicroPython unix port, whose
working folder plays the board's filesystem (roam6_host.unixboard)."""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from roam6_host import build, deploy
from roam6_host.cli import main as cli_main
from roam6_host.errors import UserError
from roam6_host.unixboard import UnixBoard

pytestmark = pytest.mark.skipif(not shutil.which("socat"), reason="socat missing: apt-get install socat (deps/apt.txt)")

MAIN_TICKS = """print('{"ev": "start", "board": "test"}')
import time
n = 0
while True:
    n += 1
    print("tick", n)
    time.sleep(0.2)
"""


def quiet(*a):
    pass


@pytest.fixture(scope="module")
def unix_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "unix"
    index = build.build_bundle("unix", out_dir=str(out), natmod=True, log=quiet)
    # gcc is in deps/apt.txt: the x64 native module must be part of the unix bundle
    assert index["natmod"]["files"] == ["roam6_native.mpy"], index["natmod"]
    return str(out)


def _tree(root):
    out = {}
    for dirpath, _d, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def test_files_land_and_a_second_deploy_copies_nothing(board, unix_bundle, tmp_path):
    cfg = tmp_path / "config.json"
    assert cli_main(["provision", "--nai", "pty@example.test", "--hoa", "2001:db8:aa::100", "--ha", "2001:db8:aa::1",
                     "--transports", "udp6", "--keys-file", str(tmp_path / "keys.json"), "--out", str(cfg)]) == 0
    first = deploy.deploy(board.port, unix_bundle, config=str(cfg), reset=False, log=quiet)
    want = {k: v for k, v in _tree(unix_bundle).items() if k not in build.HOST_ONLY}
    want["config.json"] = hashlib.sha256(cfg.read_bytes()).hexdigest()
    assert _tree(board.fs_dir) == want                     # every file, byte for byte, nothing else
    assert sorted(first["copied"]) == sorted(want) and first["unchanged"] == []
    second = deploy.deploy(board.port, unix_bundle, config=str(cfg), reset=False, log=quiet)
    assert second["copied"] == [] and sorted(second["unchanged"]) == sorted(want)
    assert second["mpremote_calls"] == 1                    # one hash query, no copy
    assert board.starts == 1
    # the deployed firmware imports on the board and picks the native module that came with it
    out = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, "resume", "exec",
                          "import roam6.accel as a; print('NATIVE', a.status['native'], a.status['native_error'])"],
                         capture_output=True, text=True, timeout=60).stdout
    assert "NATIVE " in out and "roam6_native.mpy" in out.split("NATIVE ", 1)[1].split()[0], out


def test_only_the_changed_file_is_copied_then_the_board_restarts(board, unix_bundle, tmp_path, capsys):
    bundle = tmp_path / "b"
    shutil.copytree(unix_bundle, bundle)
    (bundle / "main.py").write_text("print('first version')\n")
    said = []
    deploy.deploy(board.port, str(bundle), reset=False, log=said.append)
    assert any("has no config.json and none was given" in s for s in said)
    (bundle / "main.py").write_text(MAIN_TICKS)
    assert cli_main(["deploy", "--port", board.port, "--bundle", str(bundle), "--log-lines", "4"]) == 0
    out = capsys.readouterr().out
    assert "copying 1 changed files" in out
    assert open(os.path.join(board.fs_dir, "main.py")).read() == MAIN_TICKS
    assert board.starts == 2                                # Ctrl-D ended it, the supervisor started it again
    lines = [ln.split("board| ", 1)[1] for ln in out.splitlines() if "board| " in ln]
    assert lines == ['{"ev": "start", "board": "test"}', "tick 1", "tick 2", "tick 3"]
    # main.py now runs forever; deploy still gets the REPL (Ctrl-C interrupts it as on a real board)
    again = deploy.deploy(board.port, str(bundle), reset=False, log=quiet)
    assert again["copied"] == []


def test_machine_code_for_another_arch_is_refused(board, tmp_path):
    pkg = tmp_path / "src" / "vpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("import micropython\n@micropython.viper\ndef f(x: int) -> int:\n    return x\n")
    esp = tmp_path / "esp"
    build.build_bundle("esp32", out_dir=str(esp), natmod=False, package_dir=str(pkg), log=quiet)
    with pytest.raises(UserError) as ei:
        deploy.deploy(board.port, str(esp), reset=False, log=quiet)
    assert "machine code for xtensawin" in str(ei.value) and "board is x64" in str(ei.value)
    assert os.listdir(board.fs_dir) == []


def test_mip_installs_from_the_bundle_package_json(board, unix_bundle):
    """package.json is what mip reads: mpremote's mip installs the library from it, and it imports."""
    mp = [sys.executable, "-m", "mpremote", "connect", board.port, "resume"]
    proc = subprocess.run(mp + ["mip", "install", "--target", "lib", os.path.join(unix_bundle, "package.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    code = "import sys; sys.path.insert(0, 'lib'); import roam6.wire.addr, roam6; print('V', roam6.__version__)"
    proc = subprocess.run(mp + ["exec", code],
                          capture_output=True, text=True, timeout=60)
    import roam6
    assert "V %s" % roam6.__version__ in proc.stdout, proc.stdout + proc.stderr
    assert os.path.isfile(os.path.join(board.fs_dir, "lib", "roam6", "wire", "addr.mpy"))


def test_deploy_errors_are_clear(tmp_path, unix_bundle, capsys):
    assert cli_main(["deploy", "--port", "/dev/ttyACM-none", "--bundle", unix_bundle]) == 2
    assert "serial port /dev/ttyACM-none does not exist" in capsys.readouterr().err
    assert cli_main(["deploy", "--port", "/dev/null", "--bundle", str(tmp_path)]) == 2
    assert "is not a roam6 bundle" in capsys.readouterr().err
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    assert cli_main(["deploy", "--port", "/dev/null", "--bundle", unix_bundle, "--config", str(bad)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
    assert cli_main(["deploy", "--port", "/dev/null", "--bundle", unix_bundle, "--board", "esp32"]) == 2
    assert "built for board unix, not esp32" in capsys.readouterr().err


def test_a_port_with_no_repl_behind_it(tmp_path, unix_bundle, capsys):
    master, slave = os.openpty()         # a serial port where nothing answers
    try:
        port = os.ttyname(slave)
        rc = cli_main(["deploy", "--port", port, "--bundle", unix_bundle])
    finally:
        os.close(master)
        os.close(slave)
    assert rc == 1
    assert "nothing answers on %s" % port in capsys.readouterr().err


def test_the_hard_reset_path_runs_its_code_in_the_raw_repl(board):
    """Real boards reset by running machine.reset() from the raw REPL; the unix port has no
    machine.reset, so its machine.soft_reset() (which ends the process, and the supervisor
    starts it again) stands in. The output after the reset is read back the same way."""
    with open(os.path.join(board.fs_dir, "main.py"), "w") as f:
        f.write(MAIN_TICKS)
    lines = deploy.reset_and_read(board.port, "hard", 3, 15, log=quiet, code="import machine\nmachine.soft_reset()\n")
    assert lines == ['{"ev": "start", "board": "test"}', "tick 1", "tick 2"]
    assert board.starts == 2


# main.py saying where roam6 was imported from, then idling as the MN would
MAIN_WHERE = "import roam6\nprint('FROM', roam6.__file__)\nimport time\nwhile True:\n    time.sleep(0.2)\n"


@pytest.fixture
def rom_board(tmp_path):
    """The virtual board with a 256 KB ROMFS partition (see UnixBoard: the unix port's missing
    vfs.rom_ioctl is the one stand-in; mpremote's romfs deploy and vfs.VfsRom are real)."""
    b = UnixBoard(str(tmp_path / "fs"), rom_bytes=256 * 1024)
    b.start()
    try:
        yield b
    finally:
        b.stop()


def test_romfs_deploy_moves_the_modules_to_rom_and_a_plain_one_brings_them_back(rom_board, unix_bundle, tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(unix_bundle, bundle)
    (bundle / "main.py").write_text(MAIN_WHERE)
    fs = rom_board.fs_dir
    said = []
    deploy.deploy(rom_board.port, str(bundle), reset=False, log=said.append)  # first as files
    assert any("has a ROMFS partition (262144 bytes)" in s and "--romfs" in s for s in said), said
    assert os.path.isfile(os.path.join(fs, "roam6", "node", "driver.mpy"))
    modules = sorted(k for k in _tree(str(bundle)) if k.endswith(".mpy"))

    said = []
    r = deploy.deploy(rom_board.port, str(bundle), reset=False, log=said.append, romfs=True)
    assert r["rom"] == "written" and r["removed"] == modules and r["copied"] == []
    assert any("next reset" in s for s in said), said            # --no-reset: the user is told
    # only what is not a module stays a file; the old module files and their folders are gone
    kept = [k for k in _tree(str(bundle)) if not k.endswith(".mpy") and k not in build.HOST_ONLY]
    assert sorted(_tree(fs)) == sorted(kept)
    assert not os.path.exists(os.path.join(fs, "roam6"))
    logs = deploy.reset_and_read(rom_board.port, "restart", 1, 15, log=quiet)
    assert logs == ["FROM /rom/roam6/__init__.mpy"], (logs, said)
    with open(rom_board.rom_path, "rb") as f:
        assert f.read(3) == b"\xd2\xcd\x31"

    again = deploy.deploy(rom_board.port, str(bundle), reset=True, log=quiet, romfs=True)
    assert again["rom"] == "unchanged" and again["copied"] == [] and again["removed"] == [] and again["logs"] == []

    back = deploy.deploy(rom_board.port, str(bundle), reset=True, log_lines=1, log_timeout=15, log=quiet)
    assert back["rom"] == "cleared" and sorted(back["copied"]) == modules
    assert back["logs"] == ["FROM roam6/__init__.mpy"]                        # the files again


def test_romfs_deploy_to_a_board_without_a_rom_partition_says_what_it_needs(board, unix_bundle, capsys):
    assert cli_main(["deploy", "--port", board.port, "--bundle", unix_bundle, "--romfs"]) == 1
    err = capsys.readouterr().err
    assert "has no ROMFS partition (no vfs.rom_ioctl)" in err and "deploy without --romfs" in err
    assert os.listdir(board.fs_dir) == []                                     # nothing copied


def test_romfs_deploy_to_a_partition_too_small_says_so(unix_bundle, tmp_path, capsys):
    with UnixBoard(str(tmp_path / "fs"), rom_bytes=8192) as small:
        assert cli_main(["deploy", "--port", small.port, "--bundle", unix_bundle, "--romfs"]) == 1
        with open(small.rom_path, "rb") as f:
            assert f.read() == b"\xff" * 8192                                # nothing written
    err = capsys.readouterr().err
    assert "the board's ROMFS partition holds 8192" in err and "bigger romfs partition" in err


def test_a_config_whose_transports_the_board_lacks_is_refused_before_the_port(tmp_path, capsys):
    pkg = tmp_path / "src" / "vpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("X = 1\n")
    esp = tmp_path / "esp"
    build.build_bundle("esp32", out_dir=str(esp), natmod=False, package_dir=str(pkg), log=quiet)
    cfg = tmp_path / "c.json"
    assert cli_main(["provision", "--nai", "u@example.test", "--hoa", "2001:db8:aa::100", "--ha", "2001:db8:aa::1",
                     "--transports", "udp6,ip6", "--keys-file", str(tmp_path / "k.json"), "--out", str(cfg)]) == 0
    capsys.readouterr()
    # the port does not exist: the config's error must come first
    assert cli_main(["deploy", "--port", "/dev/ttyUSB-none", "--bundle", str(esp), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "asks for transports udp6, ip6, which board esp32 cannot use (it has: udp4)" in err, err
    assert '"transports": ["udp4"]' in err and "--board esp32" in err
    # no "transports" field: the firmware's default is all three, udp6 and ip6 included
    data = json.loads(cfg.read_text())
    del data["transports"]
    data["ha_ipv4"] = "198.18.1.2"
    cfg.write_text(json.dumps(data))
    assert cli_main(["deploy", "--port", "/dev/ttyUSB-none", "--bundle", str(esp), "--config", str(cfg)]) == 2
    assert "asks for transports udp6, ip6, which board esp32" in capsys.readouterr().err
    data["transports"] = ["udp4"]
    cfg.write_text(json.dumps(data))
    assert cli_main(["deploy", "--port", "/dev/ttyUSB-none", "--bundle", str(esp), "--config", str(cfg)]) == 2
    assert "serial port /dev/ttyUSB-none does not exist" in capsys.readouterr().err
