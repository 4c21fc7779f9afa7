"""`roam6 bench codec` runs end to end (real mpy-cross, real MicroPython) and reports sane figures."""
import json
import subprocess
import sys


def test_bench_codec_prints_figures():
    proc = subprocess.run([sys.executable, "-m", "roam6_host", "bench", "codec", "-n", "20"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    for side in ("cpython_us", "micropython_us"):
        assert d[side]["bu_bytes"] == 64 and d[side]["decode_bu_packet_us"] > 0
    assert 0 < d["mpy_bytes_mn_codec_and_crypto"] < d["mpy_bytes_all_codec_and_crypto"]
    assert d["mpy_bytes"]["roam6_codec.mh"] > 1000
    assert 0 < d["heap_bytes_mn_codec_import_x64"] < d["heap_bytes_whole_codec_import_x64"]
