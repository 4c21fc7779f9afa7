"""`build_natmod`: real builds with the real compilers, headers read back, and the clear errors
for what a user can fix (no ESP-IDF compiler here: its absence is what is tested)."""
import os
import shutil
import subprocess
import sys

import pytest

from roam6_host import natmod_build
from roam6_host.errors import UserError
from roam6_host.mpy import read_header, with_source_name


@pytest.mark.parametrize("arch", ["x64", "armv6m"])
def test_build_header_says_arch_and_mpy_6_3(arch, natmod_root):
    path = natmod_build.build_natmod(arch)
    assert path == os.path.join(natmod_root, arch, "roam6_native.mpy")
    head = read_header(path)
    assert (head["arch"], head["version"], head["sub_version"]) == (arch, 6, 3)
    assert 1000 < os.path.getsize(path) < 16384
    # its source name is the module's, not the build folder's path (mpy_ld writes its output
    # path there): the same bytes from any machine, and a short qstr on the board
    with open(path, "rb") as f:
        data = f.read()
    assert data[6:7] == bytes([len("roam6_native.mpy") << 1]) and data[7:24] == b"roam6_native.mpy\0"
    assert b"/" not in data[:64]


def test_rebuild_is_cached_and_leaves_the_file_alone(natmod_root):
    path = natmod_build.build_natmod("armv6m")
    before = os.stat(path).st_mtime_ns
    with open(path, "rb") as f:
        data = f.read()
    assert natmod_build.build_natmod("armv6m") == path
    assert os.stat(path).st_mtime_ns == before
    with open(path, "rb") as f:
        assert f.read() == data


def test_output_dir_gets_only_the_module(tmp_path):
    path = natmod_build.build_natmod("x64", str(tmp_path))
    files = sorted(os.path.relpath(os.path.join(r, f), tmp_path) for r, _d, fs in os.walk(tmp_path) for f in fs)
    assert files == [os.path.join("x64", "roam6_native.mpy")]
    assert path == str(tmp_path / "x64" / "roam6_native.mpy")


def _path_without(exe):
    """PATH with every folder that holds exe left out."""
    return os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not os.path.exists(os.path.join(d, exe)))


def test_xtensawin_without_esp_idf_says_what_and_how(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", _path_without("xtensa-esp32-elf-gcc"))
    assert shutil.which("xtensa-esp32-elf-gcc") is None
    with pytest.raises(UserError) as err:
        natmod_build.build_natmod("xtensawin", str(tmp_path))
    assert "xtensa-esp32-elf-gcc not found" in err.value.message
    assert "ESP-IDF" in err.value.hint and "export.sh" in err.value.hint
    assert not os.listdir(tmp_path)


def test_missing_arm_compiler_says_which_package(monkeypatch):
    monkeypatch.setenv("PATH", _path_without("arm-none-eabi-gcc"))
    with pytest.raises(UserError) as err:
        natmod_build.build_natmod("armv6m")
    assert "arm-none-eabi-gcc not found" in err.value.message
    assert "gcc-arm-none-eabi" in err.value.hint


def test_unknown_arch():
    with pytest.raises(UserError) as err:
        natmod_build.build_natmod("armv7m")
    assert "unknown native architecture 'armv7m'" in err.value.message
    assert "x64, armv6m, xtensawin" in err.value.hint


def test_bad_micropython_tree(monkeypatch, tmp_path):
    monkeypatch.setenv("ROAM6_MPY_DIR", str(tmp_path))
    with pytest.raises(UserError) as err:
        natmod_build.build_natmod("x64", str(tmp_path / "out"))
    assert "has no py/dynruntime.mk" in err.value.message


def test_sdist_download_failure_is_a_user_error(monkeypatch, tmp_path):
    """A fresh cache and a pip that cannot reach any index: a clear error, not a traceback."""
    monkeypatch.setenv("ROAM6_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.delenv("ROAM6_MPY_DIR", raising=False)
    with pytest.raises(UserError) as err:
        natmod_build.micropython_dir()
    assert "could not download the MicroPython build files" in err.value.message
    assert "mpy-cross-v6-3" in err.value.message
    assert "ROAM6_MPY_DIR" in err.value.hint


def test_command_line_error_has_no_traceback():
    env = dict(os.environ, PATH=_path_without("xtensa-esp32-elf-gcc"))
    proc = subprocess.run([sys.executable, "-m", "roam6_host.natmod_build", "xtensawin"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("roam6: error: xtensa-esp32-elf-gcc not found")
    assert "Traceback" not in proc.stderr


def test_roam6_build_natmod_command(tmp_path):
    """The `roam6 build natmod` subcommand (cmd_build.py) gets its module from build_natmod."""
    roam6 = os.path.join(os.path.dirname(sys.executable), "roam6")
    proc = subprocess.run([roam6, "build", "natmod", "--arch", "armv6m", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(tmp_path / "armv6m" / "roam6_native.mpy") in proc.stdout  # --out is the root, per arch below
    head = read_header(str(tmp_path / "armv6m" / "roam6_native.mpy"))
    assert (head["arch"], head["version"], head["sub_version"]) == ("armv6m", 6, 3)


def test_source_name_rewrite_keeps_the_rest_of_the_file():
    """mpy v6: header, n_qstr, n_obj, then the source name qstr (length << 1, bytes, NUL); a name
    of 64+ bytes takes a two-byte length. Everything after it is kept byte for byte."""
    tail = b"\x0cdigest\x00rest of the module"
    long_name = "/" + "x" * 70 + ".mpy"
    src = b"M\x06\x0b\x1f\x02\x00" + bytes([0x81, (len(long_name) << 1) & 0x7F]) + long_name.encode() + b"\x00" + tail
    assert (len(long_name) << 1) >> 7 == 1                       # the test's name needs two bytes
    out = with_source_name(src, "m.mpy")
    assert out == b"M\x06\x0b\x1f\x02\x00\x0am.mpy\x00" + tail
    back = with_source_name(out, long_name)
    assert back == src
    static = b"M\x06\x0b\x1f\x02\x00\x03" + tail               # a static qstr: left as it is
    assert with_source_name(static, "m.mpy") == static
    with pytest.raises(ValueError):
        with_source_name(b"not an mpy", "m.mpy")
