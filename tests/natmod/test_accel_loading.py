"""How roam6.accel chooses on real MicroPython: the tier cap, and the fallbacks when the native
module is missing, built for another arch, or from another API version."""
import json
import os
import shutil
import subprocess
import sys

from roam6_host import natmod_build

ROOT = natmod_build.REPO
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")
PROBE = ("from roam6 import accel; from roam6.wire import checksum; from roam6 import crypto, rrcrypto; import json; "
         "print(json.dumps({'status': accel.status, 'sum': accel.tier('inet_sum'), 'hmac': accel.tier('hmac_sha1'), "
         "'v': checksum.inet_sum(b'\\x01\\x02\\x03', 7), 'mac': crypto.hmac_sha1(b'k', b'd').hex(), "
         "'tok': rrcrypto.home_keygen_token(b'k', b'h', b'n').hex(), 'kbm': rrcrypto.kbm(b'h', b'c').hex()}))")


def probe(firmware=os.path.join(ROOT, "firmware"), **env_extra):
    env = dict(os.environ, MICROPYPATH=firmware, **env_extra)
    for k in ("ROAM6_ACCEL", "ROAM6_NATMOD_DIR"):
        if k not in env_extra:
            env.pop(k, None)
    proc = subprocess.run([MICROPYTHON, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    return proc


def result(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["v"] == 7 + 0x0102 + 0x0300
    import hmac
    assert out["mac"] == hmac.new(b"k", b"d", "sha1").hexdigest()
    assert out["tok"] == hmac.new(b"k", b"hn\x00", "sha1").hexdigest()[:16]
    import hashlib
    assert out["kbm"] == hashlib.sha1(b"hc").hexdigest()
    return out


def test_default_is_native(natmod_root):
    out = result(probe())
    assert out["sum"] == out["hmac"] == "native"
    assert out["status"]["native"].endswith("build/natmod/x64/roam6_native.mpy")


def test_caps(natmod_root):
    out = result(probe(ROAM6_ACCEL="viper"))
    assert (out["sum"], out["hmac"], out["status"]["native"]) == ("viper", "viper", None)
    out = result(probe(ROAM6_ACCEL="python"))
    assert (out["sum"], out["hmac"], out["status"]["viper"]) == ("python", "python", False)


def test_bad_cap_is_named():
    proc = probe(ROAM6_ACCEL="fast")
    assert proc.returncode != 0
    assert "ROAM6_ACCEL must be one of native, viper, python (got 'fast')" in proc.stdout + proc.stderr


def test_module_for_another_arch_falls_back_to_viper(tmp_path):
    arm = natmod_build.build_natmod("armv6m")
    (tmp_path / "x64").mkdir()
    shutil.copy(arm, tmp_path / "x64" / "roam6_native.mpy")
    out = result(probe(ROAM6_NATMOD_DIR=str(tmp_path)))
    assert out["sum"] == "viper" and out["status"]["native"] is None
    assert str(tmp_path / "x64" / "roam6_native.mpy") in out["status"]["native_error"]


def test_missing_module_falls_back_and_says_where_it_looked(tmp_path):
    shutil.copytree(os.path.join(ROOT, "firmware", "roam6"), tmp_path / "fw" / "roam6")
    out = result(probe(firmware=str(tmp_path / "fw")))
    assert out["sum"] == "viper"
    err = out["status"]["native_error"]
    assert "roam6_native.mpy not found for x64" in err and str(tmp_path) in err


def test_stale_api_is_refused(tmp_path, natmod_root):
    """A module whose API number differs (an old .mpy left on a board) is not used."""
    shutil.copytree(os.path.join(ROOT, "firmware", "roam6"), tmp_path / "fw" / "roam6")
    src = (tmp_path / "fw" / "roam6" / "accel.py").read_text()
    assert "_NATIVE_API = const(2)" in src
    (tmp_path / "fw" / "roam6" / "accel.py").write_text(src.replace("_NATIVE_API = const(2)",
                                                                    "_NATIVE_API = const(99)"))
    out = result(probe(firmware=str(tmp_path / "fw"), ROAM6_NATMOD_DIR=natmod_root))
    assert out["sum"] == "viper"
    assert "API 2, this firmware needs 99" in out["status"]["native_error"]
