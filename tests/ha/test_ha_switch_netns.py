"""Home Agent Switch (RFC 5142), the HA's side: `roam6 ha switch` asks the running `roam6 ha`
(its control socket, in the HA's namespace) to move a device; the device gets a Home Agent
Switch naming the new HA, signed with its MN-HA SA exactly as a BA is (checked here as the MN
would: MH checksum, MN-ID, authenticator); once it deregisters here the command reports it moved.
A device that does not move within the deadline is reported as not moved (exit 1)."""
import json
import os
import socket
import subprocess
import sys

import pytest

from roam6 import crypto
from roam6.wire.checksum import checksum6
from roam6.wire.ipv6 import decode_ipv6, pseudo_dst, pseudo_src
from roam6_codec import mhopts as mo
from roam6_codec.mh import HomeAgentSwitch, decode_mh

from ha_helpers import HOA, KEY, NAI, SPI, V4MAPPED, a6, parse_ba
from test_ha_journal_netns import home  # noqa: F401  (the fixture)
from test_ha_netns import MN4, V4COA, send_bu

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (make test runs as root)")
HA4 = ("198.18.1.2", 4191)
NEW_HA = "2001:db8:aa::9"


def switch(ns, cfg, *args):
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "roam6_host", "ha", "switch",
                             "--config", cfg, "--to", NEW_HA, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_switch_signed_message_then_moved_or_not(home, tmp_path):   # noqa: F811
    n, start, (ha, mn, hm), _journal = home
    hap = start()
    cfg = str(tmp_path / "ha.json")
    s4 = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
    data, _src, ts = send_bu(s4, HA4, seq=1)
    assert parse_ba(data)[1].status == 0

    p = switch(ha, cfg, "--nai", NAI.decode(), "--deadline", "10", "--bra", "5")
    data, src = s4.recvfrom(2048)
    assert src == HA4
    pkt = decode_ipv6(data)
    assert pkt.src == a6("2001:db8:aa::1") and pkt.dst == HOA and pkt.nh == 135
    msg = decode_mh(pkt.payload)
    assert isinstance(msg, HomeAgentSwitch) and msg.addresses == [a6(NEW_HA)]
    assert checksum6(pseudo_src(pkt), pseudo_dst(pkt), 135, msg.raw) == 0
    assert msg.find(mo.MNIdentifier).identifier == NAI and msg.find(mo.BindingRefreshAdvice).interval == 5
    auth = msg.options[-1]
    assert isinstance(auth, mo.MobilityAuth) and auth.spi == SPI
    raw = msg.raw
    signed = raw[:4] + b"\0\0" + raw[6:len(raw) - 12]
    assert crypto.mnha_auth_data(KEY, V4MAPPED + V4COA, HOA, signed) == auth.auth_data
    # a forged one (other key) would not pass the same check
    assert crypto.mnha_auth_data(bytes(16), V4MAPPED + V4COA, HOA, signed) != auth.auth_data

    # the MN registered at the new HA (not here) and deregisters from this one
    t1 = ((ts >> 32) - 2208988800) * 1000        # the first BU's timestamp, Unix ms
    data, _src, _ts = send_bu(s4, HA4, seq=2, lifetime=0, now=t1 + 1000)
    assert parse_ba(data)[1].status == 0
    out, err = p.communicate(timeout=10)
    assert p.returncode == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert lines[0] == {"ev": "switch_started", "devices": 1}
    assert lines[-1] == {"ev": "switch_finished", "moved": 1, "not_moved": []}
    assert any(x["ev"] == "switch_done" and x["hoa"] == "2001:db8:aa::100" for x in lines)

    # registered again; this time it does not move: reported by the deadline, exit 1
    data, _src, _ts = send_bu(s4, HA4, seq=3, now=t1 + 2000)
    assert parse_ba(data)[1].status == 0
    p = switch(ha, cfg, "--all", "--deadline", "1")
    out, err = p.communicate(timeout=10)
    assert p.returncode == 1
    assert json.loads(out.splitlines()[-1]) == {"ev": "switch_finished", "moved": 0, "not_moved": ["2001:db8:aa::100"]}
    # nobody by that NAI: a clear refusal, no traceback
    p = switch(ha, cfg, "--nai", "nobody@example.test")
    out, err = p.communicate(timeout=10)
    assert p.returncode == 2 and "no binding matches" in err and "Traceback" not in err
    hap.wait_for("switch_finished")
    s4.close()
