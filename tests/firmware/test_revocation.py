"""The MN's side of Binding Revocation (roam6.core.revocation, RFC 5846): an authentic BRI is
acknowledged and silences the registration until the hold-down ends; anything else posing as
one is ignored and counted. The HA is played with the codec and crypto, like test_registration."""
from roam6.core import revocation as R
from roam6.core.registration import mac_coa
from roam6.crypto import mnha_auth_data
from roam6.wire.checksum import checksum6
from roam6.wire.ipv6 import build_ipv6
from roam6_codec import mhopts as mo
from roam6_codec.mh import BindingRevocation, decode_mh
from support import BUL as S
from test_registration import HA, HOA, KEY, NAI, V4COA, V6COA, ha_ba, make, one_bu

NTP0 = 3900000000          # make()'s clock in NTP seconds at now = 0


class Node:
    """What node_bri uses of the driver's MobileNode: reg, uplink.active.send_mh, log."""

    def __init__(self, reg):
        self.reg = reg
        self.sent = []
        self.logged = []
        self.uplink = self
        self.active = self

    def send_mh(self, pkt):
        self.sent.append(bytes(pkt))
        return True

    def log(self, ev, **kw):
        self.logged.append((ev, kw))


def bound(transport="udp4", coa=V4COA):
    R._last[0] = 0
    R._last[1] = None
    r = make()
    r.move(coa, transport, 0)
    _pkt, req = one_bu(r)
    assert r.receive(ha_ba(r, req, coa), 100) == "ba" and r.state == S.BOUND
    return r


def bri(coa=V4COA, key=KEY, spi=4096, nai=NAI, ts=(NTP0 + 1) << 32, seq=9, br_type=1, flags=0,
        src=HA, trigger=1):
    opts = [mo.MNIdentifier(1, nai)]
    if ts is not None:
        opts.append(mo.ReplayProtection(ts))
    opts.append(mo.MobilityAuth(1, spi, None))
    mc = mac_coa(coa)
    mh = BindingRevocation(br_type, trigger, seq, flags, opts).encode(
        src=src, dst=HOA, mac=lambda p: mnha_auth_data(key, mc, HOA, p))
    return build_ipv6(src, HOA, 135, mh)


def feed(r, pkt, now=1000):
    """As the driver does: receive says "unknown" for MH 16, mherror.answer hands it on."""
    from roam6.node.mherror import answer
    n = Node(r)
    assert r.receive(pkt, now) == "unknown"
    answer(n, memoryview(bytearray(pkt) + bytearray(64)), now)     # (the driver's whole RX buffer)
    return n


def test_authentic_bri_acknowledged_and_registration_silenced():
    r = bound()
    n = feed(r, bri())
    assert r.state == S.REVOKED and n.logged[0][0] == "revoked" and n.logged[0][1]["reason"] == "administrative"
    assert len(n.sent) == 1
    pkt = n.sent[0]
    assert pkt[8:24] == HOA and pkt[24:40] == HA and pkt[6] == 135
    mh = pkt[40:]
    assert checksum6(HOA, HA, 135, mh) == 0
    bra = decode_mh(mh)
    assert isinstance(bra, BindingRevocation) and bra.br_type == 2 and bra.trigger == 0 and bra.seq == 9
    assert bra.find(mo.MNIdentifier).identifier == NAI
    assert bra.find(mo.ReplayProtection).timestamp == (NTP0 + 1) << 32
    auth = bra.options[-1]
    raw = bytearray(mh)
    raw[4] = raw[5] = 0
    assert auth.spi == 4096 and bytes(auth.auth_data) == mnha_auth_data(KEY, mac_coa(V4COA), HOA, bytes(raw[:-12]))
    # silent: no BU for a new CoA, a refresh, or a timer within the hold-down
    r.move(ip_other(), "udp4", 2000)
    r.handle_timer(600000)
    assert r.datagrams_to_send(600000) == () and r.get_timer() == 1000 + R.hold_ms
    # the HA repeats its BRI (our BRA lost): acknowledged again, the hold-down unchanged, no new log
    n2 = feed(r, bri(ts=(NTP0 + 2) << 32), 3000)
    assert len(n2.sent) == 1 and n2.logged == [] and r.get_timer() == 1000 + R.hold_ms
    # hold-down over: one new first registration from the latest care-of address, then back-off
    r.handle_timer(1000 + R.hold_ms)
    pkt, _req = one_bu(r)
    bu = decode_mh(pkt[40:])
    assert r.state == S.REGISTERING and bu.lifetime > 0 and bu.find(mo.IPv4CareofAddress).address == ip_other()


def ip_other():
    return bytes([192, 0, 2, 101])


def test_bri_over_ip6_acknowledged_from_the_coa_with_the_home_address_option():
    r = bound("ip6", V6COA)
    n = Node(r)
    raw = bri(coa=V6COA)[40:]
    assert r.receive_mh(raw, HA, HOA, 1000) == "unknown"
    assert R.node_bri(n, raw, HA, 1000) is True
    pkt = n.sent[0]
    assert pkt[8:24] == V6COA and pkt[6] == 60 and pkt[48:64] == HOA
    assert r.state == S.REVOKED


def test_forged_or_malformed_bri_ignored_and_counted():
    r = bound()
    R.ignored[0] = 0
    bad = [bri(key=bytes(16)),                   # wrong key
           bri(spi=4097),                        # not our SPI
           bri(nai=b"other@example.test"),       # not our NAI
           bri(coa=ip_other()),                  # signed over another CoA
           bri(ts=None),                         # no timestamp, while ours are on
           bri(ts=(NTP0 - 120) << 32),           # stale (a recording)
           bri(ts=(NTP0 + 600) << 32),           # from the future
           bri(br_type=2),                       # a BRA sent to us
           bri(flags=0x8000),                    # proxy revocation
           bri(flags=0x2000),                    # global revocation
           bri(src=ip_other_v6())]               # not from our HA
    for i, p in enumerate(bad):
        n = Node(r)
        if p[8:24] == HA:
            n = feed(r, p)
        else:
            assert R.node_bri(n, p[40:], p[8:24], 1000) is False
        assert n.sent == [] and r.state == S.BOUND, i
    assert R.ignored[0] == len(bad)
    # malformed: an option running past the end (a wrong length), a message too short
    raw = bytearray(bri()[40:])
    raw[13] = 200
    assert R.receive_bri(r, raw, HA, 1000) is None
    assert R.receive_bri(r, raw[:8], HA, 1000) is None
    # then the authentic one still works, and a replay of it does not count again
    good = bri(ts=(NTP0 + 5) << 32)
    assert R.receive_bri(r, good[40:], HA, 1000) is not None and r.state == S.REVOKED
    assert R.receive_bri(r, good[40:], HA, 1100) is None


def test_bri_without_timestamps_when_the_node_uses_none():
    R._last[0] = 0
    r = make(timestamps=False)
    r.move(V4COA, "udp4", 0)
    _pkt, req = one_bu(r)
    assert r.receive(ha_ba(r, req, V4COA, ts=None), 100) == "ba"
    assert R.receive_bri(r, bri(ts=None)[40:], HA, 1000) is not None and r.state == S.REVOKED


def test_bri_ignored_while_never_registered():
    R._last[0] = 0
    r = make()
    assert R.receive_bri(r, bri()[40:], HA, 1000) is None and r.state == S.DETACHED


def ip_other_v6():
    return bytes(HA[:15]) + b"\x99"

