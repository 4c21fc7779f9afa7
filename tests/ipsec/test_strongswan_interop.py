"""roam6's IKEv2 initiator and ESP against strongSwan 5.9.8 (charon + kernel-libipsec) as responder,
in namespaces this test creates: IKE_SA_INIT + IKE_AUTH with a PSK (IDi = the NAI), a tunnel-mode
CHILD_SA with protocol-any selectors, traffic both ways through it (an ICMPv6 echo to the
responder's inner address, answered by its kernel through libipsec's TUN), and the keys compared
with the ones charon logs. The initiator runs from CPython here and on real MicroPython in
test_strongswan_micropython.py.
"""
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import time

import pytest
from nshelp import TestNamespaces

from roam6.ipsec import ikev2
from roam6.wire.checksum import checksum6
from roam6_host.ipsec import client, swan, tshark

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (make test runs as root)")

PSK = "roam6-interop-psk"
NAI = "mn1@example.test"
SW4, MN4 = "10.19.0.1", "10.19.0.2"
SW6, HOA = "2001:db8:19::1", "2001:db8:19::2"


def a4(t):
    return socket.inet_pton(socket.AF_INET, t)


def a6(t):
    return socket.inet_pton(socket.AF_INET6, t)


@pytest.fixture
def net():
    swan.require()     # strongSwan missing: a clear error naming the packages, not a skip
    for tool, pkg in (("tcpdump", "tcpdump"), ("tshark", "tshark")):
        assert shutil.which(tool), "%s is missing: apt-get install %s (deps/apt.txt)" % (tool, pkg)
    n = TestNamespaces()
    try:
        n.add("sw")
        n.add("mn")
        n.veth("sw", "eth0", "mn", "eth0")
        n.ip("sw", "addr", "add", SW4 + "/24", "dev", "eth0")
        n.ip("mn", "addr", "add", MN4 + "/24", "dev", "eth0")
        n.ip("sw", "-6", "addr", "add", SW6 + "/128", "dev", "lo", "nodad")
        yield n
    finally:
        n.teardown()


def charon(n, tmp_path, **conn):
    c = dict(local_addrs=SW4, remote_addrs=MN4, local_id="ha.example.test", remote_id=NAI, psk=PSK,
             local_ts=SW6 + "/128", remote_ts=HOA + "/128")
    c.update(conn)
    return swan.Charon(n.full("sw"), str(tmp_path), c).start()


@pytest.fixture
def peer(net, tmp_path):
    sw = charon(net, tmp_path)
    try:
        yield net, sw
    finally:
        sw.stop()


