"""Return routability, MN side (roam6.core.rr): docs/PROTOCOL-NOTES.md §10.3 vectors and virtual-clock runs
against the RFC-formula peer in rr_peer.py. Times are ms."""
from roam6.core import rr
from roam6.core.ro_policy import RoPolicy, policy_from_config
from roam6_codec import mh as M
from roam6_codec import mhopts as O
from roam6.wire.ipv6 import decode_ipv6
from rr_peer import CN, COA, COA2, HOA, Peer
from support import raises, unhex

BU_PACKET = ("6000000000383c4020010db800020000000000000000020020010db8000300000000000000000300"
             "870201020000c91020010db80001000000000000000001003b030500e269000180000069040400050006050c"
             "1f546d90e3044a169eec9b03")
BA_PACKET = ("6000000000382b4020010db800030000000000000000030020010db8000200000000000000000200"
             "870202010000000020010db80001000000000000000001003b0306005761000000010069010400000000050c"
             "8448ed2faf4ad55158c5b229")
DEREG_MH = "3b030500d5ad000280000000040400050000050cd4632e23d0ecc43c6ff9f96f"


class Rand:
    """Deterministic os.urandom stand-in: the first 2-byte draw (the BU sequence seed) is 0."""

    def __init__(self):
        self.n = 0

    def __call__(self, k):
        self.n += 1
        if k == 2 and self.n == 1:
            return b"\0\0"
        return bytes([(self.n * 7 + i) & 0xFF for i in range(k)])


def new_mn(mode="always", coa=COA):
    mn = rr.RouteOptimizer(HOA, RoPolicy(mode), rand=Rand())
    mn.move(coa, 0)
    return mn


def exchange(mn, peer, now, rounds=6):
    """Let MN and peer talk at time `now` until nothing more is sent."""
    for _ in range(rounds):
        out = mn.datagrams_to_send(now)
        if not out:
            return
        for src, dst, mh, rh2 in peer.feed(out):
            mn.receive(src, dst, mh, rh2, now)


def bind(mn, peer, now=0):
    mn.note_traffic(CN, now)
    exchange(mn, peer, now)
    assert mn.entries[CN].state == rr.BOUND, mn.entries[CN].state


def events(mn):
    out = []
    while True:
        e = mn.next_event()
        if e is None:
            return out
        out.append(e)


def test_vectors_bu_and_ba_through_the_mn():
    mn = new_mn()
    mn.note_traffic(CN, 0)
    out = mn.datagrams_to_send(0)
    assert [v for v, _ in out] == ["home", "direct"]  # HoTI through the HA, CoTI direct
    hoti, coti = decode_ipv6(out[0][1]), decode_ipv6(out[1][1])
    assert (hoti.src, hoti.dst, hoti.hao) == (HOA, CN, None)
    assert (coti.src, coti.dst, coti.hao) == (COA, CN, None)
    c1 = M.decode_mh(bytes(hoti.payload)).cookie
    c2 = M.decode_mh(bytes(coti.payload)).cookie
    # HoT/CoT with the §10.3 tokens (nonce indices 5 and 6)
    hot = M.HomeTest(5, c1, unhex("c71a754160cffb9a")).encode(src=CN, dst=HOA)
    cot = M.CareofTest(6, c2, unhex("e24f4365fdaeafa7")).encode(src=CN, dst=COA)
    assert mn.receive(CN, HOA, hot, None, 10)
    assert mn.datagrams_to_send(10) == []  # still missing the care-of token
    assert mn.receive(CN, COA, cot, None, 20)
    out = mn.datagrams_to_send(20)
    assert out == [("direct", unhex(BU_PACKET))]
    assert mn.route(CN, 20) is None  # no BA yet
    ba = decode_ipv6(unhex(BA_PACKET))
    assert mn.receive(ba.src, ba.dst, bytes(ba.payload), ba.rh2, 30)
    assert mn.entries[CN].state == rr.BOUND
    assert mn.route(CN, 31) == COA
    ev = events(mn)
    kind, cn, _coa, _seq, lifetime, rr_ms = ev[0]
    assert kind == "ro_bound" and cn == CN and rr_ms == 30 and lifetime == 420


