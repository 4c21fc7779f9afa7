"""`roam6 bench ipsec` (without --live): it runs on MicroPython (both HMAC tiers) and CPython and
prints every figure; a bad option is a clear error, not a traceback."""
import json
import subprocess
import sys


def roam6(*args):
    return subprocess.run([sys.executable, "-m", "roam6_host", "bench", "ipsec"] + list(args),
                          capture_output=True, text=True, timeout=300)


def test_bench_ipsec_prints_every_figure():
    p = roam6("--rounds", "1")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["benchmark"] == "ipsec" and "handshake" not in d
    assert set(d["us"]) == {"micropython_hmac_python", "micropython_hmac_native", "cpython"}, d["us"].keys()
    for runtime, figs in d["us"].items():
        assert figs["x25519"] > 100, (runtime, figs)
        for integ in ("sha1_96", "sha256_128"):
            for size in (64, 1200):
                for op in ("seal", "open"):
                    assert figs["esp_%s_%s_%dB" % (op, integ, size)] > 0
                    assert figs["esp_%s_aes_gcm_%dB" % (op, size)] > 0          # RFC 4106 (roam6.ipsec.gcm)
    ha = d["ha"]                     # the HA's side (ipsec/ha_bench.py)
    assert ha["bu_ba_us_esp"] > 0 and ha["bu_ba_us_rfc4285"] > 0
    for size in (64, 1200):
        assert ha["tunnel_in_us_%dB" % size] > 0 and ha["tunnel_out_us_%dB" % size] > 0
        assert ha["tunnel_in_us_aes_gcm_%dB" % size] > 0 and ha["tunnel_out_us_aes_gcm_%dB" % size] > 0


def test_bench_ipsec_bad_option():
    p = roam6("--rounds", "0")
    assert p.returncode == 2 and "at least 1" in p.stderr and "Traceback" not in p.stderr
