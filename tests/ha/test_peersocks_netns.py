"""A bound MN's own receive queue at the HA (ha/peersocks.py): the real `roam6 ha` opens a socket
connected to the MN's outer address and port when the binding is made, moves it with the binding,
closes it when the binding goes; a second HA on the same port still fails to start."""
import json
import socket
import subprocess
import sys

from ha_helpers import V4MAPPED, parse_ba
from nshelp import sh
from test_ha_netns import MN4, V4COA, bench, send_bu  # noqa: F401  (bench: the namespaces and the real HA)


def _connected_4191(ha):
    """Peers (address:port) of the HA's UDP sockets on port 4191 that are connected."""
    out = sh("ip", "netns", "exec", ha, "ss", "-u", "-a", "-n", "-H", "sport", "= :4191").stdout
    peers = set()
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 5 and not cols[4].endswith(":*"):
            peers.add(cols[4])
    return peers


def test_peer_socket_follows_the_binding_and_a_second_ha_fails(bench, tmp_path):  # noqa: F811
    n, hap, (ha, mn, cn, hm) = bench
    HA4 = ("198.18.1.2", 4191)
    s4 = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
    assert _connected_4191(ha) == set()
    data, _src, _ts = send_bu(s4, HA4, seq=1)
    assert parse_ba(data, mac_coa=V4MAPPED + V4COA)[1].status == 0
    hap.wait_for("binding_added", hoa="2001:db8:aa::100")
    me = "%s:%d" % (MN4, s4.getsockname()[1])
    assert _connected_4191(ha) == {me}
    # a refresh comes in on that socket and is answered as before
    data, src, _ts = send_bu(s4, HA4, seq=2)
    assert src == HA4 and parse_ba(data, mac_coa=V4MAPPED + V4COA)[1].status == 0
    # a move to another port: the socket moves with the binding
    s4b = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
    data, _src, _ts = send_bu(s4b, HA4, seq=3)
    assert parse_ba(data, mac_coa=V4MAPPED + V4COA)[1].status == 0
    hap.wait_for("binding_moved", hoa="2001:db8:aa::100")
    assert _connected_4191(ha) == {"%s:%d" % (MN4, s4b.getsockname()[1])}
    data, _src, _ts = send_bu(s4b, HA4, seq=4, lifetime=0)
    hap.wait_for("binding_removed", hoa="2001:db8:aa::100", reason="dereg")
    assert _connected_4191(ha) == set()
    # a second HA (its own TUN name) on the same port in the same namespace fails, saying why
    cfg = json.loads(open(hap.proc.args[-1]).read())
    cfg.update(tun="r6tun2", transports=["udp4"])
    cfg["keys_file"] = str((tmp_path / "ha-keys.json"))
    other = tmp_path / "ha2.json"
    other.write_text(json.dumps(cfg))
    p = subprocess.run(["ip", "netns", "exec", ha, sys.executable, "-m", "roam6_host", "ha", "--config", str(other)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "cannot bind UDP 198.18.1.2 port 4191" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    s4.close()
    s4b.close()