def test_vector_deregistration_from_home():
    mn = new_mn()
    peer = Peer()
    bind(mn, peer)
    assert peer.last_bu[2].seq == 1
    mn.home(5000)  # home token (5 s old) is reused: no HoTI
    out = mn.datagrams_to_send(5000)
    assert len(out) == 1 and out[0][0] == "home"
    p = decode_ipv6(out[0][1])
    assert (p.src, p.dst, p.hao) == (HOA, CN, None)
    assert bytes(p.payload) == unhex(DEREG_MH)
    assert mn.route(CN, 5000) is None
    for src, dst, mh, rh2 in peer.feed(out):
        assert rh2 is None and dst == HOA
        assert mn.receive(src, dst, mh, rh2, 5001)
    assert mn.entries[CN].state == rr.IDLE
    assert [e[0] for e in events(mn)] == ["ro_bound", "ro_dereg"]


def test_retransmissions_use_fresh_cookies_and_back_off_then_give_up():
    mn = new_mn()
    mn.note_traffic(CN, 0)
    cookies, times = [], []
    now = 0
    while mn.entries[CN].state != rr.FAILED:
        for via, pkt in mn.datagrams_to_send(now):
            msg = M.decode_mh(bytes(decode_ipv6(pkt).payload))
            if type(msg) is M.HomeTestInit:
                cookies.append(msg.cookie)
                times.append(now)
        now = mn.get_timer()
        mn.handle_timer(now)
    assert times == [0, 1000, 3000, 7000]  # 1 + MAX_RO_FAILURE transmissions, 1 s doubling
    assert len(set(cookies)) == 4
    assert mn.entries[CN].state == rr.FAILED and now == 15000
    assert [e[0] for e in events(mn)] == ["ro_failed"]
    assert mn.route(CN, now) is None
    # hold-down over: it tries again
    mn.handle_timer(now + rr.HOLDDOWN_MS)
    assert mn.entries[CN].state == rr.RR
    assert len(mn.datagrams_to_send(now + rr.HOLDDOWN_MS)) == 2


def test_answer_to_an_older_cookie_is_ignored():
    mn = new_mn()
    peer = Peer()
    mn.note_traffic(CN, 0)
    first = mn.datagrams_to_send(0)
    answers = peer.feed(first)
    mn.handle_timer(1000)  # retransmission: fresh cookies
    assert len(mn.datagrams_to_send(1000)) == 2
    for src, dst, mh, rh2 in answers:  # the answers to the first cookies arrive late
        assert not mn.receive(src, dst, mh, rh2, 1100)
    assert mn.entries[CN].home.token is None and mn.entries[CN].careof.token is None


def test_move_redoes_only_the_careof_half_and_reuses_the_home_token():
    mn = new_mn()
    peer = Peer()
    bind(mn, peer)
    home_tok = mn.entries[CN].home.token
    peer.seen = []
    peer.coni = 5  # the CN moved on to another nonce meanwhile
    mn.move(COA2, 60000)
    assert mn.route(CN, 60000) is None  # old CoA: tunnel until the new BA
    exchange(mn, peer, 60000)
    assert peer.kinds() == ["CareofTestInit", "BindingUpdate"]
    via, p, bu = peer.seen[1]
    assert p.src == COA2 and p.hao == HOA and via == "direct"
    assert bu.find(O.NonceIndices).home == 5 and bu.find(O.NonceIndices).careof == 5
    assert mn.entries[CN].home.token == home_tok
    assert mn.route(CN, 60001) == COA2
    ev = events(mn)
    kind, _cn, coa, _seq, _lifetime, rr_ms = ev[-1]
    assert kind == "ro_bound" and coa == COA2 and rr_ms == 0


