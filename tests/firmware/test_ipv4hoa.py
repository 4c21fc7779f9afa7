"""The IPv4 home address (RFC 5555 §3.1.1, §3.2.1): the MN's BU option, the BA's acknowledgement
for every status (roam6.core.registration), and the host's IPv4 side (roam6.node.host4), checked
with the host codec."""
from roam6.core.registration import Registration, mac_coa
from roam6.core.v4ack import enable
from roam6.crypto import mnha_auth_data
from roam6.node.host import Host
from roam6.node.host4 import REASONS, Host4
from roam6.wire.addr import ip6_from_text
from roam6.wire.checksum import checksum6, finish, inet_sum
from roam6.wire.ipv6 import build_ipv6, decode_ipv6
from roam6_codec import mhopts as mo
from roam6_codec.ipv4 import build_ipv4, decode_ipv4
from roam6_codec.mh import BindingAck, decode_mh
from roam6_codec.udp import build_udp, decode_udp, udp_checksum_ok
from support import BUL as S
from support import raises

KEY = bytes(range(16))
HOA = ip6_from_text("2001:db8:aa::100")
HA = ip6_from_text("2001:db8:aa::1")
V4COA = bytes([192, 0, 2, 100])
V4HOA = bytes([198, 18, 50, 100])
CN4 = bytes([198, 18, 3, 2])
NAI = b"board1@example.test"


def make(v4hoa=bytes(4)):
    r = Registration(NAI, 4096, KEY, HOA, HA, seq=7, ntp_offset_ms=3900000000000)
    enable(r, v4hoa)
    return r


def bu_of(r, now=0):
    (pkt, _ha), = r.datagrams_to_send(now)
    p = decode_ipv6(pkt)
    assert checksum6(p.src, HA, 135, p.payload) == 0
    return decode_mh(p.payload)


def ba(r, bu, coa, ack=None, status=0):
    opts = [mo.MNIdentifier(1, NAI), mo.ReplayProtection(bu.find(mo.ReplayProtection).timestamp)]
    if ack is not None:
        opts.append(mo.IPv4AddressAck(ack[0], 32, ack[1]))
    opts.append(mo.MobilityAuth(1, 4096, None))
    mc = mac_coa(coa)
    mh = BindingAck(status, 0, bu.seq, 150, opts).encode(src=HA, dst=HOA,
                                                          mac=lambda p: mnha_auth_data(KEY, mc, HOA, p))
    return build_ipv6(HA, HOA, 135, mh)


def events(r):
    out = []
    while True:
        e = r.next_event()
        if e is None:
            return out
        out.append(e)


def test_bu_carries_both_home_addresses_and_the_mac_covers_them():
    r = make()
    r.move(V4COA, "udp4", 0)
    bu = bu_of(r)
    kinds = [type(o).__name__ for o in bu.options if not isinstance(o, (mo.Pad1, mo.PadN))]
    assert kinds == ["MNIdentifier", "IPv4HomeAddress", "IPv4CareofAddress", "ReplayProtection",
                     "MobilityAuth"], kinds
    h = bu.find(mo.IPv4HomeAddress)
    assert h.address == bytes(4) and h.prefix_len == 32 and h.p == 0     # 0.0.0.0: assign me one
    raw = bytearray(bu.raw)
    raw[4] = raw[5] = 0
    assert raw[-12:] == mnha_auth_data(KEY, mac_coa(V4COA), HOA, bytes(raw[:-12]))


def test_success_binds_the_assigned_address_and_it_moves_with_the_next_bu():
    r = make()
    r.move(V4COA, "udp4", 0)
    bu = bu_of(r)
    assert r.receive(ba(r, bu, V4COA, (0, V4HOA)), 5) == "ba"
    evs = events(r)
    assert ("ipv4", 0, V4HOA) in evs and [e[0] for e in evs][-1] == "ipv4"
    assert r.state == S.BOUND and r.v4hoa == V4HOA
    v6coa = ip6_from_text("2001:db8:a1::55")
    r.move(v6coa, "udp6", 10)                   # a roam: one BU, both home addresses
    bu2 = bu_of(r, 10)
    assert bu2.find(mo.IPv4HomeAddress).address == V4HOA and bu2.find(mo.IPv4CareofAddress) is None


def test_every_refusal_keeps_ipv6_and_stops_asking():
    for status in (128, 129, 130, 131, 132, 133):
        r = make(V4HOA)
        r.move(V4COA, "udp4", 0)
        bu = bu_of(r)
        assert r.receive(ba(r, bu, V4COA, (status, V4HOA)), 5) == "ba"
        evs = events(r)
        assert ("ipv4", status, V4HOA) in evs, evs
        assert any(e[0] == "registered" for e in evs)          # the IPv6 binding stands
        assert r.state == S.BOUND and r.v4hoa is None and status in REASONS
        r.move(ip6_from_text("2001:db8:a1::55"), "udp6", 10)
        assert bu_of(r, 10).find(mo.IPv4HomeAddress) is None


def test_ba_without_acknowledgement_means_no_ipv4_home():
    r = make()
    r.move(V4COA, "udp4", 0)
    bu = bu_of(r)
    assert r.receive(ba(r, bu, V4COA), 5) == "ba"
    assert ("ipv4", -1, None) in events(r) and r.v4hoa is None and r.state == S.BOUND


