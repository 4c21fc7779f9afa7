"""What inbound traffic may make the MN do (issue 13): spoofed Binding Refresh Requests and
Binding Errors (unauthenticated under RFC 4285) through the node's real demultiplexer, with the
HA's answer to every BU, cannot drive BUs or state-file writes; an unknown MH type gets one
Binding Error, status 2, a second (RFC 6275 §9.2); a Payload Proto other than 59 or a Header Len
below the type's minimum is discarded. The host's codec (roam6_codec) builds the messages and
reads the MN's Binding Error back: the oracle."""
import os

from roam6.crypto import mnha_auth_data
from roam6.node import driver as driver_module
from roam6.node import mherror
from roam6.node.config import parse_config
from roam6.node.driver import MobileNode
from roam6.wire.addr import ip6_from_text
from roam6.wire.checksum import checksum6
from roam6.wire.ipv6 import build_ipv6
from roam6_codec import mhopts as mo
from roam6_codec.mh import BindingAck, BindingError, BindingRefreshRequest, Heartbeat, UnknownMH, decode_mh
from support import BUL as S, fresh_state_file

KEY = "000102030405060708090a0b0c0d0e0f"
HOA = ip6_from_text("2001:db8:aa::100")
HA = ip6_from_text("2001:db8:aa::1")
CN = ip6_from_text("2001:db8:f3::2")
V4COA = bytes([192, 0, 2, 50])


class Counted:
    """Wraps the driver's save_state (a module global there) to count the state-file writes."""

    def __init__(self):
        self.real = driver_module.save_state
        self.n = 0

    def __call__(self, path, st):
        self.n += 1
        self.real(path, st)


def make(name):
    path = fresh_state_file(name)
    cfg = parse_config({"nai": "b@example.test", "spi": 4096, "key": KEY, "hoa": "2001:db8:aa::100",
                        "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1", "ha_ipv4": "198.18.1.2",
                        "transports": ["udp4"], "state_file": path})
    lines = []
    node = MobileNode(cfg, lambda ev, **f: lines.append((ev, f)))
    sent = []
    node.send_packet = lambda pkt: sent.append(bytes(pkt)) or True   # the uplink's data path
    return node, lines, path, sent


def feed(node, pkt):
    node.rx[:len(pkt)] = pkt
    node.packet_in(len(pkt))


def ba_for(node, status=0):
    seq, _at, ts = node.reg.sent[-1]
    opts = [mo.MNIdentifier(1, b"b@example.test"), mo.ReplayProtection(ts),
            mo.NATDetection(True, 110), mo.MobilityAuth(1, 4096, None)]
    coa = b"\0" * 10 + b"\xff\xff" + V4COA
    mh = BindingAck(status, 0, seq, 150, opts).encode(
        src=HA, dst=HOA, mac=lambda p: mnha_auth_data(bytes.fromhex(KEY), coa, HOA, p))
    return build_ipv6(HA, HOA, 135, mh)


def count(lines, ev):
    return len([1 for e, _f in lines if e == ev])


def registered(node, lines):
    node.reg.move(V4COA, "udp4", node.now())
    node.flush()
    feed(node, ba_for(node))
    assert node.reg.bound and count(lines, "registered") == 1


def flood(node, lines, msg, n=1000):
    """n copies of msg from the HA to the HoA; the HA answers every BU the MN sends (as the real
    one does). Returns the BUs sent."""
    pkt = build_ipv6(HA, HOA, 135, msg.encode(src=HA, dst=HOA))
    before = count(lines, "bu")
    for _ in range(n):
        k = count(lines, "bu")
        feed(node, pkt)
        if count(lines, "bu") > k:
            feed(node, ba_for(node))
    return count(lines, "bu") - before


def test_1000_spoofed_brrs_send_at_most_one_bu_and_write_nothing():
    node, lines, path, _sent = make("r6flood1")
    saves = driver_module.save_state = Counted()
    try:
        registered(node, lines)
        assert saves.n == 1                       # the first BU's reservation (16 numbers)
        assert flood(node, lines, BindingRefreshRequest()) == 0   # a young binding: none
        assert node.reg.ignored >= 1000 and count(lines, "lost") == 0   # nor 1,000 log lines
        node._ms += 301000                        # 5 min later: less than half the 600 s left
        assert flood(node, lines, BindingRefreshRequest()) == 1   # one refresh, then young again
        assert node.reg.bound and saves.n == 1    # no state-file write for any of it
    finally:
        driver_module.save_state = saves.real
    os.remove(path)


def test_1000_spoofed_binding_errors_send_one_bu_per_max_bindack_timeout():
    node, lines, path, _sent = make("r6flood2")
    saves = driver_module.save_state = Counted()
    try:
        registered(node, lines)
        be = BindingError(1, HOA)
        assert flood(node, lines, be) == 0        # a binding younger than MAX_BINDACK_TIMEOUT
        node._ms += S.MAX_BINDACK_MS
        assert flood(node, lines, be) == 1        # the HA may really have lost it: once
        assert node.reg.bound and saves.n == 1
    finally:
        driver_module.save_state = saves.real
    os.remove(path)


def mh_packet(msg, src=HA, proto=None, hlen=None):
    raw = bytearray(msg.encode())
    if proto is not None:
        raw[0] = proto
    if hlen is not None:
        raw[1] = hlen
        raw = raw[:(hlen + 1) * 8]
    raw[4] = raw[5] = 0
    c = checksum6(src, HOA, 135, raw)
    raw[4], raw[5] = c >> 8, c & 0xFF
    return build_ipv6(src, HOA, 135, bytes(raw))


def test_unknown_mh_type_gets_one_binding_error_status_2_a_second():
    node, lines, path, sent = make("r6unk")
    registered(node, lines)
    mherror._last[0] = None
    now = node.now()
    for src in (CN, HA):
        for msg in (Heartbeat(0, 1), UnknownMH(200, b"\0" * 10)):
            feed(node, mh_packet(msg, src))
    assert len(sent) == 1                          # four unknown messages, one answer this second
    be = sent[0]
    assert be[6] == 135 and be[8:24] == HOA and be[24:40] == CN
    m = decode_mh(be[40:])                        # the host's codec reads it: the oracle
    assert isinstance(m, BindingError) and m.status == 2 and m.home_address == bytes(16)
    assert m.payload_proto == 59 and checksum6(HOA, CN, 135, be[40:]) == 0
    node._ms += 1000
    feed(node, mh_packet(Heartbeat(0, 2), CN))
    assert len(sent) == 2 and node.now() - now >= 1000
    assert node.reg.bound                         # nothing of that touched the binding
    os.remove(path)


def test_payload_proto_not_59_or_short_header_len_is_discarded():
    node, lines, path, sent = make("r6proto")
    registered(node, lines)
    node._ms += 301000                            # a BRR would be answered now ...
    rejected = node.reg.rejected
    feed(node, mh_packet(BindingRefreshRequest(), proto=6))        # ... but not with proto 6
    feed(node, mh_packet(BindingError(1, HOA), hlen=1))              # BE below its 24 bytes
    feed(node, mh_packet(Heartbeat(0, 1), proto=17))               # unknown type, proto 17
    assert count(lines, "bu") == 1 and count(lines, "lost") == 0 and sent == []
    assert node.reg.rejected == rejected + 2
    feed(node, mh_packet(BindingRefreshRequest()))                   # the same, proto 59: answered
    assert count(lines, "lost") == 1 and count(lines, "bu") == 2
    os.remove(path)