def test_back_to_the_old_coa_while_a_bu_for_another_was_out_is_not_direct():
    # found by tests/cn/test_ro_property.py: bound at COA, BU for COA2 sent (the CN takes it),
    # back at COA before its BA: the CN no longer holds COA, so data must not go direct
    mn = new_mn()
    peer = Peer()
    bind(mn, peer)
    mn.move(COA2, 1000)
    exchange(mn, peer, 1000, rounds=1)          # CoTI -> CoT
    out = mn.datagrams_to_send(1000)            # the BU for COA2 ...
    assert [M.decode_mh(bytes(decode_ipv6(p).payload)).__class__.__name__ for _, p in out] == ["BindingUpdate"]
    peer.feed(out)                              # ... which the CN takes; its BA is lost
    mn.move(COA, 1100)
    assert mn.route(CN, 1100) is None


def test_move_after_token_lifetime_redoes_both_halves():
    mn = new_mn()
    peer = Peer()
    bind(mn, peer)
    e = mn.entries[CN]
    # the background renewal of the home token goes unanswered
    t = rr.MAX_TOKEN_LIFETIME_MS - rr.TOKEN_MARGIN_MS
    mn.handle_timer(t)
    assert [M.decode_mh(bytes(decode_ipv6(p).payload)).__class__.__name__
            for _, p in mn.datagrams_to_send(t)] == ["HomeTestInit"]
    assert e.state == rr.BOUND and mn.route(CN, t) == COA  # data stays direct meanwhile
    peer.seen = []
    now = rr.MAX_TOKEN_LIFETIME_MS + 1
    mn.move(COA2, now)
    exchange(mn, peer, now)
    assert sorted(peer.kinds()) == ["BindingUpdate", "CareofTestInit", "HomeTestInit"]
    assert e.state == rr.BOUND and mn.route(CN, now) == COA2


def test_home_token_renewed_in_background_so_refresh_needs_careof_only():
    mn = new_mn()
    peer = Peer()
    bind(mn, peer)
    t = rr.MAX_TOKEN_LIFETIME_MS - rr.TOKEN_MARGIN_MS
    assert mn.get_timer() == t
    mn.handle_timer(t)
    peer.seen = []
    exchange(mn, peer, t)
    assert peer.kinds() == ["HomeTestInit"]
    assert mn.entries[CN].home.t == t
    t2 = t + rr.MAX_TOKEN_LIFETIME_MS - rr.TOKEN_MARGIN_MS  # and again before that one ages
    assert mn.get_timer() == t2
    mn.handle_timer(t2)
    exchange(mn, peer, t2)
    # binding refresh before the 420 s lifetime ends: CoTI + BU only
    refresh = 420000 - rr.REFRESH_MARGIN_MS
    assert mn.get_timer() == refresh
    peer.seen = []
    mn.handle_timer(refresh)
    exchange(mn, peer, refresh)
    assert peer.kinds() == ["CareofTestInit", "BindingUpdate"]
    assert mn.route(CN, 420001) == COA  # refreshed: still direct past the first lifetime


def test_ba_expired_nonce_statuses_redo_the_right_halves():
    for status, redo in ((136, ["HomeTestInit"]), (137, ["CareofTestInit"]),
                         (138, ["HomeTestInit", "CareofTestInit"])):
        mn = new_mn()
        peer = Peer()
        peer.status = status
        mn.note_traffic(CN, 0)
        exchange(mn, peer, 0, rounds=2)  # inits -> tokens -> BU -> BA status
        assert mn.entries[CN].state == rr.RR, status
        peer.seen = []
        peer.status = 0
        exchange(mn, peer, 0)
        assert sorted(peer.kinds()) == sorted(redo + ["BindingUpdate"]), (status, peer.kinds())
        assert mn.entries[CN].state == rr.BOUND


def test_repeated_expired_nonces_give_up_after_max_ro_failure():
    mn = new_mn()
    peer = Peer()
    peer.status = 138
    mn.note_traffic(CN, 0)
    now = 0
    while now < 5000 and mn.entries[CN].state != rr.FAILED:
        exchange(mn, peer, now)
        now += 400  # the rate limit holds back the 4th BU in the same second
        mn.handle_timer(now)
    assert mn.entries[CN].state == rr.FAILED
    assert peer.kinds().count("BindingUpdate") == rr.MAX_RO_FAILURE
    assert mn.route(CN, now) is None


