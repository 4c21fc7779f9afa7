"""Mobile prefix discovery at the MN (node/mobprefix.py; RFC 6275 §11.4.2-3 under RFC 4285,
docs/PROTOCOL-NOTES.md §11.15): the node solicits through its tunnel once bound; an MPA is a hint,
taken only from its HA with its Identifier, tried as a BU for the new home address and adopted
only on that BU's authenticated BA; a refusal puts the old address back; forged MPAs are ignored."""
import os
import struct

from roam6.crypto import mnha_auth_data
from roam6.node.config import ConfigError, parse_config
from roam6.node.driver import MobileNode
from roam6.wire.addr import ip6_from_text
from roam6.wire.checksum import checksum6
from roam6.wire.ipv6 import build_ipv6
from roam6_codec import mhopts as mo
from roam6_codec.mh import BindingAck
from support import fresh_state_file, raises

KEY = "000102030405060708090a0b0c0d0e0f"
HOA = ip6_from_text("2001:db8:aa::100")
NEW_HOA = ip6_from_text("2001:db8:bb::100")
HA = ip6_from_text("2001:db8:aa::1")
NEW_HA = ip6_from_text("2001:db8:bb::1")
V4COA = bytes([192, 0, 2, 50])


def make(name, extra=None):
    path = fresh_state_file(name)
    raw = {"nai": "b@example.test", "spi": 4096, "key": KEY, "hoa": "2001:db8:aa::100",
           "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1", "ha_ipv4": "198.18.1.2",
           "transports": ["udp4"], "state_file": path, "timestamps": False, "prefix_solicit_s": 60}
    raw.update(extra or {})
    cfg = parse_config(raw)
    lines, sent = [], []
    node = MobileNode(cfg, lambda ev, **f: lines.append((ev, f)))
    node.send_packet = lambda pkt: sent.append(bytes(pkt)) or True
    node.uplink.open = lambda name, coa: object()       # test double: no socket to 192.0.2.50
    return node, lines, sent, path


def count(lines, ev):
    return len([1 for e, _f in lines if e == ev])


def feed(node, pkt):
    node.rx[:len(pkt)] = pkt
    node.packet_in(len(pkt))


def ba(node, hoa, status=0):
    seq, _at, _ts = node.reg.sent[-1]
    opts = [mo.MNIdentifier(1, b"b@example.test"), mo.MobilityAuth(1, 4096, None)]
    coa = b"\0" * 10 + b"\xff\xff" + V4COA
    mh = BindingAck(status, 0, seq, 150, opts).encode(
        src=HA, dst=hoa, mac=lambda p: mnha_auth_data(bytes.fromhex(KEY), coa, hoa, p))
    return build_ipv6(HA, hoa, 135, mh)


def mpa(ident, prefix_addr=NEW_HA, src=HA, dst=HOA, plen=64, flags=0x60, bad_sum=False):
    """RFC 6275 §6.8 / RFC 4861 §4.6.2, as the HA builds it (ha/dhaad.py: A and R, its address)."""
    pio = struct.pack(">BBBBIII", 3, 4, plen, flags, 86400, 14400, 0) + prefix_addr
    icmp = bytearray(struct.pack(">BBHHH", 147, 0, 0, ident, 0) + pio)
    struct.pack_into(">H", icmp, 2, checksum6(src, dst, 58, icmp) ^ (1 if bad_sum else 0))
    return build_ipv6(src, dst, 58, bytes(icmp))


def bound(node):
    from roam6.node import mobprefix
    node.reg.move(V4COA, "udp4", node.now())
    node.flush()
    feed(node, ba(node, HOA))
    assert node.reg.bound
    return mobprefix.outcome(node, ("registered", V4COA, 600, 0), node.now())


