"""From nothing to a registered board, the way a user does it, on a two-namespace bench:

    roam6 provision -> roam6 build --board unix -> roam6 deploy (mpremote over a pty) -> the board
    restarts, its MN sends a BU over udp4 -> `roam6 ha` (real, in its own namespace) -> BA -> registered

The board is the MicroPython unix port inside namespace <prefix>b (interface wlan0, 192.0.2.100),
the HA runs in <prefix>ha (192.0.2.1, UDP 4191). Needs root (namespaces, the HA's TUN device).
"""
import json
import os
import subprocess
import sys

import pytest

from roam6_host import deploy
from roam6_host.cli import main as cli_main
from roam6_host.unixboard import UnixBoard

from nshelp import TestNamespaces, wait_line

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces (CI runs as root)")


@pytest.fixture
def bench():
    n = TestNamespaces()
    try:
        ns_ha, ns_b = n.add("ha"), n.add("b")
        n.veth(ns_ha, n.prefix + "h", ns_b, "wlan0")
        n.ip(ns_ha, "addr", "add", "192.0.2.1/24", "dev", n.prefix + "h")
        n.ip(ns_b, "addr", "add", "192.0.2.100/24", "dev", "wlan0")
        yield ns_ha, ns_b
    finally:
        n.teardown()


def test_provisioned_board_deploys_and_registers_with_the_ha(bench, tmp_path):
    ns_ha, ns_b = bench
    keys, cfg = tmp_path / "ha-keys.json", tmp_path / "config.json"
    assert cli_main(["provision", "--nai", "e2e@example.test", "--hoa", "2001:db8:aa::100", "--ha", "2001:db8:aa::1",
                     "--ha-ipv4", "192.0.2.1", "--board", "unix", "--transports", "udp4",
                     "--keys-file", str(keys), "--out", str(cfg)]) == 0
    (tmp_path / "ha.json").write_text(json.dumps({
        "home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "ipv4": "192.0.2.1",
        "keys_file": "ha-keys.json", "tun": "r6tun", "transports": ["udp4"]}))
    bundle = tmp_path / "bundle"
    assert cli_main(["build", "--board", "unix", "--out", str(bundle)]) == 0

    roam6 = [sys.executable, "-m", "roam6_host"]
    ha = subprocess.Popen(["ip", "netns", "exec", ns_ha] + roam6 + ["ha", "--config", str(tmp_path / "ha.json")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    board = UnixBoard(str(tmp_path / "fs"), prefix=["ip", "netns", "exec", ns_b])
    ha_log = []
    try:
        assert wait_line(ha, '"ev": "ready"', 30, ha_log), "\n".join(ha_log)
        board.start()
        res = deploy.deploy(board.port, str(bundle), config=str(cfg), log_lines=20, log_timeout=20,
                            log=lambda *a: None)
        assert "config.json" in res["copied"] and "main.py" in res["copied"]
        events = [json.loads(ln) for ln in res["logs"] if ln.startswith("{")]
        kinds = [e["ev"] for e in events]
        assert "start" in kinds and "registered" in kinds, res["logs"]
        reg = [e for e in events if e["ev"] == "registered"][0]
        ba = [e for e in events if e["ev"] == "ba"][0]
        assert reg["coa"] == "192.0.2.100" and reg["transport"] == "udp4" and ba["status"] == 0
        assert wait_line(ha, "binding_added", 10, ha_log), "\n".join(ha_log)
        added = json.loads(ha_log[-1])
        assert added["hoa"] == "2001:db8:aa::100" and added["peer"].startswith("192.0.2.100:")
        # a second deploy finds everything in place and leaves the registered board alone
        again = deploy.deploy(board.port, str(bundle), config=str(cfg), log=lambda *a: None)
        assert again["copied"] == [] and board.starts == 2
    finally:
        board.stop()
        if ha.poll() is None:
            os.killpg(ha.pid, 15)
            try:
                ha.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(ha.pid, 9)
                ha.wait(10)
        ha.stdout.close()
