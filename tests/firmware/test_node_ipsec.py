"""The node under `"security": "ipsec"` (node/ipsecglue.py, core/ipsecreg.py): the IKEv2 handshake
before the first BU, the BU sealed in the CHILD_SA, the BA opened, a move (the IKE SA told from the
new address), CHILD_SA rekey, IKE SA re-authentication, a wrong PSK (error line, back-off, no
crash), replayed / forged / clear BAs dropped. The HA is an in-process stand-in: ike_peer.Peer
(IKE) and its ESP SAs, with BAs built by roam6_codec (not the HA itself: tests/e2e runs that).
No sockets: the glue's `send` and the uplink's transport are lists."""
import os

from ike_peer import Peer
from support import fresh_state_file

from roam6.ipsec import ikev2 as k
from roam6.node.config import parse_config
from roam6.node.driver import MobileNode
from roam6.wire.addr import ip6_from_text
from roam6.wire.binding import ipv6_packet
from roam6.wire.checksum import checksum6
from roam6_codec.mh import BindingAck

PSK = "00112233445566778899aabbccddeeff"
HOA = ip6_from_text("2001:db8:aa::100")
HA = ip6_from_text("2001:db8:aa::1")
COA1, COA2 = bytes([192, 0, 2, 50]), bytes([192, 0, 2, 77])


class Tr:
    name = "udp4"

    def __init__(self):
        self.out = []

    def send_mh(self, pkt):
        self.out.append(bytes(pkt))

    send = send_mh


def make(**extra):
    path = fresh_state_file("r6ipsec")
    raw = {"nai": "m@example.test", "security": "ipsec", "psk": PSK, "hoa": "2001:db8:aa::100",
           "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1", "ha_ipv4": "198.18.1.2",
           "transports": ["udp4"], "state_file": path}
    raw.update(extra)
    lines = []
    node = MobileNode(parse_config(raw), lambda ev, **f: lines.append((ev, f)))
    g = node.ipsec
    g.sockets = False
    g.out = []
    g.send = g.out.append
    node.uplink.active = Tr()
    return node, lines, path


def move(node, coa, now=None):
    now = node.now() if now is None else now
    node.ipsec.moved(coa, "udp4", now)
    node.reg.move(coa, "udp4", now)
    node.flush()


def rng():
    x = [7]

    def r(n):
        out = bytearray(n)
        for i in range(n):
            x[0] = (x[0] * 1103515245 + 12345) & 0x7FFFFFFF
            out[i] = (x[0] >> 16) & 0xFF
        return bytes(out)
    return r


def handshake(node, peer):
    g = node.ipsec
    init = g.out.pop(0)
    assert init[:4] == k.MARKER and init[4 + 18] == k.IKE_SA_INIT
    g.ike_in(peer.init(init), node.now())
    auth = g.out.pop(0)
    resp = peer.auth(auth)
    g.ike_in(resp, node.now())
    return auth


def ha_open_bu(node, sa_in, pkt):
    """The HA stand-in's side of one BU: IPv6 HoA -> HA, NH 50; ESP opened; the MH inside."""
    assert pkt[6] == 50 and pkt[8:24] == HOA and pkt[24:40] == HA
    nh, mh = sa_in.open(pkt[40:])
    assert nh == 135 and mh[2] == 5 and checksum6(HOA, HA, 135, mh) == 0
    return mh


def ba(sa_out, seq, status=0, k_bit=True):
    mh = BindingAck(status, 0x80 if k_bit else 0, seq, 150, []).encode(src=HA, dst=HOA)
    return ipv6_packet(HA, HOA, 50, sa_out.seal(mh, 135))


def feed(node, pkt):
    node.rx[:len(pkt)] = pkt
    node.packet_in(len(pkt))


