"""`roam6 hil run register --labgrid PLACE --bench FILE`: the board of a labgrid place.

A real labgrid farm on this machine, inside the test's "host" namespace (loopback only): the
gRPC coordinator, an exporter serving the unix-port board's pty (RawSerialPort: labgrid starts
ser2net for it) and the stand-in AP ports (NetworkInterface), a place matching them. The board's
bundle is on it already, as `roam6 deploy` on "the exporter's host" leaves it (here: the files
put in its filesystem folder); roam6 acquires the place, has labgrid's ExternalPowerDriver run
the bench file's power command, writes the config and drives the board through labgrid's
SerialDriver: `register`, then `roam`.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from roam6_host import deploy
from roam6_host.cli import main as cli_main
from roam6_host.unixboard import UnixBoard

from test_hostbench import NETWORK_STANDIN, ROAM6, host, host_snapshot, in_host, write_bench  # noqa: F401

LG = os.path.dirname(sys.executable)


def _need_labgrid():
    missing = [t for t in ("labgrid-coordinator", "labgrid-exporter", "labgrid-client")
               if not os.path.exists(os.path.join(LG, t))]
    if missing:
        pytest.fail("labgrid is not installed in the venv (%s): pip install -e '.[bench]'" % ", ".join(missing))
    if not shutil.which("ser2net") and not os.path.exists("/usr/sbin/ser2net"):
        pytest.fail("ser2net is not installed: apt-get install ser2net (deps/apt.txt)")


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def test_register_through_a_labgrid_place(host, tmp_path):
    _need_labgrid()
    n = host
    name = n.prefix.strip("-")[-6:]
    path = write_bench(tmp_path, name)
    power = tmp_path / "power.log"
    with open(path, "a") as f:          # the board's power switch: a command (here it only leaves a trace)
        f.write("[board]\npower_on = \"sh -c 'echo on >> %s'\"\npower_off = \"sh -c 'echo off >> %s'\"\n"
                % (power, power))
    from roam6_hil.board_unix import firmware_bundle
    bundle = firmware_bundle(False)     # `roam6 build --board unix`, cached in build/hil/ as the bench does
    fs = tmp_path / "fs"
    fs.mkdir()
    # on the exporter's host: the bundle and a first config, as `roam6 deploy` leaves them (the run
    # replaces the config with the bench's)
    first = tmp_path / "first-config.json"
    assert cli_main(["provision", "--nai", "lab@example.test", "--hoa", "2001:db8:aa::100",
                     "--ha", "2001:db8:aa::1", "--board", "unix", "--transports", "udp6",
                     "--keys-file", str(tmp_path / "k.json"), "--out", str(first)]) == 0
    for rel, src in deploy.local_files(str(bundle), config=str(first)).items():
        os.makedirs(os.path.dirname(str(fs / rel)), exist_ok=True)
        shutil.copy(src, str(fs / rel))
    (fs / "network.py").write_text(NETWORK_STANDIN % (n.full("air"), {"roam6-A": "airA", "roam6-B": "airB"}, [],
                                                      ["roam6-A", "roam6-B"], ""))
    n.run("board", ["sysctl", "-qw", "net.ipv6.conf.wlan0.accept_dad=0"])
    n.ip("host", "link", "set", "lo", "up")
    board = UnixBoard(str(fs), prefix=["ip", "netns", "exec", n.full("board")]).start()
    procs = []
    coord = "127.0.0.1:%d" % _free_port()
    place = "r6" + name
    env = dict(os.environ, LG_USERNAME="roam6")

    def lg(*args, user="roam6"):
        return in_host(n, ["env", "LG_USERNAME=%s" % user, os.path.join(LG, "labgrid-client"), "-x", coord,
                           "-p", place] + list(args), timeout=30)
    try:
        (tmp_path / "exporter.yaml").write_text(
            "roam6board:\n  RawSerialPort:\n    port: %s\n    speed: 115200\n"
            "apA:\n  NetworkInterface:\n    ifname: apA\napB:\n  NetworkInterface:\n    ifname: apB\n"
            % os.path.realpath(board.port))
        for argv in ([os.path.join(LG, "labgrid-coordinator"), "--listen", coord],
                     [os.path.join(LG, "labgrid-exporter"), "-c", coord, "--hostname", "127.0.0.1", "-n",
                      "r6exp" + name, str(tmp_path / "exporter.yaml")]):
            log = open(tmp_path / (os.path.basename(argv[0]) + ".log"), "wb")
            procs.append(subprocess.Popen(["ip", "netns", "exec", n.full("host")] + argv, stdout=log, cwd=str(tmp_path),
                                          stderr=subprocess.STDOUT, env=env, start_new_session=True))
            time.sleep(1.5)
        deadline = time.monotonic() + 20
        while "r6exp" + name not in lg("resources").stdout and time.monotonic() < deadline:
            time.sleep(0.3)
        assert lg("create").returncode == 0
        assert lg("add-match", "r6exp%s/roam6board/*" % name).returncode == 0
        for ap in ("apA", "apB"):      # two resources of one class in a place: named matches (labgrid's rule)
            assert lg("add-named-match", "r6exp%s/%s/RemoteNetworkInterface" % (name, ap), ap).returncode == 0
        before = host_snapshot(n)
        run = ROAM6 + ["hil", "run", "register", "--labgrid", place, "--labgrid-coordinator", coord,
                       "--bench", path, "--transport", "udp6", "--report", str(tmp_path / "rep")]
        # someone else holds the place: a clear error, the host untouched
        assert lg("acquire", user="alice").returncode == 0
        r = in_host(n, run, timeout=60)
        assert r.returncode != 0 and "already acquired by" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert host_snapshot(n) == before
        assert lg("release", user="alice").returncode == 0
        r = in_host(n, run, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        rep = json.loads((tmp_path / "rep" / "report.json").read_text())
        assert rep["labgrid_place"] == place and rep["port"].startswith("rfc2217://127.0.0.1:")
        assert rep["labgrid_strategy"] == "deployed"        # roam6's labgrid Strategy took the board there
        assert rep["registered"] and rep["coa"].startswith("2001:db8:a1:") and rep["udp_down_received"] > 0, rep
        assert host_snapshot(n) == before
        # labgrid's ExternalPowerDriver power-cycled the board with the bench file's commands
        assert power.read_text().split() == ["off", "on"], power.read_text()
        # the roam scenario through the place: the same report as the virtual bench
        r = in_host(n, ROAM6 + ["hil", "run", "roam", "--labgrid", place, "--labgrid-coordinator", coord, "--bench",
                                path, "--transport", "udp6", "--roams", "1", "--dwell", "0.3", "--no-pcap",
                                "--report", str(tmp_path / "roam")], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        rep = json.loads((tmp_path / "roam" / "report.json").read_text())
        assert rep["labgrid_place"] == place and rep["summary"]["ok"], rep["summary"]
        assert [(x["net"], x["coa"].split(":")[2]) for x in rep["rows"]] == [("roam6-B", "b1")], rep["rows"]
        assert rep["rows"][0]["interruption_down_ms"] is not None and rep["rows"][0]["bu_ba_ms"] is not None
        assert power.read_text().split() == ["off", "on"] * 2
        assert host_snapshot(n) == before
        assert "acquired: None" in lg("show").stdout or "acquired:" not in lg("show").stdout.split("matches")[0]
        assert lg("acquire", user="alice").returncode == 0          # released: another user gets it
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, 15)
                p.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(p.pid, 9)
        board.stop()