def test_rate_limit_three_per_second_per_type():
    mn = new_mn()
    mn.note_traffic(CN, 0)
    sent = []
    addrs = [COA, COA2]
    for i in range(10):  # ten moves within 900 ms
        now = i * 100
        mn.move(addrs[i % 2], now)
        for via, pkt in mn.datagrams_to_send(now):
            msg = M.decode_mh(bytes(decode_ipv6(pkt).payload))
            sent.append((now, type(msg).__name__))
    cotis = [t for t, k in sent if k == "CareofTestInit"]
    assert len(cotis) == 3 and cotis == [0, 100, 200], cotis
    # the held-back CoTI goes as soon as the window allows it
    assert mn.get_timer() == 1000
    mn.handle_timer(1000)
    out = [type(M.decode_mh(bytes(decode_ipv6(p).payload))).__name__ for _, p in mn.datagrams_to_send(1000)]
    assert "CareofTestInit" in out


def test_binding_error_1_falls_back_to_the_tunnel_and_reruns_rr():
    mn = new_mn()
    peer = Peer()
    bind(mn, peer)
    assert mn.route(CN, 100) == COA
    src, dst, mh, rh2 = peer.be(HOA)
    assert mn.receive(src, dst, mh, rh2, 100)
    assert mn.route(CN, 100) is None
    assert mn.entries[CN].state == rr.BU_SENT  # tokens still valid: a new BU at once
    peer.seen = []
    exchange(mn, peer, 100)
    assert peer.kinds() == ["BindingUpdate"]
    assert mn.route(CN, 101) == COA
    # a Binding Error for another home address is not ours
    src, dst, mh, rh2 = peer.be(COA)
    assert not mn.receive(src, dst, mh, rh2, 200)


def test_binding_error_2_means_no_ro_with_that_cn():
    mn = new_mn()
    peer = Peer()
    mn.note_traffic(CN, 0)
    mn.datagrams_to_send(0)
    src, dst, mh, rh2 = peer.be(HOA, status=2)
    assert mn.receive(src, dst, mh, rh2, 10)
    assert mn.entries[CN].state == rr.FAILED
    assert mn.get_timer() == 10 + rr.NO_RO_HOLDDOWN_MS


def test_forged_ba_is_ignored_and_the_bu_retransmitted_with_a_new_seq():
    mn = new_mn()
    peer = Peer()
    peer.status = None
    mn.note_traffic(CN, 0)
    for src, dst, mh, rh2 in peer.feed(mn.datagrams_to_send(0)):
        mn.receive(src, dst, mh, rh2, 0)
    p = decode_ipv6(mn.datagrams_to_send(0)[0][1])
    bu = M.decode_mh(bytes(p.payload))
    hoa, coa, kbm = peer.bu_kbm(p, bu)
    src, dst, mh, rh2 = peer.ba(hoa, coa, kbm, bu.seq, 0, bu.lifetime, forge=True)
    assert not mn.receive(src, dst, mh, rh2, 5)
    assert mn.entries[CN].state == rr.BU_SENT and mn.route(CN, 5) is None
    # BA for a sequence number never sent: ignored too
    src, dst, mh, rh2 = peer.ba(hoa, coa, kbm, (bu.seq + 7) & 0xFFFF, 0, bu.lifetime)
    assert not mn.receive(src, dst, mh, rh2, 6)
    mn.handle_timer(1000)
    bu2 = M.decode_mh(bytes(decode_ipv6(mn.datagrams_to_send(1000)[0][1]).payload))
    assert bu2.seq == (bu.seq + 1) & 0xFFFF


