"""`roam6 bench footprint`: the real MN (MicroPython, -X heapsize=64K, .mpy bundle) registers with
the HA's binding cache on loopback, and the figures come back as JSON."""
import json
import os
import shutil
import subprocess
import sys


def test_footprint_measures_a_real_registration_under_64k():
    # the 32-bit run inside it is tests/host/test_bench_footprint32.py's (the same code, ~20 s): not twice
    argv = [sys.executable, "-m", "roam6_host", "bench", "footprint", "--no-32bit"]
    if os.geteuid() == 0 and shutil.which("unshare"):
        # its HA listens on 127.0.0.2:4191: in a network namespace of its own, nothing else sees it
        argv = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] + argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert d["heapsize"] == "64K"
    used, before = d["heap_in_use_after_registration"], d["heap_in_use_before_first_bu"]
    assert 0 < before <= used < 64 * 1024
    assert d["runtime_bytes"] == used - before
    code = d["heap_code_and_buffers"]
    assert 0 < code <= before and d["heap_node_state_bytes"] == used - code > 0
    assert d["heap_free_after_registration"] > 0
    assert d["heap_goal_met"] == (used <= 32 * 1024)
    on32 = d["on_32bit_unix_port"]
    assert d["heap_goal_met_on_32bit"] == on32.get("heap_goal_met")
    assert on32["skipped"].startswith("--no-32bit") and d["heap_goal_met_on_32bit"] is None, on32
    assert d["bu_ba_ms"] is not None and 0 < d["bu_ba_ms"] < 1000
    assert 0 < d["mn_modules_mpy_bytes"] < d["firmware_mpy_bytes"]
    assert d["mn_modules_missing"] == []
    assert d["mpy_goal_met"] == (d["firmware_mpy_bytes"] <= 64 * 1024)
    # per board: what its bundle holds (board.json's exclude list), the MN's modules in each
    boards = d["boards"]
    assert sorted(boards) == ["esp32", "rp2040", "unix"]
    assert boards["unix"]["mpy_bytes"] == d["firmware_mpy_bytes"]
    for b in boards.values():
        assert 0 < b["mn_modules_mpy_bytes"] < b["mpy_bytes"] and "mn_modules_missing" not in b
        assert b["mpy_goal_met"] == (b["mpy_bytes"] <= 64 * 1024)
        if b["natmod_mpy_bytes"] is not None:
            assert b["with_natmod_mpy_bytes"] == b["mpy_bytes"] + b["natmod_mpy_bytes"]
    # the MCU boards leave out what the unix board carries (ip6, route optimisation, ...); the
    # esp32 (udp4 only) and the rp2040 (no viper tier, fewer optional modules) differ both ways
    assert max(boards["esp32"]["mpy_bytes"], boards["rp2040"]["mpy_bytes"]) < boards["unix"]["mpy_bytes"]
    link = d["with_link_adapter"]
    if os.geteuid() == 0:
        assert "skipped" not in link, link
        assert ("heap_in_use_after_registration" in link) or (link["registered"] is False and link["error"])
    # the bundle as a ROMFS image mounted with vfs.VfsRom (bytecode runs in place): the image sits
    # in the unix port's heap and is subtracted, what is left must be less than from .mpy files
    rom = d["with_code_in_romfs"]
    assert "skipped" not in rom and rom["image_bytes"] > 0, rom
    assert 0 < rom["heap_code_and_buffers_minus_image"] < code
    assert 0 < rom["heap_in_use_after_registration_minus_image"] < used
