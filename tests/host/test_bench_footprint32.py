"""`roam6 bench footprint`'s on_32bit_unix_port: the real MN registers on the MicroPython unix port
built for wasm32 (Pyodide under node). Needs node and the runtime fetched into build/footprint32/
(the first `roam6 bench footprint` does it); skipped otherwise, never fetches."""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from roam6_host import bench_footprint32 as F


def _fetched():
    return (shutil.which("node") is not None
            and os.path.exists(os.path.join(F.CACHE, "pyodide-" + F.PYODIDE, "pyodide.mjs"))
            and os.path.exists(os.path.join(F.CACHE, F.WHEEL)))


@pytest.mark.skipif(not _fetched(), reason="node or build/footprint32/ (run `roam6 bench footprint` once) missing")
def test_the_mn_registers_on_a_32bit_micropython():
    argv = [sys.executable, "-m", "roam6_host.bench_footprint32"]
    env = None
    if os.geteuid() == 0 and shutil.which("unshare"):
        # its HA listens on 127.0.0.2:4191: in a network namespace of its own, nothing else sees it
        argv = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] + argv
        env = dict(os.environ, ROAM6_FOOTPRINT_NETNS="1")    # the netns is its own: it may add an address
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         env=env)
    try:
        out, err = p.communicate(timeout=240)   # ~20 s on a quiet machine; generous when loaded
    finally:
        if p.poll() is None:                 # node included: the whole session goes
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 0, out + err
    d = json.loads(out)
    assert d["word_bits"] == 32 and d["gc_bytes_per_small_tuple"] == 16, d
    assert d["registered"] is True, d
    before, used = d["heap_in_use_before_first_bu"], d["heap_in_use_after_registration"]
    # (no order between them here: at start-up the C stack, scanned conservatively on this runtime,
    # still points at start-up garbage, so `before` can read higher than the steady state)
    assert 0 < before < 64 * 1024 and 0 < used < 64 * 1024
    assert used + d["heap_free_after_registration"] <= 64 * 1024
    assert d["heap_goal_met"] == (used <= 32 * 1024)
    assert "Pyodide %s" % F.PYODIDE in d["runtime"] and d["heapsize"] == "64K"
    # the ESP32's whole configuration (its bundle, Wi-Fi keeper, WLAN-polling link adapter; radio
    # stand-ins measured apart) on the same runtime: it joins, detects its address, registers
    esp = d["esp32_bundle"]
    if env is not None:
        assert esp["registered"] is True, esp
        assert 0 < esp["stand_ins_bytes"] < 8 * 1024
        assert (esp["heap_in_use_after_registration_minus_stand_ins"]
                == esp["heap_in_use_after_registration"] - esp["stand_ins_bytes"])
        assert esp["heap_in_use_after_registration"] > used        # more code than the static-CoA MN
        assert esp["heap_goal_met"] == (esp["heap_in_use_after_registration_minus_stand_ins"] <= 32 * 1024)
        # the same board with its modules in a ROMFS image: registers, and the bytecode running in
        # place leaves clearly less in the heap (the image itself is subtracted)
        rom = esp["with_code_in_romfs"]
        assert rom["registered"] is True, rom
        assert 20 * 1024 < rom["image_bytes"] < 64 * 1024
        assert 0 < rom["heap_in_use_after_registration"] < esp["heap_in_use_after_registration"] - 4096, (rom, esp)
        assert rom["heap_goal_met"] == (rom["heap_in_use_after_registration_minus_stand_ins"] <= 32 * 1024)
    else:
        assert "skipped" in esp
