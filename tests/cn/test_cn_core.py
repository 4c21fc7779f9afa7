"""The correspondent node's sans-IO core (host_tools/roam6_host/cn/core.py): docs/PROTOCOL-NOTES.md §10.3
vectors, BU verification paths, Binding Errors, and a full run against the MN's core (roam6.core.rr).
Times are ms on a virtual clock."""
import struct

from hypothesis import given, settings, strategies as st

from roam6 import rrcrypto
from roam6.core import rr
from roam6.core.ro_policy import RoPolicy
from roam6_codec import consts as C
from roam6_codec import mh as M
from roam6_codec import mhopts as O
from roam6.wire.checksum import checksum6
from roam6.wire.addr import ip6_to_text
from roam6.wire.ipv6 import build_ipv6, decode_ipv6
from roam6_codec.udp import build_udp
from roam6_host.cn.core import Correspondent, seq_greater

KCN = bytes.fromhex("000102030405060708090a0b0c0d0e0f10111213")
HOA = bytes.fromhex("20010db8000100000000000000000100")
COA = bytes.fromhex("20010db8000200000000000000000200")
COA2 = bytes.fromhex("20010db8000400000000000000000400")
CN = bytes.fromhex("20010db8000300000000000000000300")
BU_PACKET = bytes.fromhex(
    "6000000000383c4020010db800020000000000000000020020010db8000300000000000000000300"
    "870201020000c91020010db80001000000000000000001003b030500e269000180000069040400050006050c"
    "1f546d90e3044a169eec9b03")
BA_PACKET = bytes.fromhex(
    "6000000000382b4020010db800030000000000000000030020010db8000200000000000000000200"
    "870202010000000020010db80001000000000000000001003b0306005761000000010069010400000000050c"
    "8448ed2faf4ad55158c5b229")
DEREG_MH = bytes.fromhex("3b030500d5ad000280000000040400050000050cd4632e23d0ecc43c6ff9f96f")


def vector_cn(now=0):
    cn = Correspondent(CN, kcn=KCN)
    cn.nonces = {5: (b"\x11" * 8, now), 6: (b"\x22" * 8, now)}
    cn.current = 5
    return cn


def sent(cn, now):
    """The packets the CN queued (each addressed to the destination it names)."""
    out = cn.datagrams_to_send(now)
    assert all(dst == ip6_to_text(pkt[24:40]) for pkt, dst in out)
    return [pkt for pkt, _dst in out]


def data_to(cn, hoa, nh, payload, now):
    """The one packet send_data queues."""
    cn.send_data(hoa, nh, payload, now)
    [pkt] = sent(cn, now)
    return pkt


def mh_of(pkt):
    p = decode_ipv6(pkt)
    return p, M.decode_mh(bytes(p.payload))


def test_vector_tokens_in_hot_and_cot():
    cn = vector_cn()
    hoti = M.HomeTestInit(b"\xaa" * 8).encode(src=HOA, dst=CN)
    cn.receive(build_ipv6(HOA, CN, C.NH_MH, hoti), 1)
    cn.current = 6
    coti = M.CareofTestInit(b"\xbb" * 8).encode(src=COA, dst=CN)
    cn.receive(build_ipv6(COA, CN, C.NH_MH, coti), 2)
    (p1, hot), (p2, cot) = [mh_of(x) for x in sent(cn, 2)]
    assert (p1.src, p1.dst, type(hot), hot.nonce_index, hot.cookie) == (CN, HOA, M.HomeTest, 5, b"\xaa" * 8)
    assert hot.token == bytes.fromhex("c71a754160cffb9a")
    assert (p2.dst, type(cot), cot.nonce_index, cot.cookie) == (COA, M.CareofTest, 6, b"\xbb" * 8)
    assert cot.token == bytes.fromhex("e24f4365fdaeafa7")
    assert M.checksum_ok(hot.raw, CN, HOA) and M.checksum_ok(cot.raw, CN, COA)


def test_vector_bu_gets_the_vector_ba_and_a_binding():
    cn = vector_cn()
    assert cn.receive(BU_PACKET, 5) is None
    assert sent(cn, 5) == [BA_PACKET]
    b = cn.binding(HOA, 5)
    assert b.coa == COA and b.seq == 1 and b.expires == 5 + 420000
    assert cn.bindings(5) == [{"hoa": "2001:db8:1::100", "coa": "2001:db8:2::200", "seq": 1, "remaining_s": 420}]


def test_vector_deregistration_deletes_the_binding():
    cn = vector_cn()
    cn.receive(BU_PACKET, 5)
    sent(cn, 5)
    cn.receive(build_ipv6(HOA, CN, C.NH_MH, DEREG_MH), 10)
    [ba] = sent(cn, 10)
    p, msg = mh_of(ba)
    assert (p.dst, p.rh2, msg.status, msg.seq, msg.lifetime) == (HOA, None, 0, 2, 0)
    assert cn.binding(HOA, 10) is None


