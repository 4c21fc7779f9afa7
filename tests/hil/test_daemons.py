"""The real daemons on the bench: Kea's RFC 6610 reply, dnsmasq's RFC 5026 records, SLAAC from
radvd and DHCPv4 from dnsmasq through busybox udhcpc, and nftables random loss."""
import ipaddress
import os
import struct
import sys

import pytest

from roam6_hil.daemons import set_loss, start_daemons
from roam6_hil.roaming import Roamer
from roam6_hil.topology import Bench

HERE = os.path.dirname(os.path.abspath(__file__))


def client(bench, short, *args):
    r = bench.run(short, [sys.executable, os.path.join(HERE, "nsclient.py")] + [str(a) for a in args], timeout=8)
    return bytes.fromhex(r.stdout.strip())


def tlvs(buf):
    out, off = [], 0
    while off + 4 <= len(buf):
        code, ln = struct.unpack_from(">HH", buf, off)
        out.append((code, buf[off + 4:off + 4 + ln]))
        off += 4 + ln
    assert off == len(buf), "trailing bytes in DHCPv6 options"
    return out


def fqdn(wire):
    labels, off = [], 0
    while wire[off]:
        labels.append(wire[off + 1:off + 1 + wire[off]].decode())
        off += 1 + wire[off]
    return ".".join(labels)


@pytest.fixture
def bench(prefix):
    with Bench(prefix=prefix) as b:
        start_daemons(b)
        yield b


def test_kea_answers_rfc6610_home_network_information(bench):
    bench.attach("apA", addressing="static")
    reply = client(bench, "board", "dhcpv6", "wlan0")
    assert reply[0] == 7                      # Reply
    opts = dict(tlvs(reply[4:]))
    for container in (70, 69):                # UDINF and IDINF
        sub = dict(tlvs(opts[container]))
        assert sub[71] == bytes([64]) + ipaddress.ip_address("2001:db8:aa::").packed
        assert sub[72] == ipaddress.ip_address("2001:db8:aa::1").packed
        assert fqdn(sub[73]) == "ha.example.test"
    assert fqdn(dict(tlvs(opts[69]))[49]) == "example.test"
    assert opts[23] == ipaddress.ip_address("2001:db8:a1::1").packed


@pytest.mark.parametrize("net,server", [("apB", "192.0.2.1"), ("apA", "2001:db8:a1::1"), ("apC", "2001:db8:c1::1"),
                                        ("apC", "198.51.100.1")])
def test_dns_answers_rfc5026_srv_with_addresses(bench, net, server):
    bench.attach(net, addressing="static")
    resp = client(bench, "board", "dns", server, "_mip6._ipv6.example.test", 33)
    qd, an, ns, ar = struct.unpack_from(">4H", resp, 4)
    assert resp[3] & 0x0F == 0 and an == 1 and ar >= 2
    target = b"\x02ha\x07example\x04test\x00"
    assert target in resp
    assert ipaddress.ip_address("198.18.1.2").packed in resp and ipaddress.ip_address("2001:db8:aa::1").packed in resp
    resp = client(bench, "board", "dns", server, "ha.example.test", 28)
    assert struct.unpack_from(">H", resp, 6)[0] == 1 and resp.endswith(ipaddress.ip_address("2001:db8:aa::1").packed)


def test_auto_addressing_slaac_and_dhcpv4(bench):
    r = Roamer(bench, addressing="auto").start()
    try:
        st = r.roam("apB")
        assert st["t_addr"] is not None and ipaddress.ip_address(st["addr"]) in ipaddress.ip_network("192.0.2.0/24")
        assert 100 <= int(st["addr"].rsplit(".", 1)[1]) <= 199
        assert "default via 192.0.2.1" in bench.run("board", ["ip", "-4", "route"]).stdout
        st = r.roam("apA")
        assert ipaddress.ip_address(st["addr"]) in ipaddress.ip_network("2001:db8:a1::/64")
        routes = bench.run("board", ["ip", "-6", "route"]).stdout
        assert "default via fe80::ff:fe00:a101" in routes
        # the old network's IPv4 address went with the old association
        assert "192.0.2." not in bench.run("board", ["ip", "-4", "addr"]).stdout
    finally:
        r.stop()


def test_home_link_router_advertisement_has_home_agent_flag(bench):
    """radvd on the home link advertises the H flag (RA byte 5, 0x20)."""
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_INET6,socket.SOCK_RAW,58); s.settimeout(2)\n"
            "while True:\n"
            "  d,a=s.recvfrom(2000)\n"
            "  if d[0]==134: print(d.hex()); break\n")
    bench.attach("home", addressing="static")
    ra = bytes.fromhex(bench.run("board", [sys.executable, "-c", code], timeout=5).stdout.strip())
    assert ra[5] & 0x20


def test_random_loss_drops_about_the_asked_share(bench):
    bench.attach("apC", addressing="static")
    code = ("import socket\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(0.3); n=0\n"
            "for i in range(200):\n"
            "  s.sendto(b'x',('198.18.3.2',7777))\n"
            "print('sent')\n")
    recv = ("import socket\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('0.0.0.0',7777)); s.settimeout(1); n=0\n"
            "print('ready',flush=True)\n"
            "try:\n"
            "  while True: s.recv(10); n+=1\n"
            "except OSError: print(n)\n")
    import subprocess
    for loss, lo, hi in ((0, 200, 200), (50, 60, 140)):
        set_loss(bench, loss)
        p = bench.popen("cn", [sys.executable, "-c", recv], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        bench.run("board", [sys.executable, "-c", code])
        got = int(p.stdout.readline())
        assert lo <= got <= hi, (loss, got)
