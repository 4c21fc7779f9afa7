"""An HA restart that loses nothing (issue 13): the real `roam6 ha` with a journal, SIGKILLed and
started again in its namespace. The MN (the registration core's BUs over real UDP sockets) sends
no BU meanwhile: data to its HoA from a neighbour on the home link flows after the restart, and
its next BU with the next sequence number is accepted (the same number gets 135: the replay
state came back too). A damaged journal is refused with a log line and the HA starts empty.

    mn (198.18.1.10) --- ha (198.18.1.2; home bridge 2001:db8:aa::1/64, TUN) --- hm (2001:db8:aa::50)
"""
import json
import os
import signal
import socket
import time

import pytest

from roam6.wire.ipv6 import decode_ipv6
from roam6_codec.udp import decode_udp

from ha_helpers import KEY, NAI, SPI, V4MAPPED, parse_ba
from nshelp import TestNamespaces
from test_ha_netns import MN4, V4COA, HAProcess, proxies, route_dev, send_bu

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (make test runs as root)")
HA4 = ("198.18.1.2", 4191)


@pytest.fixture
def home(tmp_path):
    n = TestNamespaces()
    procs = []
    try:
        ha, mn, hm = n.add("ha"), n.add("mn"), n.add("hm")
        n.veth(ha, "up0", mn, "wlan0")
        n.ip(ha, "addr", "add", "198.18.1.2/24", "dev", "up0")
        n.ip(mn, "addr", "add", MN4 + "/24", "dev", "wlan0")
        n.ip(ha, "link", "add", "home", "type", "bridge")
        n.ip(ha, "link", "set", "home", "up")
        n.ip(ha, "addr", "add", "2001:db8:aa::1/64", "dev", "home", "nodad")
        n.veth(ha, "hm0", hm, "eth0")
        n.ip(ha, "link", "set", "hm0", "master", "home")
        n.ip(hm, "addr", "add", "2001:db8:aa::50/64", "dev", "eth0", "nodad")
        keys = tmp_path / "ha-keys.json"
        keys.write_text(json.dumps({"sas": [{"nai": NAI.decode(), "spi": SPI, "key": KEY.hex(),
                                             "hoa": "2001:db8:aa::100"}]}))
        os.chmod(keys, 0o600)
        cfg = tmp_path / "ha.json"
        cfg.write_text(json.dumps({"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1",
                                   "ipv4": "198.18.1.2", "home_link": "home", "keys_file": "ha-keys.json",
                                   "transports": ["udp4"], "dad_ms": 0, "journal": "state/ha.journal"}))
        (tmp_path / "state").mkdir()

        def start():
            p = HAProcess(ha, str(cfg))
            procs.append(p)
            p.wait_for("ready")
            return p
        yield n, start, (ha, mn, hm), tmp_path / "state" / "ha.journal"
    finally:
        for p in procs:
            p.stop()
        n.teardown()


def logged(hap, ev):
    """The HA's log lines of kind `ev` so far (start() waited for "ready", after them)."""
    out = []
    for line in hap.lines:
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("ev") == ev:
            out.append(d)
    return out


def test_sigkill_restart_keeps_binding_data_and_sequence(home):
    n, start, (ha, mn, hm), journal = home
    hap = start()
    s4 = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
    shm = n.socket(hm, socket.AF_INET6, socket.SOCK_DGRAM, bind=("2001:db8:aa::50", 7001))
    data, _src, _ts = send_bu(s4, HA4, seq=1)
    assert parse_ba(data, mac_coa=V4MAPPED + V4COA)[1].status == 0
    ts2_ms = time.time_ns() // 1_000_000
    data, _src, _ts = send_bu(s4, HA4, seq=2, now=ts2_ms)
    assert parse_ba(data)[1].status == 0
    hap.wait_for("binding_refreshed", seq=2)

    hap.proc.send_signal(signal.SIGKILL)          # no clean stop: TUN and routes die with it
    hap.proc.wait(5)
    assert "r6tun" not in route_dev(n, ha, "2001:db8:aa::100")

    hap = start()
    ev, = logged(hap, "journal_restored")
    assert ev["bindings"] == 1
    assert "dev r6tun" in route_dev(n, ha, "2001:db8:aa::100")
    assert "2001:db8:aa::100 dev home" in proxies(n, ha)
    assert logged(hap, "unsolicited_na")[0]["hoas"] == 1

    # the MN sent nothing: a home-link neighbour's packet still reaches it, from the HA's 4191
    shm.sendto(b"after-restart", ("2001:db8:aa::100", 5000))
    data, src = s4.recvfrom(2048)
    assert src == HA4
    assert bytes(decode_udp(decode_ipv6(data).payload).payload) == b"after-restart"

    # its replay state came back: the same timestamp is refused (144), the old sequence number
    # with a newer timestamp too (135, naming the last accepted), the next one accepted
    data, _src, _ts = send_bu(s4, HA4, seq=2, now=ts2_ms)
    assert parse_ba(data)[1].status == 144
    data, _src, _ts = send_bu(s4, HA4, seq=2, now=ts2_ms + 2000)
    _pkt, ba = parse_ba(data)
    assert ba.status == 135 and ba.seq == 2
    data, _src, _ts = send_bu(s4, HA4, seq=3, now=ts2_ms + 3000)
    assert parse_ba(data)[1].status == 0

    # a flipped byte in the log: refused, said so, and the HA starts with no bindings
    hap.proc.send_signal(signal.SIGKILL)
    hap.proc.wait(5)
    raw = bytearray(journal.with_name("ha.journal.log").read_bytes())
    assert len(raw) > 40
    raw[-20] ^= 0x55
    journal.with_name("ha.journal.log").write_bytes(bytes(raw))
    hap = start()
    err, = logged(hap, "error")
    assert "journal refused" in err["reason"] and "checksum" in err["reason"]
    assert logged(hap, "journal_restored")[0]["bindings"] == 0
    assert "r6tun" not in route_dev(n, ha, "2001:db8:aa::100")
    assert journal.with_name("ha.journal.log.corrupt").exists()
    data, _src, _ts = send_bu(s4, HA4, seq=4, now=ts2_ms + 4000)       # the MN registers again as a new binding
    assert parse_ba(data)[1].status == 0
    s4.close()
    shm.close()