def test_seq_out_of_window_resends_above_the_cns_number():
    mn = new_mn()
    peer = Peer()
    peer.status = None
    mn.note_traffic(CN, 0)
    for src, dst, mh, rh2 in peer.feed(mn.datagrams_to_send(0)):
        mn.receive(src, dst, mh, rh2, 0)
    p = decode_ipv6(mn.datagrams_to_send(0)[0][1])
    bu = M.decode_mh(bytes(p.payload))
    hoa, coa, kbm = peer.bu_kbm(p, bu)
    # a BA 135 names the CN's last accepted number (RFC 6275 §9.5.1); unauthenticated: ignored
    src, dst, mh, rh2 = peer.ba(hoa, coa, kbm, 500, 135, 0, forge=True)
    assert not mn.receive(src, dst, mh, rh2, 1)
    src, dst, mh, rh2 = peer.ba(hoa, coa, kbm, 500, 135, 0)
    assert mn.receive(src, dst, mh, rh2, 1)
    bu2 = M.decode_mh(bytes(decode_ipv6(mn.datagrams_to_send(1)[0][1]).payload))
    assert bu2.seq == 501
    assert mn.entries[CN].state == rr.BU_SENT


def test_privacy_never_sends_nothing_and_keeps_the_tunnel():
    mn = rr.RouteOptimizer(HOA, policy_from_config({"default": "always", "cns": {
        "2001:db8:3::300": "never"}}), rand=Rand())
    mn.move(COA, 0)
    for t in range(0, 20000, 100):
        mn.note_traffic(CN, t)
        assert mn.datagrams_to_send(t) == []
        assert mn.route(CN, t) is None
    assert mn.get_timer() is None and CN not in mn.entries


def test_auto_waits_for_a_busy_cn():
    mn = new_mn("auto")
    for t in (0, 3000, 6000, 9000):
        mn.note_traffic(CN, t)
        assert mn.datagrams_to_send(t) == []
    mn.note_traffic(CN, 9500)  # 5 packets within 10 s
    assert len(mn.datagrams_to_send(9500)) == 2


def test_auto_lets_a_quiet_cns_binding_lapse():
    mn = new_mn("auto")
    peer = Peer()
    for t in range(5):
        mn.note_traffic(CN, t)
    exchange(mn, peer, 4)
    assert mn.entries[CN].state == rr.BOUND
    t = 420000 - rr.REFRESH_MARGIN_MS + 4
    mn.handle_timer(rr.MAX_TOKEN_LIFETIME_MS - rr.TOKEN_MARGIN_MS + 4)
    mn.datagrams_to_send(t)
    mn.handle_timer(t)  # no traffic for far longer than AUTO_IDLE_MS: no refresh
    assert mn.entries[CN].state == rr.IDLE
    assert mn.datagrams_to_send(t) == []
    # moving while the CN may still hold the old binding: delete it (through the tunnel)
    mn.move(COA2, t + 1000)
    out = mn.datagrams_to_send(t + 1000)
    kinds = [type(M.decode_mh(bytes(decode_ipv6(p).payload))).__name__ for _, p in out]
    assert mn.entries[CN].state == rr.DEREG and kinds == ["HomeTestInit"]


def test_ipv4_only_network_deletes_the_binding_through_the_tunnel():
    mn = new_mn()
    peer = Peer()
    bind(mn, peer)
    peer.seen = []
    mn.move(b"\xc0\x00\x02\x64", 1000)  # an IPv4 CoA
    assert mn.route(CN, 1000) is None
    exchange(mn, peer, 1000)
    assert peer.kinds() == ["BindingUpdate"]
    via, p, bu = peer.seen[0]
    assert via == "home" and p.src == HOA and p.hao is None and bu.lifetime == 0
    assert mn.entries[CN].state == rr.IDLE
    mn.note_traffic(CN, 2000)
    assert mn.datagrams_to_send(2000) == []


