"""The real `roam6 ha` process with IPsec devices (ha.json "security": ["rfc4285", "ipsec"]) in
namespaces; the MN is the firmware's own IKEv2 Initiator and ESP (tests/ha/ipsec_mn.py) over real
sockets: IKEv2 on UDP 4500 (IPv6 for udp6, IPv4 for udp4), the ESP-protected BU in UDP 4191.

    mn (198.18.1.10, 2001:db8:f1::10) --- ha (198.18.1.2, 2001:db8:f1::2; 2001:db8:aa::1 on a bridge, TUN r6tun)

Checks: registration on udp6 and udp4 (BA sealed and K, route into the TUN), a replayed ESP packet,
a BU over another device's SA, a BU in clear for an IPsec device (all dropped, no answer, logged),
a wrong PSK (AUTHENTICATION_FAILED), malformed IKE (truncated, lying length: dropped; unknown
critical payload: UNSUPPORTED_CRITICAL_PAYLOAD), the IKE SA's peer following a liveness check
from a new port, ip6 (HAO + ESP), the payload tunnel through the TUN both ways, tshark's reading,
SIGHUP bringing in a new device, `roam6 ha status`, and the HA stopping cleanly after all of it.
"""
import json
import os
import signal
import socket
import time

import pytest

from roam6.ipsec import ikev2 as k
from roam6.wire.ipv6 import build_ipv6, decode_ipv6
from roam6_codec.udp import build_udp, decode_udp

from ha_helpers import HA, KEY, NAI, SPI, V4COA, a6, build_bu, ntp_timestamp
from ipsec_mn import EspMN, tshark_view
from nshelp import TestNamespaces
from test_ha_netns import HAProcess

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (make test runs as root)")

PSK, PSK2 = bytes(range(32)), bytes(range(32, 64))
INAI, INAI2 = "esp1@example.test", "esp2@example.test"
IHOA, IHOA2 = a6("2001:db8:aa::301"), a6("2001:db8:aa::302")
MN4, MN6, HA4, HA6 = "198.18.1.10", "2001:db8:f1::10", "198.18.1.2", "2001:db8:aa::1"


@pytest.fixture
def bench(tmp_path):
    n = TestNamespaces()
    ha_proc = None
    try:
        ha, mn = n.add("ha"), n.add("mn")
        n.veth(ha, "up0", mn, "wlan0")
        n.ip(ha, "addr", "add", HA4 + "/24", "dev", "up0")
        n.ip(ha, "addr", "add", "2001:db8:f1::2/64", "dev", "up0", "nodad")
        n.ip(ha, "link", "add", "home", "type", "bridge")
        n.ip(ha, "link", "set", "home", "up")
        n.ip(ha, "addr", "add", HA6 + "/64", "dev", "home", "nodad")
        n.ip(mn, "addr", "add", MN4 + "/24", "dev", "wlan0")
        n.ip(mn, "addr", "add", MN6 + "/64", "dev", "wlan0", "nodad")
        n.ip(mn, "-6", "route", "add", "2001:db8:aa::/64", "via", "2001:db8:f1::2")
        keys = tmp_path / "ha-keys.json"
        keys.write_text(json.dumps({"sas": [
            {"nai": NAI.decode(), "spi": SPI, "key": KEY.hex(), "hoa": "2001:db8:aa::100"},
            {"nai": INAI, "security": "ipsec", "psk": PSK.hex(), "hoa": "2001:db8:aa::301"},
            {"nai": INAI2, "security": "ipsec", "psk": PSK2.hex(), "hoa": "2001:db8:aa::302"}]}))
        os.chmod(keys, 0o600)
        cfg = tmp_path / "ha.json"
        cfg.write_text(json.dumps({"home_prefix": "2001:db8:aa::/64", "address": HA6, "ipv4": HA4, "tun": "r6tun",
                                   "keys_file": "ha-keys.json", "transports": ["udp4", "udp6", "ip6"], "dad_ms": 0,
                                   "security": ["rfc4285", "ipsec"]}))
        ha_proc = HAProcess(ha, str(cfg))
        ha_proc.wait_for("ready")
        yield n, ha_proc, ha, mn, keys
    finally:
        if ha_proc is not None:
            ha_proc.stop()
        n.teardown()