def registered(node, lines, peer):
    """Move to COA1, handshake, BU over ESP, BA: bound. Returns the HA's SAs."""
    move(node, COA1)
    tr = node.uplink.active
    assert not tr.out and node.reg.held        # no BU in clear while the IKE SA comes up
    handshake(node, peer)
    sa_in, sa_out = peer.esp()
    assert len(tr.out) == 1                     # the held BU left at child_up
    mh = ha_open_bu(node, sa_in, tr.out.pop())
    seq, flags = (mh[6] << 8) | mh[7], (mh[8] << 8) | mh[9]
    assert flags & 0xD100 == 0xD100             # A H K F
    assert 8 not in mh[12:] and 9 not in mh[12:]    # no MN-ID, no MN-HA auth option (PadN only)
    node.first_ba = ba(sa_out, seq)
    feed(node, node.first_ba)
    assert node.reg.bound and node.reg.k_echoed
    return sa_in, sa_out, seq


def test_registration_over_esp_and_bad_bas_dropped():
    node, lines, path = make()
    peer = Peer(bytes.fromhex(PSK), rng())
    sa_in, sa_out, seq = registered(node, lines, peer)
    assert peer.transport and peer.auth_ok      # transport mode asked for the MH selector
    tsi = k.parse_ts(peer.ts[0])[0]
    assert tsi[1] == 135 and tsi[4] == HOA      # TSi = HoA, MH
    kinds = [ev for ev, f in lines]
    assert kinds.index("bu") < kinds.index("ike") and "registered" in kinds
    assert [f for ev, f in lines if ev == "ike" and f["state"] == "child_up"]
    rej = node.reg.rejected
    feed(node, node.first_ba)                   # the same ESP packet again: the replay window
    forged = bytearray(ba(sa_out, seq))
    forged[-1] ^= 1                             # ICV broken
    feed(node, forged)
    mh = BindingAck(0, 0, seq, 150, []).encode(src=HA, dst=HOA)
    feed(node, ipv6_packet(HA, HOA, 135, mh))   # a BA in clear: refused under IPsec
    assert node.reg.rejected == rej + 3
    # an MH type the MN does not handle under IPsec (a sealed Home Agent Switch, 12): dropped, no answer
    hs = bytearray(16)
    hs[0], hs[1], hs[2] = 59, 1, 12
    hs[4:6] = checksum6(HA, HOA, 135, hs).to_bytes(2, "big")
    tr = node.uplink.active
    n = len(tr.out)
    feed(node, ipv6_packet(HA, HOA, 50, sa_out.seal(bytes(hs), 135)))
    assert len(tr.out) == n and node.reg.bound
    assert node.reg.sa.esp_in.replayed == 1 and node.reg.sa.esp_in.bad_icv == 1
    assert len([1 for ev, f in lines if ev == "ba"]) == 1
    os.remove(path)


def test_move_tells_the_ike_sa_and_rekey_and_reauth():
    node, lines, path = make()
    peer = Peer(bytes.fromhex(PSK), rng())
    sa_in, sa_out, seq = registered(node, lines, peer)
    g, tr = node.ipsec, node.uplink.active
    assert not g.out
    move(node, COA2)                            # SA up: the BU leaves at once, sealed
    assert len(tr.out) == 1 and not g.out
    mh = ha_open_bu(node, sa_in, tr.out.pop())
    feed(node, ba(sa_out, (mh[6] << 8) | mh[7]))
    assert not g.out and g.get_timer() <= node.now() + 20   # not on the first packets' path
    g.tick(node.now() + 20)
    assert len(g.out) == 1                      # the INFORMATIONAL from the new address
    g.ike_in(peer.answer(g.out.pop()), node.now())
    assert [f for ev, f in lines if ev == "ike" and f["state"] == "moved"]
    # CHILD_SA rekey when its soft lifetime is reached
    old_spi = g.ike.esp_out.spi
    g.rekey_at = node.now()
    g.tick(node.now())
    g.ike_in(peer.answer(g.out.pop()), node.now())     # CREATE_CHILD_SA
    g.ike_in(peer.answer(g.out.pop()), node.now())     # Delete of the old ESP SAs
    assert peer.deleted and g.ike.esp_out.spi != old_spi
    assert [f for ev, f in lines if ev == "ike" and f["state"] == "rekeyed"]
    sa_in2, sa_out2 = peer.esp(rekeyed=True)
    node.reg.lost("brr", node.now() + 400000)  # a refresh: the BU goes through the new SA
    node.flush()
    mh = ha_open_bu(node, sa_in2, tr.out.pop())
    # IKE SA re-authentication: a second handshake beside the first, then the old one deleted
    first = g.ike
    g.reauth_at = node.now()
    g.tick(node.now())
    peer2 = Peer(bytes.fromhex(PSK), rng())
    peer2.spi_r = b"\x22" * 8
    handshake(node, peer2)
    assert g.ike is not first and g.next is None and node.reg.sa is g.ike
    dele = g.out.pop()                          # the old IKE SA's Delete, under its keys
    _, inner = peer.open(dele)
    assert inner[0][0] == k.PL_DELETE and bytes(inner[0][2][:1]) == b"\x01"
    assert [f for ev, f in lines if ev == "ike" and f["state"] == "reauth"]
    os.remove(path)


