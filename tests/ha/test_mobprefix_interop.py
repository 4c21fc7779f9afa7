"""The MN's Mobile Prefix Solicitation (firmware node/mobprefix.py) answered by the HA's own code
(ha/dhaad.py mpa_packet): the HA takes the MN's MPS, and the MN takes the HA's MPA (same prefix:
nothing changes; a renumbered HA: the new home address is tried with a BU)."""
import ipaddress
import os
import tempfile

from roam6.node.driver import MobileNode  # noqa: I001 (first: it binds the event report before mobprefix wraps it)
from roam6.node import eventlog, mobprefix
from roam6.node.config import parse_config
from roam6.wire.addr import ip6_from_text
from roam6.wire.checksum import checksum6

from roam6_host.ha.dhaad import mpa_packet


class _HACfg:
    def __init__(self, prefix, address):
        self.home_prefix = ipaddress.IPv6Network(prefix)
        self.address = ip6_from_text(address)


def _node(tmp):
    raw = {"nai": "b@example.test", "spi": 4096, "key": "00" * 16, "hoa": "2001:db8:aa::100",
           "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1", "ha_ipv4": "198.18.1.2",
           "transports": ["udp4"], "state_file": os.path.join(tmp, "mn.state"), "timestamps": False,
           "prefix_solicit_s": 60}
    node = MobileNode(parse_config(raw), lambda ev, **f: None)
    sent = []
    node.send_packet = lambda pkt: sent.append(bytes(pkt)) or True
    node.uplink.open = lambda name, coa: object()       # test double: no socket to 192.0.2.50
    node.reg.move(bytes([192, 0, 2, 50]), "udp4", node.now())
    node.flush()
    return node, sent


def test_the_has_mpa_answers_the_mns_mps():
    try:
        with tempfile.TemporaryDirectory() as tmp:
            node, sent = _node(tmp)
            mobprefix.mps(node, node.now())
            same = mpa_packet(sent[-1], _HACfg("2001:db8:aa::/64", "2001:db8:aa::1"))
            n0 = mobprefix.IGNORED[0]
            assert same is not None and mobprefix.mpa_in(node, same, node.now()) is None
            assert mobprefix.IGNORED[0] == n0 and mobprefix._ident[0] == 0 and node.cfg.hoa == node.host.hoa
            mobprefix.mps(node, node.now() + 1)
            # a renumbered HA (its address, in the PIO with R, names the new prefix); its MPA as the
            # MN's tunnel from its current HA delivers it: the source re-written, the checksum redone
            pkt = bytearray(mpa_packet(sent[-1], _HACfg("2001:db8:bb::/64", "2001:db8:bb::1")))
            pkt[8:24] = node.cfg.ha
            pkt[42:44] = b"\0\0"
            pkt[42:44] = checksum6(bytes(pkt[8:24]), bytes(pkt[24:40]), 58, bytes(pkt[40:])).to_bytes(2, "big")
            assert mobprefix.mpa_in(node, bytes(pkt), node.now()) == ip6_from_text("2001:db8:bb::100")
            assert node.reg.hoa == ip6_from_text("2001:db8:bb::100")       # its BU is out; adoption waits for the BA
    finally:
        mobprefix._last[0] = mobprefix._trial[0] = None
        mobprefix._ident[0] = 0
        eventlog.report = mobprefix._report
