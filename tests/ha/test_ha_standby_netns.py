"""Hot standby (issue 14): two real `roam6 ha` processes and two keepalived (VRRPv3, IPv6 and
IPv4 shared addresses in one sync group) on one home link, in namespaces. The MN (registration
core over real UDP sockets) registers with the shared address; the standby holds the binding;
the active HA is SIGKILLed; keepalived moves the addresses (it tracks the HA's TUN); the new active
owns routes, proxy ND and unsolicited NAs at once: a home-link neighbour's packet reaches the MN
with no BU sent, and the next BU with the next sequence number is accepted (replica "ack": the
BA waited for the standby's acknowledgement). An IPsec device (issue 19: the firmware's IKEv2
Initiator and ESP over real sockets, tests/ha/ipsec_mn.py) registers too: its binding replicates, its
IKE/ESP SAs do not, so after the takeover its BU under the old CHILD_SA is dropped and it re-keys with
the new active (a new IKE SA to the shared address), whose BA for the replicated binding is a
refresh. The killed HA comes back as a standby, syncs the whole cache and does not take the
addresses back. A replication message with a wrong key is refused.

    lan: bridge "home" (2001:db8:aa::/64)  <- ha1 h0 (::2), ha2 h0 (::3), hm (::50); VIP ::1
         bridge "upl"  (198.18.1.0/24)     <- ha1 u0 (.3),  ha2 u0 (.4),  mn (.10);  VIP .2
"""
import json
import os
import signal
import socket
import sys
import time

import pytest

from roam6.wire.ipv6 import decode_ipv6
from roam6_codec.udp import decode_udp

from ha_helpers import KEY, NAI, SPI, V4COA, parse_ba
from ipsec_mn import EspMN
from nshelp import TestNamespaces
from test_ha_journal_netns import logged
from test_ha_netns import MN4, HAProcess, send_bu
from test_ipsec_ha_netns import handshake, now_ms, silent

from roam6_host.ha.config import load_config
from roam6_host.ha.vrrp import Keepalived, keepalived_config

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (make test runs as root)")
HA4 = ("198.18.1.2", 4191)
RKEY = "ab" * 32
PSK, INAI, IHOA = bytes(range(32)), "esp1@example.test", "2001:db8:aa::301"


def ha_json(tmp_path, name, bind, peer, key=RKEY, ack=True):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    (d / "ha-keys.json").write_text(json.dumps({"sas": [{"nai": NAI.decode(), "spi": SPI, "key": KEY.hex(),
                                                         "hoa": "2001:db8:aa::100"},
                                                        {"nai": INAI, "security": "ipsec", "psk": PSK.hex(),
                                                         "hoa": IHOA}]}))
    os.chmod(d / "ha-keys.json", 0o600)
    (d / "replica.key").write_text(key)
    os.chmod(d / "replica.key", 0o600)
    (d / "ha.json").write_text(json.dumps({
        "home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "ipv4": "198.18.1.2",
        "home_link": "h0", "keys_file": "ha-keys.json", "transports": ["udp4"], "dad_ms": 0,
        "security": ["rfc4285", "ipsec"],
        "journal": "ha.journal", "replica": {"peer": peer, "bind": bind, "key_file": "replica.key", "ack": ack}}))
    return str(d / "ha.json")


@pytest.fixture
def pair(tmp_path):
    n = TestNamespaces()
    procs, kas = [], []
    try:
        lan, ha1, ha2, mn, hm = n.add("lan"), n.add("ha1"), n.add("ha2"), n.add("mn"), n.add("hm")
        for br in ("home", "upl"):
            n.ip(lan, "link", "add", br, "type", "bridge")
            n.ip(lan, "link", "set", "dev", br, "up")
        for ns, i, v6, v4 in ((ha1, 1, "2001:db8:aa::2", "198.18.1.3"), (ha2, 2, "2001:db8:aa::3", "198.18.1.4")):
            n.veth(ns, "h0", lan, "ph%d" % i)
            n.ip(lan, "link", "set", "ph%d" % i, "master", "home")
            n.veth(ns, "u0", lan, "pu%d" % i)
            n.ip(lan, "link", "set", "pu%d" % i, "master", "upl")
            n.ip(ns, "addr", "add", v6 + "/64", "dev", "h0", "nodad")
            n.ip(ns, "addr", "add", v4 + "/24", "dev", "u0")
        n.veth(mn, "wlan0", lan, "pmn")
        n.ip(lan, "link", "set", "pmn", "master", "upl")
        n.ip(mn, "addr", "add", MN4 + "/24", "dev", "wlan0")
        n.veth(hm, "eth0", lan, "phm")
        n.ip(lan, "link", "set", "phm", "master", "home")
        n.ip(hm, "addr", "add", "2001:db8:aa::50/64", "dev", "eth0", "nodad")
        cfgs = {ha1: ha_json(tmp_path, "ha1", "2001:db8:aa::2", "2001:db8:aa::3"),
                ha2: ha_json(tmp_path, "ha2", "2001:db8:aa::3", "2001:db8:aa::2")}

        def start_ha(ns, cfg=None):
            p = HAProcess(ns, cfg or cfgs[ns])
            procs.append(p)
            p.wait_for("ready")
            return p

        def start_ka(ns, prio):
            # 50 ms adverts: 10 ms ones can flap when other jobs starve keepalived on 2 cores (the bench uses 10)
            conf = keepalived_config(load_config(cfgs[ns]), prio, ipv4_dev="u0", vrid=60, advert_ms=50)
            k = Keepalived(ns, conf, str(tmp_path / "ka"), name=ns[-3:])
            kas.append(k)
            return k
        yield n, start_ha, start_ka, (ha1, ha2, mn, hm), tmp_path
    finally:
        for p in procs:
            p.stop()
        for k in kas:
            k.stop()
        n.teardown()