def wait_line_err(proc, want, timeout):
    """Wait for a line containing `want` on proc's stderr (tcpdump says "listening on")."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([proc.stderr], [], [], 0.2)
        if r:
            line = proc.stderr.readline()
            if not line:
                return False
            if want.encode() in line:
                return True
    return False


def initiator(sock, **kw):
    return ikev2.Initiator(PSK.encode(), NAI, (a4(MN4), sock.getsockname()[1]), (a4(SW4), 4500),
                           [ikev2.ts_host(a6(HOA))], [ikev2.ts_host(a6(SW6))], client.now_ms(), **kw)


def echo_request(ident, seq, data):
    icmp = bytearray(b"\x80\x00\x00\x00" + ident.to_bytes(2, "big") + seq.to_bytes(2, "big") + data)
    c = checksum6(a6(HOA), a6(SW6), 58, icmp)
    icmp[2:4] = c.to_bytes(2, "big")
    return (b"\x60\x00\x00\x00" + len(icmp).to_bytes(2, "big") + b"\x3a\x40" + a6(HOA) + a6(SW6) + bytes(icmp))


def test_ike_child_sa_and_traffic_with_strongswan(peer, tmp_path):
    n, sw = peer
    pcap = str(tmp_path / "mn.pcap")
    cap = n.popen("mn", ["tcpdump", "-i", "eth0", "--immediate-mode", "-U", "-w", pcap, "udp"], stderr=subprocess.PIPE)
    assert wait_line_err(cap, "listening on", 5), "tcpdump did not start (apt-get install tcpdump)"
    sock = n.socket("mn", socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 4500))
    try:
        sock.connect((SW4, 4500))
        ike = initiator(sock, idr="ha.example.test")
        events = client.run(sock, ike, timeout_s=10)
        kinds = [e[0] for e in events]
        assert "ike_up" in kinds and kinds[-1] == "child_up", (events, sw.log_text()[-4000:])
        _, spi_in, spi_out, transport = events[-1]
        assert not transport
        sas = sw.list_sas()
        assert "ESTABLISHED" in sas and "INSTALLED" in sas and NAI in sas, sas
        assert ("%08x" % spi_in) in sas and ("%08x" % spi_out) in sas, sas
        # the keys: charon's log (ike = 4, chd = 4) holds the same SK_* and ESP keys
        keys = sw.logged_keys()
        assert ike.sk["ei"].hex() in keys.get("Sk_ei", []), keys
        assert ike.sk["ar"].hex() in keys.get("Sk_ar", []), keys
        assert ike.sk["d"].hex() in keys.get("Sk_d", []), keys
        # traffic both ways: echo request in, echo reply out of strongSwan's libipsec
        got = client.esp_exchange(sock, ike, echo_request(0x1919, 1, b"roam6-esp" * 4), 41)
        assert got is not None, (sw.list_sas(), ike.esp_in.__dict__)
        nh, inner, raw = got
        assert nh == 41 and inner[6] == 58 and inner[8:24] == a6(SW6) and inner[24:40] == a6(HOA)
        assert inner[40] == 129 and inner[44:46] == b"\x19\x19" and inner[48:] == b"roam6-esp" * 4
        sas = sw.list_sas()
        assert "TUNNEL-in-UDP" in sas and "AES_CBC-128/HMAC_SHA1_96" in sas, sas
        assert re.search(r"in  %08x, +\d+ bytes, +1 packets" % spi_out, sas), sas
        assert re.search(r"out %08x, +\d+ bytes, +1 packets" % spi_in, sas), sas
        # strongSwan's packet once more: roam6's anti-replay window refuses it
        assert ike.esp_in.open(raw) is None and ike.esp_in.replayed == 1 and ike.esp_in.opened == 1
        # liveness (an empty INFORMATIONAL) and a CHILD_SA rekey (CREATE_CHILD_SA + Delete of the old)
        ike.check_liveness(client.now_ms())
        assert client.run_until(sock, ike, ("alive",))[-1][0] == "alive"
        old_in, old_out = ike.esp_in.spi, ike.esp_out.spi
        ike.rekey_child(client.now_ms())
        ev = client.run_until(sock, ike, ("child_rekeyed",))
        assert ev[-1] == ("child_rekeyed", ike.esp_in.spi, ike.esp_out.spi), (ev, sw.log_text()[-3000:])
        assert ike.esp_in.spi != old_in and ike.esp_out.spi != old_out
        sas = sw.list_sas()
        assert ("%08x" % ike.esp_in.spi) in sas and ("%08x" % ike.esp_out.spi) in sas, sas
        assert "received DELETE for ESP CHILD_SA with SPI %08x" % old_in in sw.log_text()
        got = client.esp_exchange(sock, ike, echo_request(0x1919, 2, b"rekeyed"), 41)
        assert got is not None and got[1][40] == 129 and ike.esp_in.opened == 1, (got, sas)
    finally:
        sock.close()
        time.sleep(0.2)
        n.stop(cap)
    # Wireshark, given roam6's keys, decrypts IKE_AUTH and the ESP both ways; nothing malformed
    opts = tshark.key_options(ike, MN4, SW4)
    summary = tshark.dissect(pcap, opts)
    assert summary.count("IKE_SA_INIT") == 2 and summary.count("IKE_AUTH") == 2, summary
    assert "Echo (ping) request" in summary and "Echo (ping) reply" in summary, summary
    detail = tshark.dissect(pcap, opts, "-V")
    assert "Identification Data:" + NAI in detail and "Identification Data:ha.example.test" in detail
    assert detail.count("[Good: True]") == 2, detail[-3000:]          # both ESP packets' ICVs checked
    assert "Malformed" not in detail and "[Bad: True]" not in detail and "incorrect" not in detail


def test_wrong_psk_is_refused_with_authentication_failed(peer):
    n, sw = peer
    sock = n.socket("mn", socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 4500))
    try:
        sock.connect((SW4, 4500))
        ike = ikev2.Initiator(b"not-the-psk", NAI, (a4(MN4), 4500), (a4(SW4), 4500),
                              [ikev2.ts_host(a6(HOA))], [ikev2.ts_host(a6(SW6))], client.now_ms())
        events = client.run(sock, ike, timeout_s=10)
        assert events[-1] == ("failed", "auth", ikev2.N_AUTH_FAILED), events
        assert "ESTABLISHED" not in sw.list_sas()
    finally:
        sock.close()


def test_micropython_initiator_with_strongswan_and_traffic_both_ways(peer):
    """The same initiator on the real MicroPython unix port in the MN's namespace (mp_ike.py)."""
    n, sw = peer
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    mp = os.path.join(os.path.dirname(sys.executable), "micropython")
    script = os.path.join(root, "host_tools", "roam6_host", "ipsec", "mp_ike.py")
    p = n.run("mn", ["env", "MICROPYPATH=" + os.path.join(root, "firmware"), mp, script,
                     PSK, NAI, MN4, SW4, HOA, SW6], check=False, timeout=30)
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    assert p.returncode == 0 and lines, p.stdout + p.stderr
    kinds = [x.get("event") for x in lines]
    assert kinds[:2] == ["ike_up", "child_up"], (lines, sw.log_text()[-3000:])
    summary = lines[-1]
    assert summary["child_up"] and summary["echo_ok"], (summary, sw.list_sas())
    assert summary["sk_ei"] in sw.logged_keys()["Sk_ei"]
    sas = sw.list_sas()
    assert "INSTALLED" in sas and re.search(r"in  %08x, +\d+ bytes, +1 packets" % lines[1]["fields"][1], sas), sas


