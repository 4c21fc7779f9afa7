"""roam6's IKEv2 responder (the HA side, host_tools/roam6_host/ipsec/responder.py) with strongSwan
charon as INITIATOR (`swanctl --initiate`, kernel-libipsec), in namespaces this test creates: the
IKE SA and the CHILD_SA come up on both sides, and a ping from strongSwan's side crosses the
CHILD_SA both ways (roam6 opens strongSwan's ESP, answers the echo through its own ESP, which
strongSwan opens). A wrong PSK is refused with AUTHENTICATION_FAILED."""
import os
import select
import socket
import threading
import time

import pytest
from nshelp import TestNamespaces

from roam6.wire.checksum import checksum6
from roam6_host.ipsec import client, responder, swan

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (make test runs as root)")

PSK = "roam6-ha-psk"
NAI = "mn1@example.test"
HA4, MN4 = "10.19.1.1", "10.19.1.2"
HA6, HOA = "2001:db8:19:1::1", "2001:db8:19:1::2"


def a6(t):
    return socket.inet_pton(socket.AF_INET6, t)


class HaLoop(threading.Thread):
    """The responder on UDP 500 and 4500 in the HA's namespace; ESP to a CHILD_SA is opened and an
    ICMPv6 echo request inside answered through the CHILD_SA."""

    def __init__(self, n, psk, assign=None):
        super().__init__(daemon=True)
        self.r = responder.Responder({NAI: psk}, "ha.example.test", client.now_ms(), local_ip=HA4, assign=assign)
        self.socks = {p: n.socket("ha", socket.AF_INET, socket.SOCK_DGRAM, bind=(HA4, p)) for p in (500, 4500)}
        self.events, self.child, self.echoes = [], None, 0
        self.stop = False

    def run(self):
        while not self.stop:
            ready, _, _ = select.select(list(self.socks.values()), [], [], 0.1)
            for s in ready:
                port = s.getsockname()[1]
                data, peer = s.recvfrom(4096)
                if port == 4500 and data[:4] != b"\0\0\0\0" and self.child:
                    self.esp(data, peer)
                    continue
                self.r.receive(data, peer, port, client.now_ms())
            ev = self.r.next_event()        # events first: the test reads them once strongSwan is done
            while ev:
                self.events.append(ev)
                if ev[0] == "child_up":
                    self.child = ev
                elif ev[0] == "child_rekeyed":      # the new SAs from now on (the same fields)
                    self.child = ev[:2] + ev[2:4] + self.child[4:]
                ev = self.r.next_event()
            for data, peer, port in self.r.datagrams_to_send(client.now_ms()):
                self.socks[port].sendto(data, peer)

    def esp(self, data, peer):
        _, _, sa_in, sa_out, _, _, _ = self.child
        got = sa_in.open(data)
        if not got or got[0] != 41 or got[1][6] != 58 or got[1][40] != 128:
            return
        inner = got[1]
        src, dst = inner[8:24], inner[24:40]
        icmp = bytearray(inner[40:])
        icmp[0], icmp[2:4] = 129, b"\0\0"
        icmp[2:4] = checksum6(dst, src, 58, icmp).to_bytes(2, "big")
        reply = inner[:8] + dst + src + bytes(icmp)
        self.echoes += 1            # before the reply leaves: the test reads it once ping is done
        self.socks[4500].sendto(sa_out.seal(reply, 41), peer)

    def close(self):
        self.stop = True
        self.join(2)
        for s in self.socks.values():
            s.close()


@pytest.fixture
def net(tmp_path):
    swan.require()
    n = TestNamespaces()
    try:
        n.add("ha")
        n.add("mn")
        n.veth("ha", "eth0", "mn", "eth0")
        n.ip("ha", "addr", "add", HA4 + "/24", "dev", "eth0")
        n.ip("mn", "addr", "add", MN4 + "/24", "dev", "eth0")
        n.ip("mn", "-6", "addr", "add", HOA + "/128", "dev", "lo", "nodad")
        yield n
    finally:
        n.teardown()


def start(n, tmp_path, psk, assign=None, **conn):
    ha = HaLoop(n, PSK, assign)
    ha.start()
    c = dict(local_addrs=MN4, remote_addrs=HA4, local_id=NAI, remote_id="ha.example.test", psk=psk,
             local_ts=HOA + "/128", remote_ts=HA6 + "/128")
    c.update(conn)
    sw = swan.Charon(n.full("mn"), str(tmp_path), c).start()
    return ha, sw


