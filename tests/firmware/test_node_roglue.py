"""Route optimisation glue on the node (roam6.node.roglue) without sockets: a BU to a CN gets no
more lifetime than the node's home registration has left (RFC 6275 §11.7.2) and waits while the
home registration is not bound."""
from roam6.node.config import parse_config
from roam6.node.driver import MobileNode
from roam6_codec import consts as C
from roam6_codec import mh as M
from roam6.wire.addr import ip6_from_text
from roam6.wire.ipv6 import build_ipv6, decode_ipv6
from rr_peer import Peer
from support import fresh_state_file

HOA = ip6_from_text("2001:db8:aa::100")
COA = ip6_from_text("2001:db8:2::200")
CN = ip6_from_text("2001:db8:3::300")


class FakeTransport:
    name = "ip6"

    def __init__(self):
        self.out = []

    def send(self, pkt):  # through the tunnel
        self.out.append(("home", bytes(pkt)))
        return True

    def send_raw(self, pkt):  # straight on the access network
        self.out.append(("direct", bytes(pkt)))
        return True

    def take(self):
        out, self.out = self.out, []
        return out


def make():
    path = fresh_state_file("r6roglue")
    cfg = parse_config({"nai": "b@example.test", "spi": 4096, "key": "000102030405060708090a0b0c0d0e0f",
                        "hoa": "2001:db8:aa::100", "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1",
                        "transports": ["ip6"], "state_file": path, "lifetime": 200,
                        "ro": {"default": "always"}})
    lines = []
    node = MobileNode(cfg, lambda ev, **f: lines.append((ev, f)))
    node.uplink.active = FakeTransport()
    return node, lines


def register_home(node, now):
    """The home registration: BU for COA and the HA's BA granting 200 s (straight to the rules:
    test_registration checks the BA's authentication)."""
    node.reg.move(COA, "ip6", now)
    assert len(node.reg.datagrams_to_send(now)) == 1     # the BU (no HA here to take it)
    reg = node.reg
    seq, _at, ts = reg.sent[-1]
    assert reg.receive_ba(0, seq, 50, None, ts, None, now)
    assert node.reg.bound and node.reg.expiry() == now + 200000


def answer(node, peer, now):
    """Give the node the CN's answers to what it sent (HoT through the tunnel, the rest on the link)."""
    for src, dst, mh, rh2 in peer.feed(node.uplink.active.take()):
        pkt = build_ipv6(src, dst, C.NH_MH, mh, rh2=rh2)
        if dst == HOA:
            assert node.ro.inbound(pkt, now) is None
        else:
            assert node.ro.link_in(pkt, now) is None
        node.flush()


def test_ro_bu_waits_for_the_home_registration_then_gets_what_it_has_left():
    node, _lines = make()
    peer = Peer(cn=CN)
    node.ro.move(COA, "ip6", 0)
    node.ro.ro.note_traffic(CN, 0)
    node.flush()
    answer(node, peer, 0)  # HoT and CoT: both tokens
    assert node.uplink.active.out == [] and peer.kinds() == ["HomeTestInit", "CareofTestInit"]
    register_home(node, 50)
    node.ro.home_changed(60)  # what the driver does after a BA from the HA, then it flushes
    node.flush()
    out = node.uplink.active.take()
    assert [v for v, _ in out] == ["direct"]
    bu = M.decode_mh(bytes(decode_ipv6(out[0][1]).payload))
    assert type(bu) is M.BindingUpdate and bu.lifetime == (200050 - 60) // 4000  # 49, not 105


def test_ro_bu_lifetime_follows_the_home_binding():
    node, _lines = make()
    ro = node.ro.ro
    assert ro.bu_lifetime(0) == 0  # not registered: no BU to a CN
    register_home(node, 1000)
    assert ro.bu_lifetime(1000) == 50
    assert ro.bu_lifetime(1000 + 200000 - 3999) == 0  # under one 4 s unit left
    assert ro.bu_lifetime(1000 + 200000 - 8000) == 2
    node.reg.detach(2000)
    assert ro.bu_lifetime(2000) == 0
