"""The RFC 5555 TLV header on udp4 (roam6_codec/udptlv.py, ha/tlvpath.py, firmware node/tlvhdr.py;
docs/PROTOCOL-NOTES.md §4.2): the real MN registration with the MN's TLV module against the real
binding cache, virtual clock; the T flags checked by scapy as an independent oracle; the MN's and
the codec's frames byte for byte; the MN's udp4 transport framing on a real loopback socket."""
import ipaddress
import socket

import pytest

import roam6.core.registration as registration
from roam6.core.registration import Registration
from roam6.core.v4ack import enable
from roam6.node import tlvhdr, transport
from roam6.node.config import ConfigError, parse_config
from roam6.wire.errors import DecodeError
from roam6_codec import udptlv
from roam6_host.ha import ipv4home
from roam6_host.ha.cache import BindingCache
from roam6_host.ha.sa import SA

from ha_helpers import HA, HOA, KEY, NAI, PREFIX, SPI, T0, a4, parse_ba

COA4 = a4("192.0.2.100")
COA6 = socket.inet_pton(socket.AF_INET6, "2001:db8:a1::100")


class Node:
    """What tlvhdr.attach uses of a driver.MobileNode: reg, rx, packet_in, log."""

    def __init__(self, reg):
        self.reg = reg
        self.rx = bytearray(1500)
        self.got = []
        self.logs = []
        self.packet_in = lambda n: self.got.append(bytes(self.rx[:n]))

    def log(self, ev, **kw):
        self.logs.append(dict(kw, ev=ev))


@pytest.fixture
def tlv_node():
    """A Registration with an IPv4 HoA and the TLV module attached; the module's class and
    module patches are undone afterwards (they are process-wide, as on a board)."""
    saved = (registration.encode_bu, transport.UdpTransport.send, transport.UdpTransport.send_mh, transport.readinto)
    r = Registration(NAI, SPI, KEY, HOA, HA, 600, True, 1, T0 + 2208988800 * 1000)
    enable(r, bytes(4))
    node = Node(r)
    tlvhdr.attach(node)
    try:
        yield node
    finally:
        (registration.encode_bu, transport.UdpTransport.send, transport.UdpTransport.send_mh,
         transport.readinto) = saved


def cache(v4=True, tmp_path=None):
    c = BindingCache(HA, PREFIX, {SPI: SA(NAI, SPI, KEY, HOA)}, dad_ms=0)
    if v4:
        c.v4homes = ipv4home.IPv4Homes(ipaddress.IPv4Network("198.18.50.0/24"),
                                       [ipaddress.IPv4Address("198.18.50.100")], None,
                                       str(tmp_path / "leases.json"))
    return c


def register(c, r, coa, tr, now, src):
    r.move(coa, tr, now)
    (pkt, _), = r.datagrams_to_send(now)
    c.receive(bytes(pkt), src, T0 + now, wall=T0 + now)
    (ba_pkt, _), = c.datagrams_to_send(T0 + now)
    r.receive(ba_pkt, now + 1)
    while r.next_event() is not None:
        pass
    return bytes(pkt), ba_pkt


def test_t_negotiated_on_udp4_only_and_scapy_reads_both_flags(tlv_node, tmp_path):
    from scapy.layers.inet6 import IPv6
    node, r = tlv_node, tlv_node.reg
    c = cache(tmp_path=tmp_path)
    bu, ba = register(c, r, COA4, "udp4", 0, ("udp4", "198.18.12.2", 40001))
    s_bu, s_ba = IPv6(bu), IPv6(ba)
    assert s_bu.reserved & 0x80 and s_bu.reserved & 0x100                  # T (and F) in the BU
    assert s_ba.res2 & 0x10 and s_ba.status == 0                          # T in the BA (scapy: res2)
    assert parse_ba(ba)[1].flags == 0x10
    b = c.bindings[HOA]
    assert b.tlv and b.as_dict()["tlv"] is True
    assert node.logs == [{"ev": "tlv", "on": True}]
    # a move turns it off until the next BA; over udp6 the BU has no T and the HA grants none
    bu6, ba6 = register(c, r, COA6, "udp6", 2000, ("udp6", "2001:db8:a1::100", 40002))
    assert not IPv6(bu6).reserved & 0x80 and not IPv6(ba6).res2 & 0x10
    assert not c.bindings[HOA].tlv and "tlv" not in c.bindings[HOA].as_dict()
    # back on udp4: on again (logged once: only a change of the HA's answer is)
    register(c, r, COA4, "udp4", 4000, ("udp4", "198.18.12.2", 40001))
    assert c.bindings[HOA].tlv and node.logs == [{"ev": "tlv", "on": True}]