def now_ms():
    return time.monotonic_ns() // 1_000_000


def handshake(mn, sock, dest):
    """Run the initiator against the HA over `sock` until it is up or failed (bounded)."""
    end = time.monotonic() + 5
    evs = []
    while time.monotonic() < end:
        for data, _dst in mn.ike.datagrams_to_send(now_ms()):
            sock.sendto(data, dest)
        try:
            data, _ = sock.recvfrom(4096)
            mn.ike.receive(data, now_ms())
        except socket.timeout:
            mn.ike.handle_timer(now_ms())
        evs += mn.events()
        if any(e[0] in ("child_up", "failed", "child_failed") for e in evs):
            return evs
    return evs


def silent(sock, wait=0.3):
    sock.settimeout(wait)
    try:
        sock.recvfrom(4096)
    except socket.timeout:
        return True
    return False


def test_ipsec_devices_against_the_real_ha(bench, tmp_path):
    n, ha_proc, ha, mnns, keys = bench
    af6, af4 = socket.AF_INET6, socket.AF_INET
    ike6 = n.socket(mnns, af6, socket.SOCK_DGRAM, bind=(MN6, 4500), timeout=0.5)
    mip6 = n.socket(mnns, af6, socket.SOCK_DGRAM, bind=(MN6, 0), timeout=2)
    try:
        # udp6 device: IKE to the HA's IPv6 address, the HoA from the keys file through CP
        mn = EspMN(PSK, INAI, IHOA, HA, (a6(MN6), 4500), (HA, 4500), now_ms())
        evs = handshake(mn, ike6, (HA6, 4500))
        assert [e[0] for e in evs] == ["ike_up", "hoa", "child_up"], evs
        bu = mn.bu(1, "udp6")
        mip6.sendto(bu, (HA6, 4191))
        data, _ = mip6.recvfrom(4096)
        seen = [(bu, True, True), (data, True, False)]         # for tshark below
        _pkt, ba = mn.open_ba(data)
        assert ba.status == 0 and ba.flags & 0x80
        assert "r6tun" in n.ip(ha, "-6", "route", "show", "2001:db8:aa::301/128").stdout
        # the same ESP packet again: replay window, no answer
        mip6.sendto(bu, (HA6, 4191))
        assert silent(mip6)
        ha_proc.wait_for("esp_dropped", reason="esp_replayed")
        # the other device's HoA over this device's SA: dropped
        mip6.sendto(mn.bu(2, "udp6", hoa=IHOA2), (HA6, 4191))
        assert silent(mip6)
        ha_proc.wait_for("esp_dropped", reason="esp_wrong_sa")
        # an RFC 4285 BU in clear for the IPsec device, signed by a valid SA: dropped, no BA
        clear = build_bu(KEY, SPI, NAI, IHOA, HA, 7, 150, "udp6", coa=a6(MN6),
                         timestamp=ntp_timestamp(time.time_ns() // 1_000_000, 7))
        mip6.sendto(clear, (HA6, 4191))
        assert silent(mip6)
        line = ha_proc.wait_for("bu_dropped")
        assert line["reason"].startswith("ipsec:"), line

        # ip6 (native): src CoA + Home Address option + ESP, read from the HA's packet socket; the BA
        # to the CoA with a type 2 routing header, then ESP
        raw = n.socket(mnns, af6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        pk = n.socket(mnns, socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x86DD), timeout=0.3)
        try:
            bu3 = mn.bu(3, "ip6", coa=a6(MN6))
            raw.sendto(bu3, (HA6, 0))
            end, ba = time.monotonic() + 5, None
            while ba is None and time.monotonic() < end:
                try:
                    data, _ = pk.recvfrom(4096)
                except socket.timeout:
                    continue
                if len(data) > 64 and data[6] == 43 and data[24:40] == a6(MN6):
                    seen += [(bu3, False, True), (bytes(data), False, False)]
                    pkt, ba = mn.open_ba(data)
            assert ba is not None and ba.status == 0 and pkt.rh2 == IHOA and ba.flags & 0x80
            ev = ha_proc.wait_for("binding_moved", hoa="2001:db8:aa::301")
            assert ev["transport"] == "ip6"
            # Wireshark, given the ESP keys, reads the BUs and BAs (udp6 and ip6) with good ICVs
            hoa6 = "2001:db8:aa::301"
            out = tshark_view(str(tmp_path / "mh.pcap"), seen, [(hoa6, HA6, mn.ike.esp_out),
                                                                 (MN6, HA6, mn.ike.esp_out),
                                                                 (HA6, hoa6, mn.ike.esp_in), (HA6, MN6, mn.ike.esp_in)])
            assert out.count("Mobility Header Type: Binding Update (5)") == 2, out
            assert out.count("Mobility Header Type: Binding Acknowledgement (6)") == 2, out
            assert "Malformed" not in out and out.count("<HMAC-SHA-1-96 [RFC2404]> [correct]") == 4, out
            assert out.count("Key Management Compatibility (K) flag: Key Management Mobility Compatibility") == 4
        finally:
            raw.close()
            pk.close()

        # the payload tunnel (design 6): a second CHILD_SA in tunnel mode; upstream ESP -> the HA's TUN
        # -> routed (here to the MN's own address), downstream to the HoA -> TUN -> sealed to the MN
        mip6.sendto(mn.bu(4, "udp6"), (HA6, 4191))             # back to udp6 (from ip6 above)
        assert mn.open_ba(mip6.recvfrom(4096)[0])[1].status == 0
        ike6.sendto(mn.data_child_request(), (HA6, 4500))
        ike6.settimeout(2)
        d_out, d_in = mn.data_child_response(ike6.recvfrom(4096)[0])
        app = n.socket(mnns, af6, socket.SOCK_DGRAM, bind=(MN6, 7000), timeout=2)
        try:
            up = build_ipv6(IHOA, a6(MN6), 17, build_udp(5000, 7000, b"up-esp", src=IHOA, dst=a6(MN6)))
            mip6.sendto(build_ipv6(IHOA, HA, 50, d_out.seal(up, 41)), (HA6, 4191))
            payload, frm = app.recvfrom(2048)
            assert payload == b"up-esp" and frm[0] == "2001:db8:aa::301"
            app.sendto(b"down-esp", ("2001:db8:aa::301", 5000))
            data, _ = mip6.recvfrom(4096)
            outer = decode_ipv6(data)
            assert outer.nh == 50 and outer.dst == IHOA
            nh, inner = d_in.open(bytes(outer.payload))
            p = decode_ipv6(inner)
            assert nh == 41 and p.dst == IHOA and bytes(decode_udp(p.payload).payload) == b"down-esp"
        finally:
            app.close()

        # the IKE SA follows the MN: a liveness check from another port is answered there
        ike6b = n.socket(mnns, af6, socket.SOCK_DGRAM, bind=(MN6, 0), timeout=2)
        try:
            mn.ike.check_liveness(now_ms())
            for d, _ in mn.ike.datagrams_to_send(now_ms()):
                ike6b.sendto(d, (HA6, 4500))
            d, _ = ike6b.recvfrom(4096)
            mn.ike.receive(d, now_ms())
            assert [e[0] for e in mn.events()] == ["alive"]
            ha_proc.wait_for("ike_moved", nai=INAI)
        finally:
            ike6b.close()

        # wrong PSK: AUTHENTICATION_FAILED (24)
        bad = EspMN(b"\xee" * 32, INAI2, IHOA2, HA, (a6(MN6), 4500), (HA, 4500), now_ms())
        evs = handshake(bad, ike6, (HA6, 4500))
        assert evs and evs[-1][0] == "failed" and evs[-1][2] == k.N_AUTH_FAILED, evs
        ha_proc.wait_for("ike_refused", reason="auth")

        # malformed IKE: truncated and lying lengths dropped; an unknown critical payload refused (§2.5)
        probe = EspMN(PSK2, INAI2, IHOA2, HA, (a6(MN6), 4500), (HA, 4500), now_ms())
        (init, _), = probe.ike.datagrams_to_send(now_ms())
        for junk in (init[:30], init[:-8], init[:28] + b"\xff\xff" + init[30:], k.MARKER + b"\x01" * 3):
            ike6.sendto(junk, (HA6, 4500))
            assert silent(ike6, 0.2)
        body = init[4:]
        crit = (body[:16] + bytes((200,)) + body[17:24] + (len(body) + 8).to_bytes(4, "big") + bytes((body[16], 0x80))
                + b"\x00\x08" + b"junk" + body[28:])
        ike6.sendto(k.MARKER + crit, (HA6, 4500))
        ike6.settimeout(2)
        ans, _ = ike6.recvfrom(4096)
        assert ans[4 + 16] == k.PL_NOTIFY and int.from_bytes(ans[4 + 28 + 6:4 + 28 + 8], "big") == 1, ans.hex()
        assert ans[-1] == 200

        # udp4 device: IKE over IPv4 (the HA's IPv4 address), BU in UDP 4191 over IPv4
        ike4 = n.socket(mnns, af4, socket.SOCK_DGRAM, bind=(MN4, 4500), timeout=0.5)
        mip4 = n.socket(mnns, af4, socket.SOCK_DGRAM, bind=(MN4, 0), timeout=2)
        try:
            mn2 = EspMN(PSK2, INAI2, IHOA2, HA, (socket.inet_aton(MN4), 4500), (socket.inet_aton(HA4), 4500),
                        now_ms())
            evs = handshake(mn2, ike4, (HA4, 4500))
            assert [e[0] for e in evs] == ["ike_up", "hoa", "child_up"], evs
            mip4.sendto(mn2.bu(1, "udp4", v4coa=V4COA), (HA4, 4191))
            data, _ = mip4.recvfrom(4096)
            assert mn2.open_ba(data)[1].status == 0
            assert "r6tun" in n.ip(ha, "-6", "route", "show", "2001:db8:aa::302/128").stdout
        finally:
            ike4.close()
            mip4.close()
        # SIGHUP: a device provisioned meanwhile comes up without a restart
        doc = json.loads(keys.read_text())
        doc["sas"].append({"nai": "esp3@example.test", "security": "ipsec", "psk": "33" * 32,
                           "hoa": "2001:db8:aa::303"})
        keys.write_text(json.dumps(doc))
        ha_proc.proc.send_signal(signal.SIGHUP)
        ha_proc.wait_for("keys_reloaded")
        mn3 = EspMN(b"\x33" * 32, "esp3@example.test", a6("2001:db8:aa::303"), HA, (a6(MN6), 4500), (HA, 4500),
                    now_ms())
        evs = handshake(mn3, ike6, (HA6, 4500))
        assert [e[0] for e in evs] == ["ike_up", "hoa", "child_up"], evs
        from roam6_host.ha.control import query
        with n.inside(ha):                    # `roam6 ha status`: the counts of what was dropped
            st = query("r6tun")
        assert st["ipsec"]["esp_replayed"] == 1 and st["ipsec"]["esp_wrong_sa"] == 1, st["ipsec"]
        assert st["ipsec"]["clear_bu_refused"] == 1 and st["ipsec"]["ike_sas"] == 3, st["ipsec"]
        assert ha_proc.proc.poll() is None
        assert not [x for x in ha_proc.lines if "internal_error" in x], ha_proc.lines
    finally:
        ike6.close()
        mip6.close()
    ha_proc.stop()
    assert ha_proc.proc.returncode == 0, ha_proc.stderr_now()