def test_mh_selector_and_transport_mode_at_the_ike_level(net, tmp_path):
    """RFC 4877's CHILD_SA for MH (protocol 135 selectors HoA <-> HA) negotiated with strongSwan in
    tunnel mode. Asked for transport mode (N(USE_TRANSPORT_MODE), parsed by strongSwan), strongSwan
    refuses the HoA <-> HA selectors with TS_UNACCEPTABLE, the IKE SA staying up: in transport mode
    it only takes selectors for its IKE peer's own address, while RFC 4877 runs IKE from the CoA
    (and its kernel-libipsec could not install a transport-mode SA anyway). roam6 reports
    child_failed with that notify."""
    sw = charon(net, tmp_path, local_ts=SW6 + "/128[135]", remote_ts=HOA + "/128[135]")
    sock = net.socket("mn", socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 4500))
    try:
        sock.connect((SW4, 4500))
        ike = ikev2.Initiator(PSK.encode(), NAI, (a4(MN4), 4500), (a4(SW4), 4500), [ikev2.ts_host(a6(HOA), 135)],
                              [ikev2.ts_host(a6(SW6), 135)], client.now_ms())
        events = client.run(sock, ike)
        assert [e[0] for e in events] == ["ike_up", "child_up"], (events, sw.log_text()[-3000:])
        assert ike.ts_i_got[0][1] == 135 and ike.ts_r_got[0][1] == 135, (ike.ts_i_got, ike.ts_r_got)
        sas = sw.list_sas()
        assert "INSTALLED" in sas and "2001:db8:19::1/128[mobility-header]" in sas, sas
    finally:
        sock.close()
        sw.stop()
    sw = charon(net, tmp_path, local_ts=SW6 + "/128[135]", remote_ts=HOA + "/128[135]", mode="transport")
    sock = net.socket("mn", socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 4500))
    try:
        sock.connect((SW4, 4500))
        ike = ikev2.Initiator(PSK.encode(), NAI, (a4(MN4), 4500), (a4(SW4), 4500), [ikev2.ts_host(a6(HOA), 135)],
                              [ikev2.ts_host(a6(SW6), 135)], client.now_ms(), transport=True)
        events = client.run(sock, ike)
        assert [e[0] for e in events] == ["ike_up", "child_failed"], (events, sw.log_text()[-3000:])
        assert events[-1][1] == ikev2.N_TS_UNACCEPTABLE
        log = sw.log_text()
        assert "parsed IKE_AUTH request 1 [ IDi AUTH N(USE_TRANSP) SA TSi TSr ]" in log, log[-3000:]
        assert "2001:db8:19::2/128[mobility-header] unacceptable" in log
    finally:
        sock.close()
        sw.stop()