def test_an_ha_without_ipv4_home_addresses_grants_no_t(tlv_node):
    from scapy.layers.inet6 import IPv6
    c = cache(v4=False)
    bu, ba = register(c, tlv_node.reg, COA4, "udp4", 0, ("udp4", "198.18.12.2", 40001))
    assert IPv6(bu).reserved & 0x80 and not IPv6(ba).res2 & 0x10
    assert not c.bindings[HOA].tlv and tlv_node.logs == [{"ev": "tlv", "on": False}]   # said once


def test_mn_frames_and_codec_agree_byte_for_byte_and_bad_frames_are_refused():
    for pkt in (bytes([0x45]) + bytes(27), bytes([0x60]) + bytes(39) + b"x" * 300):
        buf = bytearray(4) + bytearray(pkt)
        n = tlvhdr.frame(buf, len(pkt))
        assert bytes(buf[:n]) == udptlv.encode(pkt)
        assert udptlv.decode(udptlv.encode(pkt)) == (1, pkt) and udptlv.ip_packet(bytes(buf)) == pkt
        assert udptlv.is_tlv(buf) and not udptlv.is_tlv(pkt)
        back = bytearray(buf)
        assert tlvhdr.unframe(back, n) == len(pkt) and bytes(back[:len(pkt)]) == pkt
    good = udptlv.encode(bytes([0x45]) + bytes(27))
    for bad in (good[:3], b"\x02" + good[1:], good + b"!", good[:-1], b"\x01\x00\x04\x00zzzz"):
        assert tlvhdr.unframe(bytearray(bad), len(bad)) == 0
        assert udptlv.ip_packet(bad) is None
    with pytest.raises(DecodeError):
        udptlv.decode(good[:-1])
    with pytest.raises(ValueError):
        udptlv.encode(bytes(70000))


def test_config_needs_a_bool_and_an_ipv4_hoa():
    base = {"nai": "a@b", "spi": 4096, "key": "00" * 16, "hoa": "2001:db8:aa::100",
            "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1", "ha_ipv4": "192.0.2.1"}
    parse_config(dict(base, ipv4_hoa="0.0.0.0", ipv4_tlv_header=True))
    for extra, why in (({"ipv4_tlv_header": True}, "needs \"ipv4_hoa\""),
                       ({"ipv4_hoa": "0.0.0.0", "ipv4_tlv_header": "yes"}, "true or false")):
        with pytest.raises(ConfigError) as e:
            parse_config(dict(base, **extra))
        assert e.value.field == "ipv4_tlv_header" and why in str(e.value)


def test_udp4_transport_frames_once_on_and_packet_in_takes_both_framings(tlv_node, tmp_path):
    node = tlv_node
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    t = transport.UdpTransport("udp4", "127.0.0.1", rx.getsockname()[1])
    t.open("127.0.0.1")
    try:
        pkt = bytes([0x45]) + bytes(27)
        assert t.send(pkt)
        assert rx.recv(100) == pkt                        # not negotiated yet: bare
        register(cache(tmp_path=tmp_path), node.reg, COA4, "udp4", 0, ("udp4", "198.18.12.2", 40001))
        assert t.send(pkt) and t.send_mh(pkt)
        assert rx.recv(100) == udptlv.encode(pkt) and rx.recv(100) == udptlv.encode(pkt)
    finally:
        t.close()
        rx.close()
    six = bytes([0x60]) + bytes(39)
    for d in (udptlv.encode(six), six, b"\x01\x00\x09\x00" + six):    # TLV, bare, a bad Length (dropped)
        node.rx[:len(d)] = d
        node.packet_in(len(d))
    assert node.got == [six, six]


def test_ha_unframes_type_1_and_logs_a_malformed_frame_once():
    import io
    import json
    from types import SimpleNamespace

    from roam6_host.ha.driver import Logger
    from roam6_host.ha.tlvpath import frame, tlv_in
    out = io.StringIO()
    ha = SimpleNamespace(log=Logger(out))        # the HA's real logger; tlv_in uses nothing else of it
    pkt = bytes([0x45]) + bytes(27)
    assert tlv_in(ha, frame(pkt), ("192.0.2.1", 4000)) == pkt and out.getvalue() == ""
    for bad in (b"\x01\x00\x05\x00" + pkt, b"\x01\x00\x1c\x00" + b"\x00" * 28):
        assert tlv_in(ha, bad, ("192.0.2.1", 4000)) is None
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(lines) == 1 and lines[0]["ev"] == "dropped" and "TLV header malformed" in lines[0]["reason"]