def test_policy_config_errors_name_the_field():
    assert policy_from_config(None).mode(CN) == "auto"
    p = policy_from_config({"default": "never", "cns": {"2001:db8:3::300": "always"}})
    assert p.mode(CN) == "always" and p.mode(COA) == "never"
    e = raises(ValueError, policy_from_config, {"default": "sometimes"})
    assert "ro.default" in str(e) and "sometimes" in str(e)
    e = raises(ValueError, policy_from_config, {"cns": {"not-an-address": "never"}})
    assert "ro.cns" in str(e) and "not-an-address" in str(e)
    e = raises(ValueError, policy_from_config, {"cns": {"2001:db8::1": "maybe"}})
    assert "2001:db8::1" in str(e)
    e = raises(ValueError, policy_from_config, {"defualt": "auto"})
    assert "defualt" in str(e)


def test_garbage_never_raises():
    mn = new_mn()
    peer = Peer()
    bind(mn, peer)
    for junk in (b"", b"\x3b", b"\x3b\x00\x03\x00\x00\x00\x00\x00", bytes(range(40)),
                 b"\x3b\x05\x06\x00" + bytes(44)):
        assert mn.receive(CN, COA, junk, HOA, 10) is False
    assert mn.route(CN, 10) == COA


def test_binding_refresh_request_starts_a_refresh_and_data_stays_direct():
    mn = new_mn()
    peer = Peer()
    bind(mn, peer)
    brr = M.BindingRefreshRequest().encode(src=CN, dst=HOA)
    assert mn.receive(CN, COA, brr, HOA, 50000)
    assert mn.route(CN, 50000) == COA
    peer.seen = []
    exchange(mn, peer, 50000)
    assert peer.kinds() == ["BindingUpdate"]  # both tokens still young: a BU at once
    assert mn.entries[CN].state == rr.BOUND and mn.entries[CN].bound_until == 50000 + 420000


def test_every_transition_names_a_known_state():
    states = set(rr.TRANSITIONS)
    assert states == {rr.IDLE, rr.RR, rr.BU_SENT, rr.BOUND, rr.DEREG, rr.FAILED}
    for s, moves in rr.TRANSITIONS.items():
        for ev, nxt in moves.items():
            assert nxt in states, (s, ev, nxt)


def test_outbound_adds_the_hao_when_bound_and_keeps_the_checksum():
    from roam6_codec.udp import build_udp, udp_checksum_ok
    from roam6.wire.ipv6 import build_ipv6
    mn = new_mn()
    peer = Peer()
    udp = build_udp(9000, 9002, b"R6PD....", src=HOA, dst=CN)
    pkt = build_ipv6(HOA, CN, 17, udp)
    assert mn.outbound(pkt, 0) == ("home", pkt)  # no binding yet (and this starts RR: "always")
    exchange(mn, peer, 0)
    via, out = mn.outbound(pkt, 1)
    p = decode_ipv6(out)
    assert via == "direct" and (p.src, p.dst, p.hao, p.nh) == (COA, CN, HOA, 17)
    assert bytes(p.payload) == udp and udp_checksum_ok(HOA, CN, bytes(p.payload))
    assert mn.outbound(out, 2) == ("home", out)  # packets with extension headers are left alone


def test_inbound_rh2_data_becomes_the_hosts_packet_and_mh_is_consumed():
    from roam6_codec.udp import build_udp
    from roam6.wire.ipv6 import build_ipv6
    mn = new_mn()
    peer = Peer()
    bind(mn, peer)
    udp = build_udp(9002, 9000, b"R6PD....", src=CN, dst=HOA)
    got = mn.inbound(build_ipv6(CN, COA, 17, udp, rh2=HOA), 5)
    p = decode_ipv6(got)
    assert (p.src, p.dst, p.rh2, bytes(p.payload)) == (CN, HOA, None, udp)
    assert mn.inbound(build_ipv6(CN, COA, 17, udp, rh2=COA2), 5) is None  # RH2 for someone else
    plain = build_ipv6(CN, HOA, 17, udp)
    assert mn.inbound(plain, 5) == plain  # through the tunnel: as it is
    # a BRR from the CN is consumed; a BA from the HA (no entry) is left for the registration
    brr = build_ipv6(CN, COA, 135, M.BindingRefreshRequest().encode(src=CN, dst=HOA), rh2=HOA)
    assert mn.inbound(brr, 6) is None
    ha = unhex("20010db800aa00000000000000000001")
    ba = build_ipv6(ha, HOA, 135, M.BindingAck(0, 0, 1, 10, []).encode(src=ha, dst=HOA))
    assert mn.inbound(ba, 6) == ba