def test_the_ike_code_is_loaded_only_while_an_exchange_runs():
    import sys

    from roam6.node.ipsecglue import Dormant
    node, lines, path = make()
    peer = Peer(bytes.fromhex(PSK), rng())
    registered(node, lines, peer)
    g = node.ipsec
    d = g.ike
    # idle after the handshake: a Dormant with the ESP SAs, ikev2 and x25519 dropped, and nothing
    # only the handshake reads
    assert type(d) is Dormant and node.reg.sa is d and d.esp_in is not None and d.esp_out is not None
    assert "roam6.ipsec.ikev2" not in sys.modules and "roam6.ipsec.x25519" not in sys.modules
    assert d.d["psk"] is None and d.d["_req"] is None and "pi" not in d.d["sk"] and "d" in d.d["sk"]
    # the liveness check is due: the Initiator again (ikev2 imported again) sends it ...
    t = g.get_timer()
    assert t == d.d["_live_at"] and t > node.now()
    g.tick(t)
    assert len(g.out) == 1 and type(g.ike) is not Dormant and node.reg.sa is g.ike
    assert "roam6.ipsec.ikev2" in sys.modules
    g.ike_in(peer.answer(g.out.pop()), t + 5)
    # ... and once answered the SA sleeps again, still the same keys and SPIs
    assert type(g.ike) is Dormant and node.reg.sa is g.ike and g.ike.esp_out is d.esp_out
    assert "roam6.ipsec.ikev2" not in sys.modules and g.get_timer() == t + 5 + g.liveness_ms
    # a datagram for the SA from the path (not awaited: forged here) wakes it at most once a second
    junk = k.MARKER + d.spi_i + bytes(40)
    dropped = g.dropped
    g.ike_in(junk, t + 2000)
    assert type(g.ike) is Dormant and "roam6.ipsec.ikev2" not in sys.modules and g.dropped == dropped
    g.ike_in(junk, t + 2500)
    assert g.dropped == dropped + 1 and "roam6.ipsec.ikev2" not in sys.modules
    # the BU refresh still leaves sealed in the same CHILD_SA
    tr = node.uplink.active
    node.reg.lost("brr", node.now() + 400000)
    node.flush()
    assert tr.out and tr.out[-1][6] == 50
    os.remove(path)


def test_wrong_psk_logs_and_backs_off():
    node, lines, path = make()
    peer = Peer(b"another key entirely!", rng())
    move(node, COA1, 0)
    g = node.ipsec
    init = g.out.pop(0)
    g.ike_in(peer.init(init), 10)
    g.ike_in(peer.auth(g.out.pop(0)), 20)       # AUTHENTICATION_FAILED
    errs = [f["reason"] for ev, f in lines if ev == "error"]
    assert errs and "wrong psk" in errs[-1] and g.ike is None and node.reg.sa is None
    assert g.get_timer() == 20 + 1000 and not node.uplink.active.out
    g.tick(500)
    assert not g.out                            # not before the back-off
    g.tick(1020)
    assert g.out and g.out[0][4 + 18] == k.IKE_SA_INIT and g.handshakes == 2
    peer = Peer(b"another key entirely!", rng())
    g.ike_in(peer.init(g.out.pop(0)), 1030)
    g.ike_in(peer.auth(g.out.pop(0)), 1040)
    assert g.get_timer() == 1040 + 2000         # doubled
    g.ike_in(b"\x00\x00\x00\x00" + bytes(60), 1050)     # garbage to the IKE socket: dropped
    g.ike_in(b"", 1050)
    assert g.dropped >= 2
    os.remove(path)


