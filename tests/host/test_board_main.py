"""boards/esp32/main.py and boards/rp2040/main.py on the MicroPython unix port.

There is no Wi-Fi chip here: tests/host/standins/ holds a stand-in `network.WLAN` (three networks,
one unknown, different RSSIs; an AP "goes away" when the test creates the file DROP) and a
`machine.Timer` whose callback the test fires. Everything else is real: the board's main.py, its link.py,
the roam6 firmware and a config.json from `roam6 provision`.
"""
import os
import shutil
import subprocess
import sys

import pytest

from roam6_host import boards
from roam6_host.cli import main as cli_main

from nshelp import wait_line

HERE = os.path.dirname(os.path.abspath(__file__))
STANDINS = os.path.join(HERE, "standins")


@pytest.mark.parametrize("board,timer_id", [("esp32", "0"), ("rp2040", "-1"),
                                            ("esp32s3", "0"), ("esp32c3", "0"), ("rp2350", "-1")])
def test_boot_joins_the_strongest_known_network_and_starts_the_mn(tmp_path, board, timer_id):
    shutil.copy(os.path.join(boards.BOARDS_DIR, board, "main.py"), tmp_path / "main.py")
    assert cli_main(["provision", "--nai", "w@example.test", "--hoa", "2001:db8:aa::100", "--ha", "2001:db8:aa::1",
                     "--ha-ipv4", "127.0.0.1", "--board", board, "--transports", "udp4",
                     "--wifi", "apA:pwA", "--wifi", "apB:pwB", "--keys-file", str(tmp_path / "k.json"),
                     "--out", str(tmp_path / "config.json")]) == 0
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    path = ":".join([".frozen", os.path.join(boards.REPO_ROOT, "firmware"), os.path.join(boards.BOARDS_DIR, board),
                     STANDINS])
    proc = subprocess.Popen([exe, os.path.join(STANDINS, "boot_standins.py"), STANDINS], cwd=str(tmp_path),
                            env=dict(os.environ, MICROPYPATH=path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    seen = []
    try:
        assert wait_line(proc, '"ev": "start"', 30, seen), "\n".join(seen)
        # apB (-40 dBm) before apA (-70); "other" (-30) is not in config.json and never tried
        wifi = [ln for ln in seen if ln.startswith("wifi:")]
        assert wifi == ["wifi: joining apB", "wifi: joined apB, 127.0.0.3"], seen
        assert "standin: timer %s period 3000" % timer_id in seen
        assert not any("connect other" in ln for ln in seen)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.wait(10)
        proc.stdout.close()


def test_a_config_without_wifi_is_said_plainly(tmp_path):
    shutil.copy(os.path.join(boards.BOARDS_DIR, "esp32", "main.py"), tmp_path / "main.py")
    (tmp_path / "config.json").write_text('{"nai": "x@example.test"}')
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    path = ":".join([".frozen", os.path.join(boards.REPO_ROOT, "firmware"), os.path.join(boards.BOARDS_DIR, "esp32"),
                     STANDINS])
    proc = subprocess.run([exe, os.path.join(STANDINS, "boot_standins.py"), STANDINS], cwd=str(tmp_path),
                          env=dict(os.environ, MICROPYPATH=path), capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert 'config.json has no "wifi" list' in out
    # the MN's own config check stops it, naming a missing field, and main.py says it stopped
    assert '"ev": "error"' in out and "roam6 stopped, status 2" in out, out


def test_keeper_rejoins_another_known_network_when_the_link_drops(tmp_path):
    """The keeper both Wi-Fi boards' main.py run (roam6/node/wifi.py starts roam6.node.wlanlink.Keeper)."""
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    path = ":".join([".frozen", os.path.join(boards.REPO_ROOT, "firmware"), STANDINS, str(tmp_path)])
    proc = subprocess.run([exe, os.path.join(STANDINS, "keeper_check.py"), STANDINS], cwd=str(tmp_path),
                          env=dict(os.environ, MICROPYPATH=path), capture_output=True, text=True, timeout=60)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "order ['apB', 'apA']" in lines                      # strongest first, unknown left out
    assert "joined True apB" in lines
    i = lines.index("standin: AP apB went away")
    assert lines[i + 1] == "wifi: link lost, trying apA"         # the timer tick ran check() (scheduled)
    assert "after drop True apA" in lines
    # once joined, a further check does nothing: no extra connect
    assert lines[-1] == "calls ['scan', 'scan', 'connect apB', 'connect apA']"