def test_home_address_from_the_configuration_payload(net, tmp_path):
    """RFC 4877 §4.4: the MN asks for its home address in IKE_AUTH (CP(CFG_REQUEST) with
    INTERNAL_IP6_ADDRESS), strongSwan assigns one from its pool and narrows TSi to it; an echo
    from that address crosses the CHILD_SA both ways."""
    sw = charon(net, tmp_path, pool="2001:db8:19::200/123", remote_ts="dynamic")
    sock = net.socket("mn", socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 4500))
    try:
        sock.connect((SW4, 4500))
        anyv6 = ikev2.ts_range(bytes(16), b"\xff" * 16)
        ike = ikev2.Initiator(PSK.encode(), NAI, (a4(MN4), 4500), (a4(SW4), 4500), [anyv6],
                              [ikev2.ts_host(a6(SW6))], client.now_ms(), request_hoa=True)
        events = client.run(sock, ike)
        assert [e[0] for e in events] == ["ike_up", "hoa", "child_up"], (events, sw.log_text()[-3000:])
        _, hoa, plen = events[1]
        assert hoa[:14] == a6("2001:db8:19::200")[:14] and 0x200 <= int.from_bytes(hoa[14:], "big") < 0x220
        assert ike.ts_i_got == [ikev2.ts_host(hoa)]          # TSi narrowed to the assigned address
        assert socket.inet_ntop(socket.AF_INET6, hoa) in sw.list_sas()
        req = bytearray(echo_request(0x4877, 1, b"cp-assigned"))
        req[8:24] = hoa
        req[42:44] = b"\0\0"
        req[42:44] = checksum6(hoa, a6(SW6), 58, bytes(req[40:])).to_bytes(2, "big")
        got = client.esp_exchange(sock, ike, bytes(req), 41)
        assert got is not None and got[1][40] == 129 and got[1][24:40] == hoa, got
    finally:
        sock.close()
        sw.stop()


def test_aes_gcm_and_a_pfs_rekey_with_strongswan(net, tmp_path):
    """The MN's initiator with `esp_gcm` and `pfs` against strongSwan (esp_proposals aes128gcm16-x25519):
    ENCR_AES_GCM_16 negotiated, an echo both ways through AES-GCM ESP, then a CHILD_SA rekey with a
    KE (X25519, RFC 7296 §1.3.3) and traffic through the new SAs."""
    sw = charon(net, tmp_path, esp="aes128gcm16-x25519")
    sock = net.socket("mn", socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 4500))
    try:
        sock.connect((SW4, 4500))
        ike = initiator(sock, idr="ha.example.test", esp_gcm=True, pfs=True)
        events = client.run(sock, ike, timeout_s=10)
        assert [e[0] for e in events][-1] == "child_up", (events, sw.log_text()[-3000:])
        got = client.esp_exchange(sock, ike, echo_request(0x4106, 1, b"gcm"), 41)
        assert got is not None and got[1][40] == 129 and got[1][48:] == b"gcm", sw.list_sas()
        assert "ESP:AES_GCM_16-128" in sw.list_sas()
        ike.rekey_child(client.now_ms())
        ev = client.run_until(sock, ike, ("child_rekeyed",))
        assert ev[-1][0] == "child_rekeyed", (ev, sw.log_text()[-3000:])
        sas = sw.list_sas()
        assert "ESP:AES_GCM_16-128/CURVE_25519" in sas and ("%08x" % ike.esp_in.spi) in sas, sas
        got = client.esp_exchange(sock, ike, echo_request(0x4106, 2, b"pfs"), 41)
        assert got is not None and got[1][48:] == b"pfs" and ike.esp_in.opened == 1, sas
    finally:
        sock.close()
        sw.stop()