def test_config_for_ipsec():
    from roam6.node.config import ConfigError, parse_config     # (one module: other tests reload it)
    from support import raises
    base = {"nai": "m@example.test", "hoa": "2001:db8:aa::100", "home_prefix": "2001:db8:aa::/64",
            "ha": "2001:db8:aa::1", "security": "ipsec"}
    e = raises(ConfigError, parse_config, base)
    assert e.field == "psk"
    e = raises(ConfigError, parse_config, dict(base, psk="0011"))
    assert e.field == "psk"
    e = raises(ConfigError, parse_config, dict(base, security="ipsecx", spi=300, key=PSK))
    assert e.field == "security"
    c = parse_config(dict(base, psk=PSK))
    assert c.psk == bytes.fromhex(PSK) and c.timestamps is False and c.ipsec_data is False
    rfc = dict(base, spi=300, key=PSK, security="rfc4285")
    assert not hasattr(parse_config(rfc), "psk")    # RFC 4285: nothing of IPsec
    e = raises(ConfigError, parse_config, dict(base, psk=PSK, ipsec_data="yes"))
    assert e.field == "ipsec_data"
    e = raises(ConfigError, parse_config, dict(base, psk=PSK, ipv4_hoa="0.0.0.0"))
    assert e.field == "ipv4_hoa"
    assert c.esp_gcm is False and parse_config(dict(base, psk=PSK, esp="aes-gcm")).esp_gcm is True
    e = raises(ConfigError, parse_config, dict(base, psk=PSK, esp="des"))
    assert e.field == "esp"
    assert c.pfs is False and parse_config(dict(base, psk=PSK, ipsec_pfs=True)).pfs is True
    e = raises(ConfigError, parse_config, dict(base, psk=PSK, ipsec_pfs=1))
    assert e.field == "ipsec_pfs"


def test_payload_tunnel_both_ways():
    """"ipsec_data": true (design 6): a second CHILD_SA (CREATE_CHILD_SA, tunnel mode, TSi = HoA,
    TSr = ::/0); a ping to the HoA in that SA from the HA is answered in it."""
    node, lines, path = make(ipsec_data=True)
    peer = Peer(bytes.fromhex(PSK), rng())
    registered(node, lines, peer)
    g, tr = node.ipsec, node.uplink.active
    req = g.out.pop()
    _, inner = peer.open(req)
    got = {t: b for t, _, b in inner}
    assert req[4 + 18] == k.CREATE_CHILD_SA and k.N_REKEY_SA not in [b[2] << 8 | b[3] for t, _, b in inner if t == 41]
    assert k.parse_ts(got[k.PL_TSI])[0][4] == HOA and k.parse_ts(got[k.PL_TSR])[0][4] == bytes(16)
    g.ike_in(peer.answer(req), node.now())
    assert [f for ev, f in lines if ev == "ike" and f["state"] == "data_up"]
    d_in, d_out = peer.esp(rekeyed=True)
    cn = ip6_from_text("2001:db8:c1::50")
    icmp = bytearray(b"\x80\x00\x00\x00\x12\x34\x00\x01" + b"ping")
    icmp[2:4] = checksum6(cn, HOA, 58, icmp).to_bytes(2, "big")
    ping = ipv6_packet(cn, HOA, 58, icmp)
    feed(node, ipv6_packet(HA, HOA, 50, d_out.seal(bytes(ping), 41)))
    assert len(tr.out) == 1
    out = tr.out.pop()
    assert out[6] == 50 and out[8:24] == HOA and out[24:40] == HA
    nh, reply = d_in.open(out[40:])
    assert nh == 41 and reply[6] == 58 and reply[40] == 129 and reply[8:24] == HOA and reply[24:40] == cn
    rej = node.reg.rejected
    feed(node, ipv6_packet(HA, HOA, 50, d_out.seal(bytes(ipv6_packet(cn, HA, 58, icmp)), 41)))   # not to the HoA
    assert not tr.out and node.reg.rejected == rej
    os.remove(path)