def test_rejected_ba_is_not_an_ipv4_answer_and_dereg_ends_both():
    r = make(V4HOA)
    r.move(V4COA, "udp4", 0)
    bu = bu_of(r)
    r.receive(ba(r, bu, V4COA, status=129), 5)
    assert not [e for e in events(r) if e[0] == "ipv4"] and r.v4hoa == V4HOA
    r = make(V4HOA)
    r.home(0)
    bu = bu_of(r)                                # lifetime 0: the HA ends both bindings
    assert bu.lifetime == 0 and bu.find(mo.IPv4HomeAddress).address == V4HOA
    assert r.receive(ba(r, bu, HOA, (0, V4HOA)), 5) == "ba"
    assert not [e for e in events(r) if e[0] == "ipv4"]           # no answer expected to it


def test_no_ipv4_hoa_means_no_option_and_no_event():
    r = Registration(NAI, 4096, KEY, HOA, HA, seq=7, ntp_offset_ms=3900000000000)
    assert getattr(r, "v4hoa", None) is None and not hasattr(r, "v4hoa")   # not even a class attribute
    r.move(V4COA, "udp4", 0)
    bu = bu_of(r)
    assert bu.find(mo.IPv4HomeAddress) is None
    r.receive(ba(r, bu, V4COA, (0, V4HOA)), 5)
    assert not [e for e in events(r) if e[0] == "ipv4"]


# ---- the host's IPv4 side ------------------------------------------------------------------
class _Uplink:
    """The node's uplink as host4 sees it (the real one needs sockets): what it was given."""
    old = None                      # no switch of transport under way (node/switchover.py)

    def __init__(self):
        self.sent = []
        self.active = self

    def send(self, pkt):
        self.sent.append(bytes(pkt))
        return True


class _Node:
    def __init__(self):
        self.uplink = _Uplink()
        self.host = Host(HOA, self.uplink.send)
        self.logged = []

    def log(self, ev, **f):
        self.logged.append((ev, f))


def make_host():
    node = _Node()
    v4 = Host4(node)
    return node, v4


def feed(h, pkt):
    buf = bytearray(1500)
    buf[:len(pkt)] = pkt
    return h.v4.input(buf, len(pkt))


def test_dual_stack_socket_sends_ipv4_from_the_ipv4_hoa_once_bound():
    node, v4 = make_host()
    s = node.host.socket()
    s.bind(9000)
    assert s.sendto(b"early", ("198.18.3.2", 9001)) == 0 and not node.uplink.sent   # not bound yet
    from roam6.node.host4 import report
    report(node, ("ipv4", 0, V4HOA))
    assert v4.addr == V4HOA and node.logged[-1] == ("ipv4", {"status": 0, "hoa4": "198.18.50.100"})
    assert s.sendto(b"hello", ("198.18.3.2", 9001)) == 5
    p = decode_ipv4(node.uplink.sent[-1])
    assert p.checksum_ok and p.src == V4HOA and p.dst == CN4 and p.proto == 17 and p.ttl == 64
    u = decode_udp(p.payload)
    assert (u.sport, u.dport, bytes(u.payload)) == (9000, 9001, b"hello")
    assert udp_checksum_ok(V4HOA, CN4, bytes(p.payload))
    assert s.sendto(b"six", ("2001:db8:f3::2", 9001)) == 3           # the same socket, IPv6
    assert node.uplink.sent[-1][0] >> 4 == 6
    report(node, ("ipv4", 132, None))
    assert v4.addr is None and node.logged[-1][1]["reason"] == "IPv4 HoA refused (pool exhausted): IPv6 only"


def test_ipv4_udp_in_and_ping_answered():
    node, v4 = make_host()
    v4.addr = V4HOA
    s = node.host.socket()
    s.bind(9000)
    dgram = build_udp(5555, 9000, b"ping!", CN4, V4HOA)
    assert feed(node.host, build_ipv4(CN4, V4HOA, 17, dgram))
    assert s.recvfrom_nowait() == (b"ping!", (CN4, 5555))
    bad = bytearray(build_ipv4(CN4, V4HOA, 17, dgram))
    bad[-1] ^= 1                                                      # UDP checksum wrong
    assert not feed(node.host, bytes(bad)) and s.recvfrom_nowait() is None
    assert not feed(node.host, build_ipv4(CN4, bytes([198, 18, 50, 7]), 17, dgram))   # not ours
    icmp = bytearray(b"\x08\x00\x00\x00\x12\x34\x00\x01abcdefgh")
    c = finish(inet_sum(icmp))
    icmp[2], icmp[3] = c >> 8, c & 0xFF
    assert feed(node.host, build_ipv4(CN4, V4HOA, 1, bytes(icmp)))
    r = decode_ipv4(node.uplink.sent[-1])
    assert r.checksum_ok and r.src == V4HOA and r.dst == CN4 and r.proto == 1
    assert bytes(r.payload)[0] == 0 and finish(inet_sum(r.payload)) == 0 and bytes(r.payload)[4:] == bytes(icmp)[4:]


def test_ipv6_only_host_refuses_ipv4_destinations():
    h = Host(HOA, lambda p: True)
    s = h.socket()
    raises(OSError, s.sendto, b"x", ("198.18.3.2", 9))