def _rm(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _reset():
    from roam6.node import eventlog, mobprefix
    mobprefix._last[0] = mobprefix._trial[0] = mobprefix._prompted[0] = None
    mobprefix._ident[0] = 0
    eventlog.report = mobprefix._report


def test_field_is_checked():
    for bad in (0, 9, 86401, "60", True):
        assert raises(ConfigError, make, "r6mp0", {"prefix_solicit_s": bad}).field == "prefix_solicit_s"
    _reset()


def test_solicits_once_bound_and_adopts_a_new_prefix_only_on_its_ba():
    from roam6.node import mobprefix
    node, lines, sent, path = make("r6mp1")
    try:
        assert bound(node) == "solicited"
        (mps,) = sent
        assert mps[6] == 58 and mps[8:24] == HOA and mps[24:40] == HA and mps[40] == 146 and mps[41] == 0
        assert checksum6(HOA, HA, 58, mps[40:]) == 0 and len(mps) == 48
        ident = struct.unpack(">H", mps[44:46])[0]
        assert ident & 1
        assert mobprefix.outcome(node, ("registered", V4COA, 600, 0), node.now()) is None   # not due yet
        n0 = mobprefix.IGNORED[0]
        for forged in (mpa(ident ^ 2), mpa(ident, bad_sum=True), mpa(ident, src=ip6_from_text("2001:db8:aa::9")),
                       mpa(ident, plen=48), mpa(ident, flags=0x20)):
            feed(node, forged)
        assert mobprefix.IGNORED[0] == n0 + 5 and node.cfg.hoa == HOA and mobprefix._trial[0] is None
        bus = count(lines, "bu")
        feed(node, mpa(ident))                               # the HA's answer: a hint, tried as a BU
        assert node.reg.hoa == NEW_HOA and node.cfg.hoa == NEW_HOA and node.host.hoa == HOA
        assert count(lines, "bu") == bus + 1 and node.cfg.home_prefix[0] == HOA[:8] + bytes(8)
        feed(node, mpa(ident, dst=NEW_HOA))                  # a second copy: ignored
        assert mobprefix.IGNORED[0] == n0 + 6
        feed(node, ba(node, NEW_HOA))                        # authenticated BA for the new HoA
        assert node.reg.bound
        assert mobprefix.outcome(node, ("registered", V4COA, 600, 0), node.now()) == "adopted"
        assert node.host.hoa == NEW_HOA and node.cfg.home_prefix == (NEW_HOA[:8] + bytes(8), 64)
        assert [f for e, f in lines if e == "home_prefix"][0]["hoa"] == "2001:db8:bb::100"
    finally:
        _reset()
        _rm(path)


def test_a_refused_trial_puts_the_old_home_address_back():
    from roam6.node import mobprefix
    node, lines, sent, path = make("r6mp2")
    try:
        bound(node)
        ident = struct.unpack(">H", sent[0][44:46])[0]
        feed(node, mpa(ident))
        assert node.reg.hoa == NEW_HOA
        bus = count(lines, "bu")
        feed(node, ba(node, NEW_HOA, status=129))            # the HA will not serve it (129)
        assert mobprefix.outcome(node, ("error", "registration refused", 129), node.now()) == "undone"
        assert node.reg.hoa == HOA and node.cfg.hoa == HOA and node.host.hoa == HOA
        assert count(lines, "bu") == bus + 1                 # the old HoA registered again at once
        feed(node, ba(node, HOA))
        assert node.reg.bound and node.cfg.home_prefix[0] == HOA[:8] + bytes(8)
        assert [f for e, f in lines if e == "prefix_refused"][0]["status"] == 129
    finally:
        _reset()
        _rm(path)


def test_unsolicited_mpa_only_prompts_a_solicitation_at_most_once_a_second():
    from roam6.node import mobprefix
    node, lines, sent, path = make("r6mp4")
    try:
        bound(node)
        assert len(sent) == 1
        n0 = mobprefix.IGNORED[0]
        feed(node, mpa(0))                              # while our MPS is out: nothing more
        assert len(sent) == 1 and mobprefix.IGNORED[0] == n0 + 1
        ident = struct.unpack(">H", sent[0][44:46])[0]
        feed(node, mpa(ident, prefix_addr=HA))          # answered: our prefix, nothing to do
        n0 = mobprefix.IGNORED[0]
        feed(node, mpa(0))                              # unsolicited (the HA's prefixes changed)
        assert len(sent) == 2 and sent[1][40] == 146    # asked again at once ...
        assert node.reg.hoa == HOA and mobprefix._trial[0] is None and mobprefix.IGNORED[0] == n0 + 1
        feed(node, mpa(0))
        assert len(sent) == 2 and mobprefix.IGNORED[0] == n0 + 2   # ... but not twice within a second
        ident = struct.unpack(">H", sent[1][44:46])[0]
        feed(node, mpa(ident))                          # the answer to that MPS is what counts
        assert node.reg.hoa == NEW_HOA
    finally:
        _reset()
        _rm(path)