def test_sealed_revocation_and_binding_error_both_ways_in_the_sa():
    """RFC 4877: every MN-HA Mobility Header in the CHILD_SA, both ways. A sealed Binding Revocation
    Indication (no RFC 4285 option: the SA authenticates) revokes the binding and is acknowledged by a
    sealed BRA (no MN-HA option); an unknown MH type out of the SA gets a sealed Binding Error."""
    from roam6.core import revocation as R
    from roam6_codec import mhopts as mo
    from roam6_codec.mh import BindingRevocation
    from roam6.node import mherror
    R._last[0] = 0
    R._last[1] = None
    mherror._last[0] = None                     # (one Binding Error a second, for all peers: another test's)
    node, lines, path = make()
    peer = Peer(bytes.fromhex(PSK), rng())
    sa_in, sa_out, seq = registered(node, lines, peer)
    tr = node.uplink.active
    # an unknown MH type (20) out of the SA: a Binding Error status 2, sealed HoA -> HA
    mh = bytearray(16)
    mh[0], mh[1], mh[2] = 59, 1, 20
    mh[4:6] = checksum6(HA, HOA, 135, mh).to_bytes(2, "big")
    feed(node, ipv6_packet(HA, HOA, 50, sa_out.seal(bytes(mh), 135)))
    assert len(tr.out) == 1
    out = tr.out.pop()
    assert out[6] == 50 and out[8:24] == HOA and out[24:40] == HA
    nh, be = sa_in.open(out[40:])
    assert nh == 135 and be[2] == 7 and be[6] == 2 and checksum6(HOA, HA, 135, be) == 0
    # a BRI with another NAI in its MN-ID option: ignored, no answer
    bri = BindingRevocation(1, 1, 9, 0, [mo.MNIdentifier(1, b"other@example.test")]).encode(src=HA, dst=HOA)
    feed(node, ipv6_packet(HA, HOA, 50, sa_out.seal(bri, 135)))
    assert not tr.out and node.reg.bound
    # the HA's BRI in clear: refused (under IPsec only the SA counts)
    bri = BindingRevocation(1, 1, 9, 0, [mo.MNIdentifier(1, b"m@example.test")]).encode(src=HA, dst=HOA)
    feed(node, ipv6_packet(HA, HOA, 135, bri))
    assert not tr.out and node.reg.bound
    sealed = ipv6_packet(HA, HOA, 50, sa_out.seal(bri, 135))
    feed(node, sealed)
    assert node.reg.state == 6 and [f for ev, f in lines if ev == "revoked"]     # REVOKED
    assert len(tr.out) == 1
    out = tr.out.pop()
    assert out[6] == 50 and out[8:24] == HOA and out[24:40] == HA
    nh, bra = sa_in.open(out[40:])
    assert nh == 135 and bra[2] == 16 and bra[6] == 2 and bra[8:10] == b"\x00\x09"   # BRA, the BRI's seq
    assert checksum6(HOA, HA, 135, bra) == 0 and 9 not in bra[12:]                 # no MN-HA option
    feed(node, sealed)                          # the same ESP packet again: the replay window
    assert not tr.out and node.reg.sa.esp_in.replayed == 1
    os.remove(path)