def test_the_ha_multicast_and_link_local_are_never_correspondents():
    ha = unhex("20010db800aa00000000000000000001")
    mn = rr.RouteOptimizer(HOA, RoPolicy("always"), rand=Rand(), no_ro=[ha])
    mn.move(COA, 0)
    for dst in (ha, unhex("ff020000000000000000000000010002"), unhex("fe800000000000000000000000000001")):
        mn.note_traffic(dst, 0)
    assert mn.entries == {} and mn.datagrams_to_send(0) == []


def test_a_move_sends_a_hoti_in_flight_again_within_the_rate_limit():
    mn = new_mn()
    mn.note_traffic(CN, 0)
    assert len(mn.datagrams_to_send(0)) == 2
    kinds = []
    for i, coa in enumerate((COA2, COA, COA2)):
        t = 100 * (i + 1)
        mn.move(coa, t)
        kinds += [type(M.decode_mh(bytes(decode_ipv6(p).payload))).__name__ for _, p in mn.datagrams_to_send(t)]
    # the HoT of a HoTI sent before a move may be tunnelled to the old CoA: send it again, but
    # never more than MAX_UPDATE_RATE of a kind in a second (the first ones went at t=0)
    assert kinds.count("HomeTestInit") == 2 and kinds.count("CareofTestInit") == 2, kinds


def test_deregistration_outstanding_is_resent_when_the_path_changes():
    mn = new_mn()
    peer = Peer()
    bind(mn, peer)
    mn.move(None, 1000)  # detached (or IPv4 only): deregister through the tunnel
    first = mn.datagrams_to_send(1000)
    assert [type(M.decode_mh(bytes(decode_ipv6(p).payload))).__name__ for _, p in first] == ["BindingUpdate"]
    mn.home(1200)  # that BU may have been lost on the way: again now
    again = mn.datagrams_to_send(1200)
    assert len(again) == 1 and again[0][0] == "home"
    bu = M.decode_mh(bytes(decode_ipv6(again[0][1]).payload))
    assert bu.lifetime == 0 and bu.seq == (M.decode_mh(bytes(decode_ipv6(first[0][1]).payload)).seq + 1) & 0xFFFF


def test_an_expired_token_leaves_no_deadline_in_the_past():
    mn = new_mn()
    peer = Peer()
    bind(mn, peer)
    e = mn.entries[CN]
    e.home.next_tx = 10 ** 9  # (no background renewal: let the home token age out)
    t = rr.MAX_TOKEN_LIFETIME_MS + 5000
    mn.move(COA2, t)  # RR again, with an expired home token
    mn.datagrams_to_send(t)
    for _ in range(50):  # a driver loop: the timer always moves forward
        d = mn.get_timer()
        assert d is None or d > t, (d, t)
        t = d
        mn.handle_timer(t)
        mn.datagrams_to_send(t)
        if d is None:
            break


def test_queued_signalling_makes_the_deadline_now():
    mn = new_mn()
    mn.note_traffic(CN, 123)  # starts RR; a driver that only looks at its timer must see it
    assert mn.get_timer() == 123
    assert len(mn.datagrams_to_send(123)) == 2
    assert mn.get_timer() == 1123  # then the retransmission


def test_inbound_data_counts_for_auto():
    from roam6_codec.udp import build_udp
    from roam6.wire.ipv6 import build_ipv6
    mn = new_mn("auto")
    pkt = build_ipv6(CN, HOA, 17, build_udp(9002, 9000, b"R6PD", src=CN, dst=HOA))
    for t in range(4):
        assert mn.inbound(pkt, t) == pkt
    assert mn.datagrams_to_send(4) == []
    mn.inbound(pkt, 5)  # the 5th within 10 s: a busy peer
    assert len(mn.datagrams_to_send(5)) == 2