def has_vip(n, ns):
    return "2001:db8:aa::1/64" in n.ip(ns, "-6", "addr", "show", "dev", "h0").stdout


def wait(cond, timeout=5.0, what=""):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("timed out waiting for " + what)


def test_standby_takes_over_on_ha_crash_and_restarted_ha_rejoins(pair):
    n, start_ha, start_ka, (ha1, ha2, mn, hm), tmp_path = pair
    h1 = start_ha(ha1)
    start_ka(ha1, 100)
    h1.wait_for("takeover", timeout=10)
    h2 = start_ha(ha2)
    start_ka(ha2, 90)
    assert h2.wait_for("replica_synced", timeout=5)["bindings"] == 0
    h2.wait_for("replica_ready")
    time.sleep(0.15)                    # its next HELLO (100 ms) tells h1 it is ready: BAs wait for its ACKs

    s4 = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
    shm = n.socket(hm, socket.AF_INET6, socket.SOCK_DGRAM, bind=("2001:db8:aa::50", 7001))
    t0 = time.time_ns() // 1_000_000
    data, src, _ts = send_bu(s4, HA4, seq=1, now=t0)
    assert src == HA4 and parse_ba(data)[1].status == 0
    # replica "ack": that BA waited for the standby's acknowledgement of the record (ha/ack.py)
    st = json.loads(n.run(ha1, [sys.executable, "-m", "roam6_host", "ha", "status", "--json"]).stdout)
    assert st["replica_ack"]["acked"] == 1 and st["replica_ack"]["timeouts"] == 0, st["replica_ack"]
    h2.wait_for("binding_added", hoa="2001:db8:aa::100")        # the standby's copy
    # the IPsec device: IKE to the shared address, its BU in ESP, its binding copied to the standby too
    af4 = socket.AF_INET
    ike4 = n.socket(mn, af4, socket.SOCK_DGRAM, bind=(MN4, 4500), timeout=0.5)
    mip4 = n.socket(mn, af4, socket.SOCK_DGRAM, bind=(MN4, 0), timeout=2)
    esp = EspMN(PSK, INAI, socket.inet_pton(socket.AF_INET6, IHOA), socket.inet_pton(socket.AF_INET6, "2001:db8:aa::1"),
                (socket.inet_aton(MN4), 4500), (socket.inet_aton(HA4[0]), 4500), now_ms())
    assert [e[0] for e in handshake(esp, ike4, (HA4[0], 4500))] == ["ike_up", "hoa", "child_up"]
    mip4.sendto(esp.bu(1, "udp4", v4coa=V4COA), HA4)
    assert esp.open_ba(mip4.recvfrom(4096)[0])[1].status == 0
    h2.wait_for("binding_added", hoa=IHOA)
    shm.sendto(b"before", ("2001:db8:aa::100", 5000))
    assert bytes(decode_udp(decode_ipv6(s4.recvfrom(2048)[0]).payload).payload) == b"before"
    assert has_vip(n, ha1) and not has_vip(n, ha2)
    # the ready standby routes the HoA into its TUN already, but answers no NS for it (no proxy)
    assert "dev r6tun" in n.ip(ha2, "-6", "route", "show", "2001:db8:aa::100/128").stdout
    assert "2001:db8:aa::100" not in n.ip(ha2, "-6", "neigh", "show", "proxy").stdout

    # the active HA process dies; keepalived on its host lives on
    h1.proc.send_signal(signal.SIGKILL)
    h1.proc.wait(5)
    ev = h2.wait_for("takeover", timeout=5)
    assert ev["bindings"] == 2                   # (the RFC 4285 device's and the IPsec device's)
    assert has_vip(n, ha2)
    wait(lambda: not has_vip(n, ha1), what="the VIP to leave ha1")
    assert "dev r6tun" in n.ip(ha2, "-6", "route", "show", "2001:db8:aa::100/128").stdout
    assert "2001:db8:aa::100 dev h0" in n.ip(ha2, "-6", "neigh", "show", "proxy").stdout
    # the MN sent nothing: data to its HoA flows through the new active
    shm.sendto(b"after", ("2001:db8:aa::100", 5000))
    data, src = s4.recvfrom(2048)
    assert src == HA4 and bytes(decode_udp(decode_ipv6(data).payload).payload) == b"after"
    data, _src, _ts = send_bu(s4, HA4, seq=2, now=t0 + 1000)
    _pkt, ba = parse_ba(data)
    assert ba.status == 0 and ba.seq == 2                  # no 135: the sequence number came across
    # the IPsec device: the new active holds its binding but no SA: the BU under the old CHILD_SA is
    # dropped (unknown SPI); a new IKE SA with it (the MN's recheck), the BU again: a refresh
    mip4.sendto(esp.bu(2, "udp4", v4coa=V4COA), HA4)
    added = len(logged(h2, "binding_added"))
    assert silent(mip4)
    mip4.settimeout(2)
    t_rekey = now_ms()
    esp = EspMN(PSK, INAI, esp.hoa, esp.ha, (socket.inet_aton(MN4), 4500), (socket.inet_aton(HA4[0]), 4500),
                now_ms())
    assert [e[0] for e in handshake(esp, ike4, (HA4[0], 4500))] == ["ike_up", "hoa", "child_up"]
    mip4.sendto(esp.bu(3, "udp4", v4coa=V4COA), HA4)
    _pkt, iba = esp.open_ba(mip4.recvfrom(4096)[0])
    rekey_ms = now_ms() - t_rekey
    assert iba.status == 0 and iba.seq == 3, iba
    h2.wait_for("binding_refreshed", hoa=IHOA)   # the replicated binding, not a new one
    assert len(logged(h2, "binding_added")) == added
    print("ipsec re-keyed with the new active in %d ms (IKE_SA_INIT + IKE_AUTH + BU/BA)" % rekey_ms)
    ike4.close()
    mip4.close()

    # the crashed HA comes back: a standby that syncs the whole cache and takes nothing back;
    # shared addresses left on its host (as a keepalived killed with -9 leaves them) are removed
    n.ip(ha1, "addr", "add", "2001:db8:aa::1/64", "dev", "h0", "nodad")
    n.ip(ha1, "addr", "add", "198.18.1.2/24", "dev", "u0")
    h1 = start_ha(ha1)
    assert any("removed the shared addresses" in w["reason"] for w in logged(h1, "warning"))
    assert not has_vip(n, ha1) and "198.18.1.2/" not in n.ip(ha1, "addr", "show", "dev", "u0").stdout
    assert not logged(h1, "takeover")
    assert h1.wait_for("replica_synced", timeout=5)["bindings"] == 2
    h1.wait_for("replica_ready")
    time.sleep(0.3)
    assert has_vip(n, ha2) and not has_vip(n, ha1)
    data, _src, _ts = send_bu(s4, HA4, seq=3, now=t0 + 2000)
    assert parse_ba(data)[1].status == 0
    h1.wait_for("binding_refreshed", seq=3)

    # a replication peer with the wrong key: refused, nothing copied, never ready while ha2 lives
    h1.stop()
    bad = ha_json(tmp_path, "ha1bad", "2001:db8:aa::2", "2001:db8:aa::3", key="cd" * 32)
    h1 = start_ha(ha1, bad)
    h1.wait_for("replica_refused", timeout=3)
    assert not logged(h1, "replica_synced")
    assert not has_vip(n, ha1)
    s4.close()
    shm.close()