def test_sealed_home_agent_switch_moves_to_a_new_ike_sa():
    """A Home Agent Switch out of the CHILD_SA (no MN-HA option: the SA authenticates): the node
    deletes the old HA's IKE SA, runs IKE with the new HA (the BU waits, held) and registers there."""
    import asyncio
    from roam6.node import haswitch
    from roam6_codec import mhopts as mo
    from roam6_codec.mh import HomeAgentSwitch
    ha2 = ip6_from_text("2001:db8:aa::2")

    async def main():
        haswitch._last[0] = 0
        node, lines, path = make(ha=["2001:db8:aa::1", "2001:db8:aa::2"], ha_ipv4=["198.18.1.2", "198.18.1.3"])
        peer = Peer(bytes.fromhex(PSK), rng())
        sa_in, sa_out, seq = registered(node, lines, peer)
        g, tr = node.ipsec, node.uplink.active

        def fake_open(name, coa):       # test double: 192.0.2.50 is not ours; the list transport again
            node.uplink.active = tr
            return tr
        node.uplink.open = fake_open
        sw = HomeAgentSwitch([ha2], [mo.BindingRefreshAdvice(10)]).encode(src=HA, dst=HOA)
        feed(node, ipv6_packet(HA, HOA, 135, sw))          # in clear: refused
        for _ in range(5):
            await asyncio.sleep(0)
        assert node.reg.ha == HA
        feed(node, ipv6_packet(HA, HOA, 50, sa_out.seal(sw, 135)))
        for _ in range(5):              # the old HA's deregistration, then the move: tasks
            await asyncio.sleep(0)
        assert node.reg.ha == ha2 and [f for ev, f in lines if ev == "ha_switch"]
        dele = g.out.pop(0)             # the old IKE SA's Delete, under its keys
        _, inner = peer.open(dele)
        assert inner[0][0] == k.PL_DELETE
        assert node.reg.sa is None and node.reg.held and g.remote == (bytes([198, 18, 1, 3]), 4500)
        tr.out.clear()
        peer2 = Peer(bytes.fromhex(PSK), rng())
        peer2.spi_r = b"\x33" * 8
        handshake(node, peer2)
        sa_in2, sa_out2 = peer2.esp()
        assert len(tr.out) == 1                             # the held BU, sealed for the new HA
        out = tr.out.pop()
        assert out[24:40] == ha2
        nh, mh = sa_in2.open(out[40:])
        assert nh == 135 and mh[2] == 5
        os.remove(path)
    asyncio.run(main())


def test_an_ha_that_lost_its_sas_gets_a_new_ike_sa_at_the_first_unanswered_bu():
    """The HA restarted (its journal keeps the binding, not the SAs): the MN's refresh BU under the
    old CHILD_SA goes unanswered; at its first retransmission the MN starts a new IKE SA beside the
    old one ("recheck") and, once it is up, repeats the BU under it at once (no second back-off)."""
    node, lines, path = make()
    peer = Peer(bytes.fromhex(PSK), rng())
    sa_in, sa_out, seq = registered(node, lines, peer)
    g, tr, reg = node.ipsec, node.uplink.active, node.reg
    node._ms += 400000                          # the node's clock on (past the registration's BU rate limit)
    now = node.now()
    reg.lost("brr", now)                        # a refresh; the restarted HA drops it (unknown SPI)
    node.flush()
    assert len(tr.out) == 1 and not g.out
    tr.out.clear()
    t = reg.get_timer()
    reg.handle_timer(t)                         # the BU's retransmission: under the old SA still...
    node.flush()
    assert len(tr.out) == 1 and g.next is not None     # ...and a new IKE SA beside the old one
    assert [f for ev, f in lines if ev == "ike" and f["state"] == "recheck"]
    tr.out.clear()
    peer2 = Peer(bytes.fromhex(PSK), rng())
    peer2.spi_r = b"\x44" * 8
    handshake(node, peer2)
    sa_in2, _ = peer2.esp()
    assert g.next is None and reg.sa is g.ike and g.out   # the old IKE SA's Delete
    assert len(tr.out) == 1                     # the BU again at once, under the new CHILD_SA
    mh = ha_open_bu(node, sa_in2, tr.out.pop())
    assert mh[2] == 5
    n = len([1 for ev, f in lines if ev == "ike" and f["state"] == "recheck"])
    reg.handle_timer(reg.get_timer())           # unanswered again: no second handshake meanwhile
    node.flush()
    assert len([1 for ev, f in lines if ev == "ike" and f["state"] == "recheck"]) == n
    os.remove(path)