def forge(pkt, flip_at=-1):
    """The BU packet with one authenticator byte changed and the checksum made right again."""
    b = bytearray(pkt)
    b[flip_at] ^= 0x01
    p = decode_ipv6(bytes(b))
    off = p.payload_offset
    b[off + 4:off + 6] = b"\0\0"
    struct.pack_into(">H", b, off + 4, checksum6(p.hao, p.dst, 135, bytes(b[off:])))
    return bytes(b)


def test_forged_bu_is_refused_silently():
    cn = vector_cn()
    cn.receive(forge(BU_PACKET), 5)
    assert sent(cn, 5) == []
    assert cn.binding(HOA, 5) is None
    ev = cn.next_event()
    assert ev.kind == "bu_refused" and ev.reason == "bad authenticator"
    # a bad checksum is dropped too, before any crypto
    bad = bytearray(BU_PACKET)
    bad[-20] ^= 0xFF
    cn.receive(bytes(bad), 6)
    assert sent(cn, 6) == [] and cn.next_event().kind == "mh_dropped" and cn.ignored == 1


def test_replayed_bu_gets_135_with_the_last_accepted_seq():
    cn = vector_cn()
    cn.receive(BU_PACKET, 5)
    sent(cn, 5)
    cn.receive(BU_PACKET, 6)
    [ba] = sent(cn, 6)
    p, msg = mh_of(ba)
    assert msg.status == 135 and msg.seq == 1 and p.rh2 == HOA
    assert isinstance(msg.options[-1], O.BindingAuthData)


def test_expired_nonce_indices():
    for gone, status in (([5], 136), ([6], 137), ([5, 6], 138)):
        cn = vector_cn()
        for i in gone:
            cn.nonces[i] = (cn.nonces[i][0], -240001)  # made more than MAX_NONCE_LIFETIME ago
        cn.receive(BU_PACKET, 0)
        [ba] = sent(cn, 0)
        p, msg = mh_of(ba)
        assert msg.status == status and msg.seq == 1, (status, msg)
        assert not any(isinstance(o, O.BindingAuthData) for o in msg.options)
        assert cn.binding(HOA, 0) is None


def test_home_registration_bu_is_not_for_a_cn():
    cn = vector_cn()

    def mac(d):
        return rrcrypto.rr_authenticator(bytes(20), COA, CN, d)
    mh = M.BindingUpdate(9, C.BU_A | C.BU_H, 10, [O.NonceIndices(5, 6), O.BindingAuthData(None)]).encode(
        src=HOA, dst=CN, mac=mac)
    cn.receive(build_ipv6(COA, CN, C.NH_MH, mh, hao=HOA), 0)
    p, msg = mh_of(sent(cn, 0)[0])
    assert msg.status == 131


def test_data_with_hao_needs_a_binding_for_that_source_else_binding_error_1_rate_limited():
    cn = vector_cn()
    udp = build_udp(5000, 7, b"ping", src=HOA, dst=CN)
    pkt = build_ipv6(COA, CN, C.NH_UDP, udp, hao=HOA)
    assert cn.receive(pkt, 0) is None
    [be] = sent(cn, 0)
    p, msg = mh_of(be)
    assert (p.dst, type(msg), msg.status, msg.home_address) == (COA, M.BindingError, 1, HOA)
    assert M.checksum_ok(msg.raw, CN, COA)
    assert cn.receive(pkt, 500) is None and sent(cn, 500) == []  # within a second: quiet
    cn.receive(pkt, 1500)
    assert len(sent(cn, 1500)) == 1
    cn.receive(BU_PACKET, 2000)
    sent(cn, 2000)
    kind, src, nh, payload = cn.receive(pkt, 2001)
    assert (kind, src, nh, bytes(payload)) == ("data", HOA, C.NH_UDP, udp)
    # HAO from another source than the registered CoA: refused
    assert cn.receive(build_ipv6(COA2, CN, C.NH_UDP, udp, hao=HOA), 3000) is None


def test_send_data_goes_direct_with_rh2_when_bound():
    cn = vector_cn()
    udp = build_udp(7, 5000, b"pong", src=CN, dst=HOA)
    p = decode_ipv6(data_to(cn, HOA, C.NH_UDP, udp, 0))
    assert (p.dst, p.rh2) == (HOA, None)
    cn.receive(BU_PACKET, 0)
    sent(cn, 0)
    p = decode_ipv6(data_to(cn, HOA, C.NH_UDP, udp, 1))
    assert (p.src, p.dst, p.rh2, bytes(p.payload)) == (CN, COA, HOA, udp)
    assert decode_ipv6(data_to(cn, HOA, C.NH_UDP, udp, 420000)).rh2 is None  # expired
    assert cn.get_timer() == 420000
    cn.handle_timer(420000)
    assert cn.bindings(420000) == [] and HOA not in cn.cache


