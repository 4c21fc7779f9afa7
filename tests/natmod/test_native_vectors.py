"""Property test on real MicroPython (unix, x64): the native, viper and Python tiers of every hot
path agree with each other and with CPython's hashlib/hmac, for every data length 0..2000 at every
buffer offset mod 8 (memoryview slices), reused and fresh keys, accumulators past the small-int
range, and the RR/RFC 4285 functions. Vectors are made here (tests/natmod/vectors.py) and checked
there (tests/natmod/mp_check_vectors.py)."""
import json
import os
import subprocess
import sys

import vectors

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")


def run_checker(path, natmod_root, **env_extra):
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware") + ":.frozen", ROAM6_NATMOD_DIR=natmod_root,
               **env_extra)
    env.pop("ROAM6_ACCEL", None)
    return subprocess.run([MICROPYTHON, "-X", "heapsize=32M", os.path.join(HERE, "mp_check_vectors.py"), path],
                          env=env, capture_output=True, text=True, timeout=240)


def test_all_tiers_agree_with_cpython(natmod_root, tmp_path):
    path = str(tmp_path / "vectors.bin")
    vectors.write(path, vectors.sum_hmac_records() + vectors.rr_records())
    proc = run_checker(path, natmod_root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert counts["tiers"] == ["native", "python", "viper"]
    assert counts["lengths"] == 2001
    assert counts["sum"] == 2001 * 8 * 3
    assert counts["checksum6"] == 2001 * 8 * 2
    # per record: 7 public results, and 4 of hmac_parts on its python and native tiers each
    assert counts["rr"] == 200 * (7 + 4 * 2)
    assert counts["errors"] == 12


def test_checker_catches_a_wrong_vector(natmod_root, tmp_path):
    """The checker must fail on a vector whose expected HMAC is wrong (it is not a no-op)."""
    recs = vectors.sum_hmac_records(max_len=40, corrupt_hmac_at=33)
    path = str(tmp_path / "bad.bin")
    vectors.write(path, recs)
    proc = run_checker(path, natmod_root)
    assert proc.returncode == 1
    assert "MISMATCH hmac_sha1" in proc.stdout and "len 33" in proc.stdout, proc.stdout
