"""The real `roam6 ha` process in namespaces, driven by real BUs (built with the firmware codec)
over UDP 4191, with the test playing MN, CN and a host on the home link through real sockets.

    mn (198.18.1.10, 2001:db8:f1::10) --- ha (198.18.1.2, 2001:db8:f1::2; home bridge 2001:db8:aa::1/64,
                                              TUN r6tun)       --- cn (2001:db8:f3::2)
                                          home bridge --- hm (2001:db8:aa::50, a neighbour on the home link)

Checks: BAs (status, MAC, NAT detection, timestamp echo), /128 routes into the TUN and proxy ND
entries, data both ways (and proxy ND from the home link), spoofed inner sources refused with a
Binding Error, hostile datagrams survived, deregistration, and a clean SIGTERM.
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

from roam6_codec import mhopts as mo
from roam6.wire.ipv6 import build_ipv6, decode_ipv6
from roam6_codec.mh import BindingError, decode_mh
from roam6_codec.udp import build_udp, decode_udp

from ha_helpers import (HA, HOA, HOA2, KEY, KEY2, NAI, NAI2, SPI, SPI2, V4MAPPED, a4, a6, build_bu,
                     ntp_timestamp, parse_ba)
from nshelp import Lines, TestNamespaces, sh

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (make test runs as root)")

CN = a6("2001:db8:f3::2")
HM = a6("2001:db8:aa::50")
MN4, MN6 = "198.18.1.10", "2001:db8:f1::10"
V4COA = a4("192.0.2.100")        # what the MN believes its address is: differs from MN4 -> "NAT"
DAD_MS = 200                     # the HA's DAD wait on the home link (1000 by default)


class HAProcess:
    def __init__(self, ns, config):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "roam6_host", "ha", "--config", config],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out = Lines(self.proc)
        self.lines = self.out.log

    def wait_for(self, ev, timeout=10, **match):
        try:
            return self.out.until(lambda e: e.get("ev") == ev and all(e.get(k) == v for k, v in match.items()),
                                  timeout)[0]
        except AssertionError as exc:
            raise AssertionError("no %r event %r from the HA (%s); output:\n%s\nstderr: %s"
                                 % (ev, match, str(exc).split(";")[0], "".join(self.lines[-30:]),
                                    self.stderr_now())) from None

    def stderr_now(self):
        try:
            self.proc.wait(0.5)       # its stdout may have just ended: let it exit
        except subprocess.TimeoutExpired:
            return "(running)"
        return self.proc.stderr.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def bench(tmp_path):
    n = TestNamespaces()
    ha_proc = None
    try:
        ha, mn, cn, hm = n.add("ha"), n.add("mn"), n.add("cn"), n.add("hm")
        n.veth(ha, "up0", mn, "wlan0")
        n.ip(ha, "addr", "add", "198.18.1.2/24", "dev", "up0")
        n.ip(ha, "addr", "add", "2001:db8:f1::2/64", "dev", "up0", "nodad")
        n.ip(mn, "addr", "add", MN4 + "/24", "dev", "wlan0")
        n.ip(mn, "addr", "add", MN6 + "/64", "dev", "wlan0", "nodad")
        n.ip(mn, "-6", "route", "add", "2001:db8:aa::/64", "via", "2001:db8:f1::2")   # ip6: BUs to the HA address
        n.veth(ha, "cn0", cn, "eth0")
        n.ip(ha, "addr", "add", "2001:db8:f3::1/64", "dev", "cn0", "nodad")
        n.ip(cn, "addr", "add", "2001:db8:f3::2/64", "dev", "eth0", "nodad")
        n.ip(cn, "-6", "route", "add", "2001:db8:aa::/64", "via", "2001:db8:f3::1")
        n.ip(ha, "link", "add", "home", "type", "bridge")
        n.ip(ha, "link", "set", "home", "up")
        n.ip(ha, "addr", "add", "2001:db8:aa::1/64", "dev", "home", "nodad")
        n.veth(ha, "hm0", hm, "eth0")
        n.ip(ha, "link", "set", "hm0", "master", "home")
        n.ip(hm, "addr", "add", "2001:db8:aa::50/64", "dev", "eth0", "nodad")
        n.ip(hm, "-6", "route", "add", "default", "via", "2001:db8:aa::1")
        n.ip(ha, "-6", "neigh", "add", "proxy", "2001:db8:aa::300", "dev", "home")       # left by a killed HA
        keys = tmp_path / "ha-keys.json"
        keys.write_text(json.dumps({"sas": [
            {"nai": NAI.decode(), "spi": SPI, "key": KEY.hex(), "hoa": "2001:db8:aa::100"},
            {"nai": NAI2.decode(), "spi": SPI2, "key": KEY2.hex(), "hoa": "2001:db8:aa::200"}]}))
        os.chmod(keys, 0o600)
        cfg = tmp_path / "ha.json"
        cfg.write_text(json.dumps({"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1",
                                   "ipv4": "198.18.1.2", "home_link": "home", "tun": "r6tun",
                                   "keys_file": "ha-keys.json", "transports": ["udp4", "udp6", "ip6"],
                                   "dad_ms": DAD_MS}))
        ha_proc = HAProcess(ha, str(cfg))
        ha_proc.wait_for("ready")
        yield n, ha_proc, (ha, mn, cn, hm)
    finally:
        if ha_proc is not None:
            ha_proc.stop()
        n.teardown()


def wall_ms():
    return time.time_ns() // 1_000_000


def send_bu(sock, dest, seq, lifetime=150, key=KEY, spi=SPI, nai=NAI, hoa=HOA, transport="udp4", coa=None, now=None):
    now = wall_ms() if now is None else now
    bu = build_bu(key, spi, nai, hoa, HA, seq, lifetime, transport, v4coa=V4COA, coa=coa,
                  timestamp=ntp_timestamp(now, seq))
    sock.sendto(bu, dest)
    data, src = sock.recvfrom(2048)
    return data, src, ntp_timestamp(now, seq)


def route_dev(n, ns, hoa_text):
    return n.ip(ns, "-6", "route", "show", hoa_text + "/128").stdout


def proxies(n, ns):
    return n.ip(ns, "-6", "neigh", "show", "proxy").stdout


def udp6_packet(src, dst, sport, dport, payload):
    return build_ipv6(src, dst, 17, build_udp(sport, dport, payload, src=src, dst=dst))


def test_ha_process_udp4_udp6_data_and_clean_stop(bench):
    n, hap, (ha, mn, cn, hm) = bench
    s4 = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
    s6 = n.socket(mn, socket.AF_INET6, socket.SOCK_DGRAM, bind=(MN6, 0))
    scn = n.socket(cn, socket.AF_INET6, socket.SOCK_DGRAM, bind=("2001:db8:f3::2", 7000))
    shm = n.socket(hm, socket.AF_INET6, socket.SOCK_DGRAM, bind=("2001:db8:aa::50", 7001))
    HA4 = ("198.18.1.2", 4191)
    HA6 = ("2001:db8:f1::2", 4191)
    assert "2001:db8:aa::300" not in proxies(n, ha)           # stale proxy entry cleared at start
    assert "parameter-problem" in sh("ip", "netns", "exec", ha, "nft", "list", "table", "ip6", "roam6_ha").stdout

    # -- udp4 registration (outer 198.18.1.10 != IPv4 CoA option: the HA sees a NAT) --
    data, src, ts = send_bu(s4, HA4, seq=1)
    assert src == HA4
    pkt, ba = parse_ba(data, mac_coa=V4MAPPED + V4COA)
    assert ba.status == 0 and ba.seq == 1 and pkt.dst == HOA
    assert ba.find(mo.ReplayProtection).timestamp == ts
    nd = ba.find(mo.NATDetection)
    assert nd.force and nd.refresh == 110
    ev = hap.wait_for("binding_added", hoa="2001:db8:aa::100")
    assert ev["transport"] == "udp4" and ev["peer"] == "%s:%d" % (MN4, s4.getsockname()[1]) and ev["nat"]
    assert "dev r6tun" in route_dev(n, ha, "2001:db8:aa::100")
    assert "2001:db8:aa::100 dev home" in proxies(n, ha)

    # -- downstream: CN -> HoA goes through the TUN and arrives at the MN over UDP from 4191 --
    scn.sendto(b"down-1", ("2001:db8:aa::100", 5000))
    data, src = s4.recvfrom(2048)
    assert src == HA4
    inner = decode_ipv6(data)
    assert inner.src == CN and inner.dst == HOA and inner.nh == 17
    assert bytes(decode_udp(inner.payload).payload) == b"down-1"

    # -- downstream from the home link: the HA answers NS for the HoA (proxy ND) --
    shm.sendto(b"from-home", ("2001:db8:aa::100", 5000))
    data, _ = s4.recvfrom(2048)
    inner = decode_ipv6(data)
    assert inner.src == HM and bytes(decode_udp(inner.payload).payload) == b"from-home"

    # -- upstream: MN -> CN, decapsulated into the TUN and routed by the kernel --
    s4.sendto(udp6_packet(HOA, CN, 5000, 7000, b"up-1"), HA4)
    payload, frm = scn.recvfrom(2048)
    assert payload == b"up-1" and frm[:2] == ("2001:db8:aa::100", 5000)

    # -- a Mobile Prefix Solicitation through the tunnel: a Mobile Prefix Advertisement with the
    # home prefix comes back the same way (ha/dhaad.py, PROTOCOL-NOTES.md §11.15) --
    from roam6.wire.checksum import checksum6
    mps = bytearray(b"\x92\x00\x00\x00\x00\x2a\x00\x00")
    mps[2:4] = checksum6(HOA, HA, 58, bytes(mps)).to_bytes(2, "big")
    s4.sendto(build_ipv6(HOA, HA, 58, bytes(mps)), HA4)
    data, _ = s4.recvfrom(2048)
    mpa = decode_ipv6(data)
    assert mpa.src == HA and mpa.dst == HOA and mpa.nh == 58
    assert mpa.payload[0] == 147 and mpa.payload[4:6] == b"\x00\x2a" and mpa.payload[8] == 3   # a PIO
    assert mpa.payload[10] == 64 and bytes(mpa.payload[24:32]) == HA[:8]

    # -- a spoofed inner source (HoA2 is not bound to this path) is not forwarded: Binding Error --
    s4.sendto(udp6_packet(HOA2, CN, 5000, 7000, b"spoof"), HA4)
    data, _ = s4.recvfrom(2048)
    be = decode_mh(decode_ipv6(data).payload)
    assert isinstance(be, BindingError) and be.status == 1 and be.home_address == HOA2
    scn.settimeout(0.3)
    with pytest.raises(socket.timeout):
        scn.recvfrom(2048)
    scn.settimeout(2)

    # -- udp6 registration of the second MN, sent to the HA's home address (not the uplink's):
    # BA and data come back from that same address (what a stateful firewall lets through) --
    HA6_HOME = ("2001:db8:aa::1", 4191)
    data, src, ts = send_bu(s6, HA6_HOME, seq=1, key=KEY2, spi=SPI2, nai=NAI2, hoa=HOA2, transport="udp6", coa=a6(MN6))
    _pkt, ba = parse_ba(data, key=KEY2, mac_coa=a6(MN6), hoa=HOA2)
    assert ba.status == 0 and src[:2] == HA6_HOME
    hap.wait_for("binding_added", hoa="2001:db8:aa::200")
    scn.sendto(b"down-v6", ("2001:db8:aa::200", 5000))
    data, src = s6.recvfrom(2048)
    assert src[:2] == HA6_HOME and bytes(decode_udp(decode_ipv6(data).payload).payload) == b"down-v6"

    # -- hostile datagrams on both sockets never take the HA down --
    rnd = random.Random(7)
    good = build_bu(KEY, SPI, NAI, HOA, HA, 50, 150, "udp4", v4coa=V4COA, timestamp=ntp_timestamp(wall_ms()))
    junk = [bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 200))) for _ in range(150)]
    junk += [good[:k] for k in range(0, len(good), 3)]
    junk += [bytes(b ^ (1 << rnd.randrange(8)) if i == j else b for i, b in enumerate(good)) for j in range(40,
                                                                                                            len(good))]
    for j in junk:
        s4.sendto(j, HA4)
        s6.sendto(j, HA6)
    time.sleep(0.5)
    assert hap.proc.poll() is None
    s4.settimeout(0.2)
    try:                                   # flipped-bit BUs may draw BAs/BEs: drain them
        while True:
            s4.recvfrom(2048)
    except socket.timeout:
        pass
    s4.settimeout(2)
    data, _src, _ts = send_bu(s4, HA4, seq=2)
    assert parse_ba(data, mac_coa=V4MAPPED + V4COA)[1].status == 0     # still serving

    # -- deregistration: binding, route and proxy entry go --
    data, _src, _ts = send_bu(s4, HA4, seq=3, lifetime=0)
    _pkt, ba = parse_ba(data, mac_coa=V4MAPPED + V4COA)
    assert ba.status == 0 and ba.lifetime == 0
    hap.wait_for("binding_removed", hoa="2001:db8:aa::100", reason="dereg")
    assert route_dev(n, ha, "2001:db8:aa::100").strip() == ""
    assert "2001:db8:aa::100" not in proxies(n, ha)

    # -- SIGTERM: clean exit, TUN gone, the other binding's route and proxy gone --
    hap.proc.send_signal(signal.SIGTERM)
    assert hap.proc.wait(10) == 0
    assert sh("ip", "-n", ha, "link", "show", "r6tun", check=False).returncode != 0
    assert sh("ip", "netns", "exec", ha, "nft", "list", "table", "ip6", "roam6_ha", check=False).returncode != 0
    assert route_dev(n, ha, "2001:db8:aa::200").strip() == ""
    assert "2001:db8:aa::200" not in proxies(n, ha)
    for s in (s4, s6, scn, shm):
        s.close()


def test_ha_refuses_bad_key_and_keeps_binding(bench):
    n, hap, (ha, mn, cn, hm) = bench
    s4 = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
    other = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
    HA4 = ("198.18.1.2", 4191)
    data, _src, _ts = send_bu(s4, HA4, seq=1)
    assert parse_ba(data, mac_coa=V4MAPPED + V4COA)[1].status == 0
    # wrong key from another port: 146 signed with the real key, binding unchanged
    data, _src, _ts = send_bu(other, HA4, seq=2, key=bytes(16))
    assert parse_ba(data, mac_coa=V4MAPPED + V4COA)[1].status == 146
    # replay of an old BU (captured bytes) from the other port: 144, binding unchanged
    old = build_bu(KEY, SPI, NAI, HOA, HA, 1, 150, "udp4", v4coa=V4COA, timestamp=ntp_timestamp(wall_ms() - 60_000, 1))
    other.sendto(old, HA4)
    data, _ = other.recvfrom(2048)
    assert parse_ba(data, mac_coa=V4MAPPED + V4COA)[1].status == 144
    scn = n.socket(cn, socket.AF_INET6, socket.SOCK_DGRAM, bind=("2001:db8:f3::2", 7000))
    scn.sendto(b"still-here", ("2001:db8:aa::100", 5000))
    data, _ = s4.recvfrom(2048)                     # downstream still goes to the first port
    assert bytes(decode_udp(decode_ipv6(data).payload).payload) == b"still-here"
    # unknown SPI: silently dropped, logged once
    other.sendto(build_bu(KEY, 777, NAI, HOA, HA, 3, 150, "udp4", v4coa=V4COA), HA4)
    other.settimeout(0.3)
    with pytest.raises(socket.timeout):
        other.recvfrom(2048)
    hap.wait_for("bu_dropped")
    # a flood of bad authenticators: each answered (146), logged once per source
    for seq in (4, 5, 6):
        data, _src, _ts = send_bu(other, HA4, seq=seq, key=bytes(16))
        assert parse_ba(data, mac_coa=V4MAPPED + V4COA)[1].status == 146
    hap.proc.send_signal(signal.SIGTERM)
    assert hap.proc.wait(10) == 0
    hap.out.wait_closed()                  # every line the HA wrote, not those read so far
    auth_lines = [ln for ln in hap.lines if '"bu_rejected"' in ln and '"auth"' in ln]
    assert len(auth_lines) == 1, auth_lines
    for s in (s4, other, scn):
        s.close()


def test_ha_ip6_native_hao_bu_rh2_ba_and_ip6ip6_data(bench):
    """RFC 6275 native: the BU carries a Home Address option (read by the HA from a packet socket,
    since this kernel drops it), the BA a type 2 routing header; data is IPv6-in-IPv6."""
    n, hap, (ha, mn, cn, hm) = bench
    ETH_P_IPV6 = 0x86DD
    raw = n.socket(mn, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    pk = n.socket(mn, socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))
    t41 = n.socket(mn, socket.AF_INET6, socket.SOCK_RAW, 41)
    scn = n.socket(cn, socket.AF_INET6, socket.SOCK_DGRAM, bind=("2001:db8:f3::2", 7000))
    coa = a6(MN6)
    now = wall_ms()
    bu = build_bu(KEY, SPI, NAI, HOA, HA, 1, 150, "ip6", coa=coa, timestamp=ntp_timestamp(now, 9))
    raw.sendto(bu, ("2001:db8:aa::1", 0))
    end = time.monotonic() + 5
    ba = None
    icmp_errors = []
    pk.settimeout(0.3)
    while time.monotonic() < end:
        try:
            data, addr = pk.recvfrom(4096)
        except socket.timeout:
            if ba is not None:
                break
            continue
        if len(data) > 40 and data[6] == 43 and data[24:40] == coa:
            pkt, ba = parse_ba(data, mac_coa=coa)
        elif len(data) > 40 and data[6] == 58 and data[40] == 4 and addr[2] == 0:
            icmp_errors.append(data)
    assert ba is not None, "no BA with a type 2 routing header"
    assert icmp_errors == [], "the HA's kernel answered the BU with ICMPv6 Parameter Problem"
    assert ba.status == 0 and pkt.src == HA and pkt.rh2 == HOA and ba.find(mo.NATDetection) is None
    ev = hap.wait_for("binding_added", hoa="2001:db8:aa::100")
    assert ev["transport"] == "ip6" and ev["peer"] == MN6 + ":0"
    assert "dev r6tun" in route_dev(n, ha, "2001:db8:aa::100")
    # downstream: IPv6-in-IPv6 from the HA address to the CoA
    scn.sendto(b"down-ip6", ("2001:db8:aa::100", 5000))
    inner, addr = t41.recvfrom(4096)
    assert addr[0] == "2001:db8:aa::1"
    p = decode_ipv6(inner)
    assert p.src == CN and p.dst == HOA and bytes(decode_udp(p.payload).payload) == b"down-ip6"
    # upstream: IPv6-in-IPv6 from the CoA, decapsulated into the TUN
    t41.sendto(udp6_packet(HOA, CN, 5000, 7000, b"up-ip6"), ("2001:db8:aa::1", 0))
    payload, frm = scn.recvfrom(2048)
    assert payload == b"up-ip6" and frm[0] == "2001:db8:aa::100"
    # back home: the MN (now on the home link, host hm) deregisters natively, without a HAO;
    # the BA comes straight to the HoA (no RH2), exactly once
    n.ip(hm, "addr", "add", "2001:db8:aa::100/64", "dev", "eth0", "nodad")
    hraw = n.socket(hm, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    hpk = n.socket(hm, socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6), timeout=0.5)
    home = build_bu(KEY, SPI, NAI, HOA, HA, 2, 0, "ip6", at_home=True, timestamp=ntp_timestamp(wall_ms(), 10))
    hraw.sendto(home, ("2001:db8:aa::1", 0))
    bas = []
    end = time.monotonic() + 4
    while time.monotonic() < end:
        try:
            data, addr = hpk.recvfrom(4096)
        except socket.timeout:
            if bas:
                break
            continue
        if addr[2] == 0 and len(data) > 40 and data[6] == 135 and data[24:40] == HOA:
            bas.append(parse_ba(data, mac_coa=HOA))
    assert len(bas) == 1, [b[1].status for b in bas]
    pkt, ba = bas[0]
    assert ba.status == 0 and ba.lifetime == 0 and pkt.rh2 is None
    hap.wait_for("binding_removed", hoa="2001:db8:aa::100", reason="dereg")
    assert route_dev(n, ha, "2001:db8:aa::100").strip() == ""
    for s in (raw, pk, t41, scn, hraw, hpk):
        s.close()


def test_ha_expires_binding_and_removes_route(bench):
    n, hap, (ha, mn, cn, hm) = bench
    s4 = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
    data, _src, _ts = send_bu(s4, ("198.18.1.2", 4191), seq=1, lifetime=1)     # 4 s
    assert parse_ba(data, mac_coa=V4MAPPED + V4COA)[1].lifetime == 1
    hap.wait_for("binding_added", hoa="2001:db8:aa::100")
    assert "dev r6tun" in route_dev(n, ha, "2001:db8:aa::100")
    t0 = time.monotonic()
    hap.wait_for("binding_removed", timeout=8, hoa="2001:db8:aa::100", reason="expired")
    assert time.monotonic() - t0 > 3.0                # not before its 4 s lifetime is over
    assert route_dev(n, ha, "2001:db8:aa::100").strip() == ""
    assert "2001:db8:aa::100" not in proxies(n, ha)
    # SIGINT stops it as cleanly as SIGTERM, with a binding in place
    send_bu(s4, ("198.18.1.2", 4191), seq=2)
    hap.wait_for("binding_added", hoa="2001:db8:aa::100")
    hap.proc.send_signal(signal.SIGINT)
    assert hap.proc.wait(10) == 0
    hap.wait_for("binding_removed", hoa="2001:db8:aa::100", reason="shutdown")
    assert route_dev(n, ha, "2001:db8:aa::100").strip() == "" and "2001:db8:aa::100" not in proxies(n, ha)
    assert sh("ip", "-n", ha, "link", "show", "r6tun", check=False).returncode != 0
    s4.close()


def test_sighup_reloads_keys_and_revokes(bench, tmp_path):
    n, hap, (ha, mn, cn, hm) = bench
    s4 = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
    HA4 = ("198.18.1.2", 4191)
    data, _src, _ts = send_bu(s4, HA4, seq=1)
    assert parse_ba(data, mac_coa=V4MAPPED + V4COA)[1].status == 0
    hap.wait_for("binding_added", hoa="2001:db8:aa::100")
    keys = tmp_path / "ha-keys.json"
    sas = json.loads(keys.read_text())["sas"]
    keys.write_text(json.dumps({"sas": [sa for sa in sas if sa["spi"] != SPI]}))   # revoke board1
    hap.proc.send_signal(signal.SIGHUP)
    hap.wait_for("binding_removed", hoa="2001:db8:aa::100", reason="revoked")
    hap.wait_for("keys_reloaded", sas=1)
    assert route_dev(n, ha, "2001:db8:aa::100").strip() == ""
    s4.sendto(build_bu(KEY, SPI, NAI, HOA, HA, 2, 150, "udp4", v4coa=V4COA), HA4)
    s4.settimeout(0.3)
    with pytest.raises(socket.timeout):          # unknown SPI now: dropped
        s4.recvfrom(2048)
    os.chmod(keys, 0o644)                         # a broken reload keeps the SAs in use
    hap.proc.send_signal(signal.SIGHUP)
    err = hap.wait_for("error")
    assert "readable by group or others" in err["reason"]
    assert hap.proc.poll() is None
    s4.close()


def test_packet_socket_filter_passes_only_mh_for_the_ha():
    """The BPF program in the kernel: BUs (HAO or plain MH) to the HA's address pass; MH to
    another address and other protocols to the HA's address never wake the HA."""
    from roam6_host.ha.driver import packet_socket_for_bus
    n = TestNamespaces()
    try:
        a, b = n.add("a"), n.add("b")
        n.veth(a, "eth0", b, "eth0")
        n.ip(a, "addr", "add", "2001:db8:aa::1/64", "dev", "eth0", "nodad")
        n.ip(a, "addr", "add", "2001:db8:aa::9/64", "dev", "eth0", "nodad")
        n.ip(b, "addr", "add", "2001:db8:aa::2/64", "dev", "eth0", "nodad")
        with n.inside(a):
            pk = packet_socket_for_bus(HA)
        pk.settimeout(0.5)
        raw = n.socket(b, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        src = a6("2001:db8:aa::2")
        other = a6("2001:db8:aa::9")
        hao_bu = build_bu(KEY, SPI, NAI, HOA, HA, 1, 150, "ip6", coa=src)
        plain_mh = build_ipv6(src, HA, 135, bytes(8))
        mh_elsewhere = build_ipv6(src, other, 135, bytes(8))
        udp_to_ha = udp6_packet(src, HA, 1, 2, b"x")
        for pkt, dst in ((mh_elsewhere, "2001:db8:aa::9"), (udp_to_ha, "2001:db8:aa::1"),
                         (hao_bu, "2001:db8:aa::1"), (plain_mh, "2001:db8:aa::1")):
            raw.sendto(pkt, (dst, 0))
        got = []
        try:
            while True:
                data, addr = pk.recvfrom(4096)
                got.append(bytes(data))
        except socket.timeout:
            pass
        assert got == [hao_bu, plain_mh]
        pk.close()
        raw.close()
    finally:
        n.teardown()


def _empty_ha_config(tmp_path, **fields):
    """tmp_path/ha.json for the home prefix 2001:db8:aa::/64 (HA ::1) with an empty keys file beside
    it, plus `fields`; returns its path."""
    keys = tmp_path / "k.json"
    keys.write_text(json.dumps({"sas": []}))
    os.chmod(keys, 0o600)
    cfg = tmp_path / "ha.json"
    cfg.write_text(json.dumps(dict({"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1",
                                    "keys_file": "k.json"}, **fields)))
    return cfg


def test_ha_starts_before_its_ipv6_address_is_usable(tmp_path):
    """ip6 needs the HA address for its tunnel socket; an address still in DAD (or not there
    yet) is a warning, not a failed start."""
    n = TestNamespaces()
    hap = None
    try:
        ha = n.add("ha")
        cfg = _empty_ha_config(tmp_path, transports=["udp6", "ip6"])
        hap = HAProcess(ha, str(cfg))
        assert "not configured here" in hap.wait_for("warning")["reason"]
        assert sorted(hap.wait_for("ready")["transports"]) == ["ip6", "udp6"]
        hap.stop()
        assert hap.proc.returncode == 0
    finally:
        if hap is not None:
            hap.stop()
        n.teardown()


def test_missing_home_link_names_the_config_file(tmp_path):
    """A 'home_link' that is not an interface here stops the HA: exit 2, the ha.json named."""
    n = TestNamespaces()
    try:
        ha = n.add("ha")
        cfg = _empty_ha_config(tmp_path, transports=["udp6"], home_link="nohome0")
        p = subprocess.run(["ip", "netns", "exec", ha, sys.executable, "-m", "roam6_host", "ha", "--config", str(cfg)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert p.stderr.splitlines()[0] == ("roam6: error: HA config %s: field 'home_link' names 'nohome0', "
                                            "which is not an interface here" % cfg), p.stderr
    finally:
        n.teardown()


def test_dad_on_the_home_link_refuses_a_hoa_another_node_holds(bench):
    """RFC 6275 §10.4.1: before a new binding's BA the HA probes the home link for the HoA (NS from
    ::); the neighbour hm holding 2001:db8:aa::100 answers, so the BU gets BA 134 and nothing is
    bound. Once hm lets the address go, the same MN registers after the DAD wait."""
    n, hap, (ha, mn, cn, hm) = bench
    n.ip(hm, "addr", "add", "2001:db8:aa::100/64", "dev", "eth0", "nodad")
    s4 = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
    data, _src, _ts = send_bu(s4, ("198.18.1.2", 4191), 1)
    _pkt, ba = parse_ba(data, mac_coa=V4MAPPED + V4COA)
    assert ba.status == 134, "".join(hap.lines[-10:])
    hap.wait_for("dad_started", reason="2001:db8:aa::100")
    hap.wait_for("bu_rejected", status=134, reason="dad")
    assert route_dev(n, ha, "2001:db8:aa::100") == "" and "2001:db8:aa::100" not in proxies(n, ha)
    n.ip(hm, "addr", "del", "2001:db8:aa::100/64", "dev", "eth0")
    t0 = time.monotonic()
    data, _src, _ts = send_bu(s4, ("198.18.1.2", 4191), 2)
    waited = time.monotonic() - t0
    _pkt, ba = parse_ba(data, mac_coa=V4MAPPED + V4COA)
    assert ba.status == 0 and DAD_MS / 1000 <= waited < DAD_MS / 1000 + 1.0, waited
    assert "r6tun" in route_dev(n, ha, "2001:db8:aa::100")
    # bound now: a refresh is answered without another probe
    t0 = time.monotonic()
    data, _src, _ts = send_bu(s4, ("198.18.1.2", 4191), 3)
    assert parse_ba(data, mac_coa=V4MAPPED + V4COA)[1].status == 0 and time.monotonic() - t0 < DAD_MS / 1000