def test_unknown_mh_type_gets_binding_error_2():
    cn = vector_cn()
    mh = M.UnknownMH(200, b"\0" * 10).encode(src=COA, dst=CN)
    cn.receive(build_ipv6(COA, CN, C.NH_MH, mh), 0)
    p, msg = mh_of(sent(cn, 0)[0])
    assert msg.status == 2 and p.dst == COA


def test_lifetime_is_capped_at_420s():
    cn = vector_cn()
    ht = rrcrypto.home_keygen_token(KCN, HOA, b"\x11" * 8)
    ct = rrcrypto.careof_keygen_token(KCN, COA, b"\x22" * 8)
    kbm = rrcrypto.kbm(ht, ct)
    mh = M.BindingUpdate(3, C.BU_A, 0xFFFF, [O.NonceIndices(5, 6), O.BindingAuthData(None)]).encode(
        src=HOA, dst=CN, mac=lambda d: rrcrypto.rr_authenticator(kbm, COA, CN, d))
    cn.receive(build_ipv6(COA, CN, C.NH_MH, mh, hao=HOA), 0)
    p, msg = mh_of(sent(cn, 0)[0])
    assert msg.status == 0 and msg.lifetime == 105


def test_a_full_binding_cache_answers_130(monkeypatch):
    import roam6_host.cn.core as core
    monkeypatch.setattr(core, "MAX_BINDINGS", 1)
    cn = vector_cn()
    cn.cache[COA2] = core.Binding(COA2, COA2, 1, 10 ** 9, 0)
    cn.receive(BU_PACKET, 0)
    p, msg = mh_of(sent(cn, 0)[0])
    assert msg.status == 130 and cn.binding(HOA, 0) is None


def test_nonces_rotate_and_age_out():
    cn = Correspondent(CN, kcn=KCN, nonce_period_ms=30000)
    hoti = build_ipv6(HOA, CN, C.NH_MH, M.HomeTestInit(b"\1" * 8).encode(src=HOA, dst=CN))
    idx = []
    for t in range(0, 300001, 10000):
        cn.receive(hoti, t)
        idx.append(mh_of(sent(cn, t)[0])[1].nonce_index)
    assert len(set(idx)) == 11  # a new index every 30 s
    # at 300 s the nonces made at 0 and 30 s are gone; the one made at 60 s lives until 300 s
    assert cn._nonce(idx[0], 300000) is None and cn._nonce(idx[3], 300000) is None
    assert cn._nonce(idx[6], 300000) is not None and cn._nonce(idx[6], 300001) is None
    assert max(t for _, t in cn.nonces.values()) - min(t for _, t in cn.nonces.values()) <= 240000


def test_seq_greater_window():
    assert seq_greater(16, 15) and not seq_greater(15, 15) and not seq_greater(0, 15)
    assert seq_greater(0, 65535) and not seq_greater(32783, 15) and seq_greater(32782, 15)


# ---- the MN core against the CN core --------------------------------------------------------

class Net:
    """Carries packets between the MN core and the CN core; counts what went which way."""

    def __init__(self, mn, cn):
        self.mn, self.cn = mn, cn
        self.log = []

    def run(self, now, rounds=8):
        for _ in range(rounds):
            out = self.mn.datagrams_to_send(now)
            for via, pkt in out:
                self.log.append((now, via, type(mh_of(pkt)[1]).__name__))
                self.cn.receive(pkt, now)
            back = sent(self.cn, now)
            for pkt in back:
                p = decode_ipv6(pkt)
                self.log.append((now, "cn", type(M.decode_mh(bytes(p.payload))).__name__))
                self.mn.receive(p.src, p.dst, bytes(p.payload), p.rh2, now)
            if not out and not back:
                return

    def kinds(self, since=0):
        return [k for t, v, k in self.log if t >= since and v != "cn"]


def mn_cn(policy="always"):
    mn = rr.RouteOptimizer(HOA, RoPolicy(policy))
    mn.move(COA, 0)
    cn = Correspondent(CN)
    return mn, cn, Net(mn, cn)