def test_the_ha_assigns_another_home_address_at_re_authentication():
    """RFC 4877 §4.4, a HoA change (ha.json keys file + SIGHUP: tests/ha/test_ipsec_more_hoas.py):
    the HA dropped the device's SAs, so the refresh BU goes unanswered; the new IKE SA's CP assigns
    another HoA and narrows TSi to it; at its child_up the node takes it (config, registration,
    host; logged `ike` "hoa") and registers it at once under the new CHILD_SA, whose selectors
    name it; a BA to the new HoA binds it."""
    node, lines, path = make()
    peer = Peer(bytes.fromhex(PSK), rng())
    registered(node, lines, peer)
    g, tr, reg = node.ipsec, node.uplink.active, node.reg
    node._ms += 400000
    now = node.now()
    reg.lost("brr", now)                        # the refresh: the HA dropped the SA, no answer
    node.flush()
    tr.out.clear()
    reg.handle_timer(reg.get_timer())           # its retransmission starts the new IKE SA
    node.flush()
    assert g.next is not None
    tr.out.clear()
    new = ip6_from_text("2001:db8:aa::399")
    peer2 = Peer(bytes.fromhex(PSK), rng())
    peer2.spi_r = b"\x45" * 8
    peer2.cp_hoa = new
    handshake(node, peer2)
    sa_in2, sa_out2 = peer2.esp()
    assert node.cfg.hoa == new and reg.hoa == new and node.host.hoa == new
    hoa_lines = [f for ev, f in lines if ev == "ike" and f["state"] == "hoa"]
    assert hoa_lines == [{"state": "hoa", "hoa": "2001:db8:aa::399", "was": "2001:db8:aa::100"}]
    assert not [f for ev, f in lines if ev == "error"]
    ike = g.ike
    ts = ike.d["ts_i_got"] if hasattr(ike, "d") else ike.ts_i_got      # (a Dormant keeps it in d)
    assert ts[0][4] == new and ts[0][1] == 135  # the CHILD_SA's selector: the new HoA (rekeys use it)
    pkt = tr.out.pop()                          # the BU for the new HoA, at once, under the new SA
    assert not tr.out and pkt[6] == 50 and pkt[8:24] == new and pkt[24:40] == HA
    nh, mh = sa_in2.open(pkt[40:])
    assert nh == 135 and mh[2] == 5 and checksum6(new, HA, 135, mh) == 0
    seq = (mh[6] << 8) | mh[7]
    back = BindingAck(0, 0x80, seq, 150, []).encode(src=HA, dst=new)
    feed(node, ipv6_packet(HA, new, 50, sa_out2.seal(back, 135)))
    assert reg.bound and [ev for ev, f in lines].count("registered") == 2
    # the old HoA's BA (a forged or late one) no longer reaches the registration: not ours
    n = len([1 for ev, f in lines if ev == "ba"])
    feed(node, ba(sa_out2, seq))
    assert len([1 for ev, f in lines if ev == "ba"]) == n
    os.remove(path)


def test_the_first_ike_auth_assigns_the_home_address():
    """The HA's CP names a HoA other than the config's at the first IKE_AUTH: the held BU leaves
    for the HA's HoA (the device learns its HoA from the HA)."""
    node, lines, path = make()
    peer = Peer(bytes.fromhex(PSK), rng())
    new = ip6_from_text("2001:db8:aa::77")
    peer.cp_hoa = new
    move(node, COA1)
    handshake(node, peer)
    sa_in, _ = peer.esp()
    tr = node.uplink.active
    pkt = tr.out.pop()
    assert not tr.out and pkt[8:24] == new and node.host.hoa == new
    nh, mh = sa_in.open(pkt[40:])
    assert nh == 135 and checksum6(new, HA, 135, mh) == 0
    assert [f["hoa"] for ev, f in lines if ev == "ike" and f["state"] == "hoa"] == ["2001:db8:aa::77"]
    os.remove(path)