def test_stale_standby_is_not_chosen_while_the_active_lives(pair):
    """The standby hears the active's HELLOs but its copy never arrives (nftables drops every
    replication datagram longer than a HELLO): it keeps its TUN down, so its keepalived stays in
    FAULT and never takes the addresses, however long it waits; once the copy may arrive it
    syncs and becomes a candidate."""
    n, start_ha, start_ka, (ha1, ha2, mn, hm), tmp_path = pair
    h1 = start_ha(ha1)
    k1 = start_ka(ha1, 100)
    h1.wait_for("takeover", timeout=10)
    s4 = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
    data, _src, _ts = send_bu(s4, HA4, seq=1)
    assert parse_ba(data)[1].status == 0
    n.run(ha2, ["nft", "-f", "-"], input="table ip6 r6drop {\n chain in {\n  type filter hook input priority 0;\n"
                                         "  udp dport 4192 meta length > 150 drop\n }\n}\n")
    h2 = start_ha(ha2)
    k2 = start_ka(ha2, 200)              # even with the higher priority
    h2.wait_for("replica_peer", role="active")
    time.sleep(1.5)                      # past the start-up wait (1 s)
    assert not logged(h2, "replica_synced") and not logged(h2, "replica_ready")
    assert "UP" not in n.ip(ha2, "link", "show", "r6tun").stdout.split(">")[0]
    assert "FAULT" in k2.text() and "MASTER" not in k2.text()
    assert has_vip(n, ha1) and not has_vip(n, ha2)
    n.run(ha2, ["nft", "delete", "table", "ip6", "r6drop"])
    assert h2.wait_for("replica_synced", timeout=3)["bindings"] == 1
    h2.wait_for("replica_ready")
    assert k1.proc.poll() is None
    s4.close()