def test_a_bad_mh_checksum_is_dropped():
    mn = new_mn()
    mn.note_traffic(CN, 0)
    out = mn.datagrams_to_send(0)
    cookie = M.decode_mh(bytes(decode_ipv6(out[0][1]).payload)).cookie
    hot = bytearray(M.HomeTest(5, cookie, unhex("c71a754160cffb9a")).encode(src=CN, dst=HOA))
    hot[5] ^= 1
    assert not mn.receive(CN, HOA, bytes(hot), None, 1)
    hot[5] ^= 1
    assert mn.receive(CN, HOA, bytes(hot), None, 1)


class HomeReg:
    """The home registration as the RouteOptimizer asks for it: its end (ms), None if not bound."""

    def __init__(self, end=None):
        self.end = end

    def __call__(self):
        return self.end


def new_mn_with_home(end):
    home = HomeReg(end)
    mn = rr.RouteOptimizer(HOA, RoPolicy("always"), rand=Rand(), home_expiry=home)
    mn.move(COA, 0)
    return mn, home


def test_bu_lifetime_is_no_longer_than_the_home_registration_has_left():
    # RFC 6275 §11.7.2: 103.999 s of home registration left -> 25 units (100 s), rounded down
    mn, home = new_mn_with_home(103999)
    peer = Peer()
    bind(mn, peer)
    assert peer.last_bu[2].lifetime == 25
    e = mn.entries[CN]
    assert e.bound_until == 100000 and mn.route(CN, 99999) == COA and mn.route(CN, 100000) is None
    kind, _cn, _coa, _seq, lifetime, _rr_ms = events(mn)[-1]
    assert kind == "ro_bound" and lifetime == 100
    # the home registration was refreshed meanwhile: MAX_RR_BINDING_LIFETIME is the limit again
    home.end = e.refresh_at + 600000
    peer.last_bu = None
    mn.handle_timer(e.refresh_at)
    exchange(mn, peer, e.refresh_at)
    assert peer.last_bu[2].lifetime == rr.MAX_RR_BINDING_LIFETIME_MS // 4000
    assert e.state == rr.BOUND


def test_no_bu_to_a_cn_while_the_home_registration_is_not_bound():
    mn, home = new_mn_with_home(None)
    peer = Peer()
    mn.note_traffic(CN, 0)
    exchange(mn, peer, 0)
    e = mn.entries[CN]
    assert peer.kinds() == ["HomeTestInit", "CareofTestInit"]  # the tokens, but no BU
    assert e.state == rr.BU_SENT and mn.route(CN, 0) is None
    t = mn.get_timer()  # a re-check, not a retransmission
    assert t == rr.INITIAL_TIMEOUT_MS
    mn.handle_timer(t)
    assert mn.datagrams_to_send(t) == [] and e.bu_tries == 0
    home.end = t + 3999  # less than one 4 s unit left is no lifetime to give either
    mn.home_changed(t)
    assert mn.datagrams_to_send(t) == []
    home.end = t + 10 + 300000  # the HA accepted the home registration: the BU goes at once
    mn.home_changed(t + 10)
    exchange(mn, peer, t + 10)
    assert peer.kinds() == ["HomeTestInit", "CareofTestInit", "BindingUpdate"]
    assert peer.last_bu[2].lifetime == 75 and e.state == rr.BOUND
    assert mn.route(CN, t + 11) == COA


def test_deregistration_bu_does_not_wait_for_the_home_registration():
    mn, home = new_mn_with_home(600000)
    peer = Peer()
    bind(mn, peer)
    home.end = None  # at home: the registration is gone, the CN's binding must still go
    mn.home(5000)
    exchange(mn, peer, 5000)
    assert peer.last_bu[2].lifetime == 0 and mn.entries[CN].state == rr.IDLE