def test_mn_core_binds_with_cn_core_and_data_goes_direct():
    mn, cn, net = mn_cn()
    mn.note_traffic(CN, 0)
    net.run(0)
    assert net.kinds() == ["HomeTestInit", "CareofTestInit", "BindingUpdate"]
    assert cn.binding(HOA, 1).coa == COA and mn.route(CN, 1) == COA
    # the data path both ways
    udp = build_udp(5000, 7, b"x", src=HOA, dst=CN)
    kind, src, nh, payload = cn.receive(build_ipv6(mn.route(CN, 2), CN, C.NH_UDP, udp, hao=HOA), 2)
    assert src == HOA and bytes(payload) == udp
    assert decode_ipv6(data_to(cn, HOA, C.NH_UDP, udp, 3)).dst == COA


def test_roam_redoes_careof_half_and_home_token_is_reused():
    mn, cn, net = mn_cn()
    mn.note_traffic(CN, 0)
    net.run(0)
    hni = cn.binding(HOA, 0)
    mn.move(COA2, 100000)
    net.run(100000)
    assert net.kinds(100000) == ["CareofTestInit", "BindingUpdate"]
    assert cn.binding(HOA, 100000).coa == COA2 and mn.route(CN, 100000) == COA2
    assert hni is not None


def test_stale_home_token_gets_136_and_the_mn_recovers():
    """The MN keeps a home token for up to 210 s after receipt. A CN that rotates nonces more
    slowly than every 240 - 210 = 30 s can hand out a nonce that expires while the MN still
    trusts its token: the BU then meets BA 136 and the MN redoes the home half only."""
    mn, cn, net = mn_cn()
    cn.nonce_period_ms = 40000
    cn._nonce_index(0)  # the nonce of index N is made at t=0
    mn.note_traffic(CN, 39000)
    net.run(39000)  # HoT at 39 s carries nonce N
    assert mn.entries[CN].state == rr.BOUND
    mn.entries[CN].home.next_tx = 10 ** 9  # (leave out the MN's background renewal here)
    t = 39000 + 205000  # token 205 s old: valid for the MN; nonce 244 s old: expired at the CN
    mn.move(COA2, t)
    net.run(t)
    assert cn.stats["ba_error"] == 1  # the 136
    assert net.kinds(t) == ["CareofTestInit", "BindingUpdate", "HomeTestInit", "BindingUpdate"]
    assert cn.binding(HOA, t).coa == COA2 and mn.route(CN, t) == COA2


def test_cn_restart_means_136_for_the_old_home_token_then_a_fresh_one():
    mn, cn, net = mn_cn()
    mn.note_traffic(CN, 0)
    net.run(0)
    net.cn = cn2 = Correspondent(CN)  # new Kcn, no nonces: every index the MN holds is unknown
    mn.move(COA2, 5000)
    net.run(5000)
    assert cn2.stats["ba_error"] == 1
    # the CoT came from the new CN, so only the home nonce index is unknown to it: BA 136
    assert net.kinds(5000) == ["CareofTestInit", "BindingUpdate", "HomeTestInit", "BindingUpdate"]
    assert cn2.binding(HOA, 5000).coa == COA2 and mn.route(CN, 5000) == COA2


def test_cn_restart_unknown_binding_error_then_rebind():
    mn, cn, net = mn_cn()
    mn.note_traffic(CN, 0)
    net.run(0)
    net.cn = cn2 = Correspondent(CN)
    udp = build_udp(5000, 7, b"x", src=HOA, dst=CN)
    assert cn2.receive(build_ipv6(COA, CN, C.NH_UDP, udp, hao=HOA), 10) is None
    for pkt in sent(cn2, 10):
        p = decode_ipv6(pkt)
        assert mn.receive(p.src, p.dst, bytes(p.payload), p.rh2, 10)
    assert mn.route(CN, 10) is None  # back on the tunnel at once
    net.run(10)
    assert cn2.binding(HOA, 10).coa == COA and mn.route(CN, 10) == COA


def test_back_home_deregisters():
    mn, cn, net = mn_cn()
    mn.note_traffic(CN, 0)
    net.run(0)
    mn.home(1000)
    net.run(1000)
    assert net.kinds(1000) == ["BindingUpdate"] and cn.binding(HOA, 1000) is None
    assert mn.entries[CN].state == rr.IDLE


def test_privacy_mode_cn_never_learns_the_coa():
    mn, cn, net = mn_cn("never")
    for t in range(0, 30000, 500):
        mn.note_traffic(CN, t)
        net.run(t)
    assert net.log == [] and cn.cache == {} and cn.stats["cot"] == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 200))
def test_hostile_packets_never_raise(junk, cut):
    cn = vector_cn()
    cn.receive(junk, 0)
    cn.receive(BU_PACKET[:cut] + junk, 0)
    b = bytearray(BU_PACKET)
    for i, x in enumerate(junk[:20]):
        b[(x * 7 + i) % len(b)] ^= x
    cn.receive(bytes(b), 1)
    sent(cn, 1)