def test_strongswan_initiates_to_roam6_responder_and_pings_through_it(net, tmp_path):
    ha, sw = start(net, tmp_path, PSK)
    try:
        out = sw.swanctl("--initiate", "--child", "mn", "--timeout", "10", timeout=15)
        assert "initiate completed successfully" in out, out + sw.log_text()[-3000:]
        assert "CHILD_SA mn{1} established" in out, out
        kinds = [e[0] for e in ha.events]
        assert kinds == ["ike_up", "child_up"], ha.events
        _, peer_id, sa_in, sa_out, transport, ts_i, ts_r = ha.child
        assert peer_id == NAI and not transport
        assert ts_i[0][4] == a6(HOA) and ts_r[0][4] == a6(HA6)
        sas = sw.list_sas()
        assert "ESTABLISHED" in sas and "INSTALLED" in sas and ("%08x" % sa_in.spi) in sas, sas
        keys = sw.logged_keys()
        assert ha.r.sas and list(ha.r.sas.values())[0].sk["ei"].hex() in keys.get("Sk_ei", [])
        ping = ["busybox", "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-I", HOA, HA6]
        p = net.run("mn", ping, check=False, timeout=10)
        assert p.returncode == 0 and " 0% packet loss" in p.stdout, p.stdout + p.stderr + sw.list_sas()
        assert ha.echoes == 2 and sa_in.opened == 2 and sa_out.sealed == 2
        # strongSwan rekeys the CHILD_SA (CREATE_CHILD_SA, then deletes the old one); pings go on
        out = sw.swanctl("--rekey", "--child", "mn", timeout=15)
        deadline = time.monotonic() + 5
        while "child_deleted" not in [e[0] for e in ha.events] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [e[0] for e in ha.events][2:] == ["child_rekeyed", "child_deleted"], (ha.events, out)
        assert ha.child[2] is not sa_in and ha.events[3][2] == sa_in.spi
        p = net.run("mn", ["busybox", "ping", "-6", "-c", "1", "-W", "2", "-I", HOA, HA6], check=False, timeout=10)
        assert p.returncode == 0, p.stdout + p.stderr + sw.list_sas()
        assert ha.echoes == 3 and ha.child[2].opened == 1 and ("%08x" % ha.child[2].spi) in sw.list_sas()
    finally:
        sw.stop()
        ha.close()


def test_strongswan_with_a_wrong_psk_is_refused(net, tmp_path):
    ha, sw = start(net, tmp_path, "not-the-psk")
    try:
        p_out = ""
        try:
            p_out = sw.swanctl("--initiate", "--child", "mn", "--timeout", "10", timeout=15)
        except RuntimeError as e:
            p_out = str(e)
        assert "initiate completed successfully" not in p_out
        assert [e[0] for e in ha.events] == ["refused"] and ha.events[0][2] == 24, ha.events
        assert "AUTHENTICATION_FAILED" in sw.log_text()
        assert not ha.r.sas
    finally:
        sw.stop()
        ha.close()


def test_roam6_responder_assigns_the_home_address_through_the_configuration_payload(net, tmp_path):
    """RFC 4877 §4.4 from the HA's side: strongSwan (vips = ::) asks for an address in IKE_AUTH, the
    responder hands out the MN's home address, strongSwan installs it and pings from it."""
    given = "2001:db8:19:1::77"
    ha, sw = start(net, tmp_path, PSK, assign=lambda nai: (a6(given), 64) if nai == NAI else None,
                   local_ts="dynamic", vips="::")
    try:
        out = sw.swanctl("--initiate", "--child", "mn", "--timeout", "10", timeout=15)
        assert "initiate completed successfully" in out, out + sw.log_text()[-3000:]
        assert [e[0] for e in ha.events] == ["ike_up", "hoa", "child_up"], ha.events
        assert "installing new virtual IP %s" % given in sw.log_text(), sw.log_text()[-3000:]
        sas = sw.list_sas()
        assert given + "/128" in sas, sas
        ping = ["busybox", "ping", "-6", "-c", "1", "-W", "2", "-I", given, HA6]
        p = net.run("mn", ping, check=False, timeout=10)
        assert p.returncode == 0, p.stdout + p.stderr + sw.list_sas()
        assert ha.echoes == 1
    finally:
        sw.stop()
        ha.close()
