"""The binding cache's rules (cache.BU_RULES) driven with a virtual clock: every status path,
sequence and replay windows, lifetime cap, NAT detection, refresh advice, expiry."""
import pytest

from roam6_codec import consts as C
from roam6_codec import mhopts as mo

from roam6_host.ha.cache import (BU_RULES, NO_KEEPALIVE, NTP_EPOCH, BindingAdded, BindingMoved,
                                 BindingRefreshed, BindingRemoved, BUDropped, BURejected)

from ha_helpers import (COA6, HA, HOA, HOA2, KEY, KEY2, NAI, NAI2, NAT_SRC, SPI, SPI2, T0, V4COA, V4MAPPED,
                     a4, a6, build_bu, bu4, exchange, make_cache, ntp_timestamp, parse_ba)

MAC4 = V4MAPPED + V4COA


def register(c, seq=1, now=T0, src=NAT_SRC, **kw):
    outs = exchange(c, bu4(seq, now=now, **kw), src, now)
    assert len(outs) == 1
    _pkt, ba = parse_ba(outs[0][0], mac_coa=MAC4)
    return outs[0], ba


def events(c, kind=None):
    evs = c.events()
    return [e for e in evs if kind is None or isinstance(e, kind)]


def test_rules_table_follows_protocols_section_11_order():
    names = [n for _v, n in BU_RULES]
    assert names.index("auth") < names.index("ts_window") < names.index("sequence") \
        < names.index("reg_type") < names.index("home_subnet")
    statuses = {n: v for v, n in BU_RULES}
    assert (statuses["auth"], statuses["ts_window"], statuses["ts_required"], statuses["sequence"],
            statuses["reg_type"], statuses["home_subnet"], statuses["dereg_bound"]) == (146, 144, 145, 135, 139, 132,
                                                                                        133)
    assert statuses["spi"] == statuses["nai"] == statuses["mn_id"] == "drop"


def test_udp4_registration_behind_nat():
    c = make_cache()
    (datagram, (transport, host, port)), ba = register(c)
    assert (transport, (host, port)) == ("udp4", ("198.18.12.2", 40001))       # reply to the NAT mapping
    pkt, _ = parse_ba(datagram)
    assert pkt.src == HA and pkt.dst == HOA and pkt.rh2 is None
    assert ba.status == 0 and ba.seq == 1 and ba.lifetime == 150
    assert isinstance(ba.options[0], mo.MNIdentifier) and ba.options[0].identifier == NAI
    assert ba.find(mo.ReplayProtection).timestamp == ntp_timestamp(T0, 0x1234)   # echoed exactly
    nd = ba.find(mo.NATDetection)
    assert nd.force and nd.refresh == 110                                  # NAT seen: keepalives
    assert 0 < ba.find(mo.BindingRefreshAdvice).interval < ba.lifetime
    (ev,) = events(c)
    assert isinstance(ev, BindingAdded) and ev.binding.hoa == HOA
    b = c.bindings[HOA]
    assert b.peer == ("198.18.12.2", 40001) and b.transport == "udp4" and b.nat
    assert b.coa == MAC4 and b.expires == T0 + 600_000 and c.get_timer() == T0 + 600_000


def test_udp4_without_nat_needs_no_keepalives():
    c = make_cache()
    _out, ba = register(c, src=("udp4", "192.0.2.100", 4191))
    assert ba.find(mo.NATDetection).refresh == NO_KEEPALIVE
    assert not c.bindings[HOA].nat


def test_udp6_uses_outer_source_as_coa():
    c = make_cache()
    bu = build_bu(KEY, SPI, NAI, HOA, HA, 1, 150, "udp6", coa=COA6)
    (out,) = exchange(c, bu, ("udp6", "2001:db8:a1::100", 50000), T0)
    assert out[1] == ("udp6", "2001:db8:a1::100", 50000)
    _pkt, ba = parse_ba(out[0], mac_coa=COA6)
    assert ba.status == 0 and ba.find(mo.NATDetection).refresh == 110
    assert ba.find(mo.ReplayProtection) is None                          # none sent, none echoed
    # the MAC covers the outer source: the same BU seen from another address fails
    c2 = make_cache()
    (out,) = exchange(c2, bu, ("udp6", "2001:db8:a1::999", 50000), T0)
    assert parse_ba(out[0], mac_coa=a6("2001:db8:a1::999"))[1].status == 146


def test_ip6_native_bu_gets_ba_with_type2_routing_header():
    c = make_cache()
    bu = build_bu(KEY, SPI, NAI, HOA, HA, 1, 150, "ip6", coa=COA6)
    (out,) = exchange(c, bu, ("ip6", "2001:db8:a1::100", 0), T0)
    assert out[1] == ("ip6", "2001:db8:a1::100", 0)
    pkt, ba = parse_ba(out[0], mac_coa=COA6)
    assert pkt.dst == COA6 and pkt.rh2 == HOA and ba.status == 0
    assert ba.find(mo.NATDetection) is None                              # not over UDP
    assert c.bindings[HOA].transport == "ip6"


def test_ip6_alternate_coa_is_the_registered_coa():
    c = make_cache()
    alt = a6("2001:db8:c1::5")
    bu = build_bu(KEY, SPI, NAI, HOA, HA, 1, 150, "ip6", coa=COA6, alt_coa=alt)
    (out,) = exchange(c, bu, ("ip6", "2001:db8:a1::100", 0), T0)
    pkt, ba = parse_ba(out[0], mac_coa=alt)
    assert pkt.dst == alt and c.bindings[HOA].peer == ("2001:db8:c1::5", 0)


# ---- sequence window (RFC 6275 §9.5.1) -----------------------------------------------------------
@pytest.mark.parametrize("last,new,ok", [
    (1, 2, True), (1, 1, False), (1, 0, False), (100, 99, False),
    (65535, 0, True), (65530, 3, True),                    # wrap-around
    (15, 32783, False), (15, 32782, True),                 # 15 + 32768 is "not greater"
    (40000, 7232, False), (40000, 7231, True),
])
def test_sequence_window_mod_2_16(last, new, ok):
    c = make_cache()
    register(c, seq=last)
    c.events()
    (out,) = exchange(c, bu4(new, now=T0 + 1000), NAT_SRC, T0 + 1000)
    _pkt, ba = parse_ba(out[0], mac_coa=MAC4)
    if ok:
        assert ba.status == 0 and ba.seq == new and c.bindings[HOA].seq == new
    else:
        assert ba.status == C.BA_SEQ_OUT_OF_WINDOW and ba.seq == last    # the last accepted one
        assert c.bindings[HOA].seq == last
        assert isinstance(events(c)[0], BURejected)


def test_any_sequence_is_accepted_without_binding():
    for seq in (0, 1, 32768, 65535):
        c = make_cache()
        assert register(c, seq=seq)[1].status == 0


# ---- RFC 4285 timestamps ------------------------------------------------------------------------
@pytest.mark.parametrize("skew,ok", [(0, True), (7, True), (-7, True), (8, False), (-8, False), (3600, False)])
def test_replay_window_7s(skew, ok):
    c = make_cache()
    bu = bu4(1, now=T0 + skew * 1000)
    (out,) = exchange(c, bu, NAT_SRC, T0)
    _pkt, ba = parse_ba(out[0], mac_coa=MAC4)
    ts = ba.find(mo.ReplayProtection).timestamp
    if ok:
        assert ba.status == 0 and ts == ntp_timestamp(T0 + skew * 1000, 0x1234)
    else:
        assert ba.status == C.BA_ID_MISMATCH and HOA not in c.bindings
        assert ts >> 32 == T0 // 1000 + NTP_EPOCH and ts & 0xFFFFFFFF == 0x1234   # HA seconds, BU low bits


def test_replayed_bu_does_not_move_the_binding():
    c = make_cache()
    captured = bu4(5, now=T0)
    exchange(c, captured, NAT_SRC, T0)
    register(c, seq=6, now=T0 + 2000, src=("udp4", "198.18.12.2", 40002))   # the MN moved on
    (out,) = exchange(c, captured, NAT_SRC, T0 + 3000)                          # attacker resends
    assert parse_ba(out[0], mac_coa=MAC4)[1].status == C.BA_ID_MISMATCH   # timestamp not newer
    assert c.bindings[HOA].peer == ("198.18.12.2", 40002) and c.bindings[HOA].seq == 6


def test_replay_without_timestamps_caught_by_sequence():
    c = make_cache()
    captured = bu4(5, ts=False)
    exchange(c, captured, NAT_SRC, T0)
    register(c, seq=6, ts=False, src=("udp4", "198.18.12.2", 40002))
    (out,) = exchange(c, captured, NAT_SRC, T0 + 3000)
    assert parse_ba(out[0], mac_coa=MAC4)[1].status == C.BA_SEQ_OUT_OF_WINDOW
    assert c.bindings[HOA].peer == ("198.18.12.2", 40002)


def test_timestamp_required_by_policy_145():
    c = make_cache(require_timestamps=True)
    (out,) = exchange(c, bu4(1, ts=False), NAT_SRC, T0)
    _pkt, ba = parse_ba(out[0], mac_coa=MAC4)
    assert ba.status == C.BA_MESG_ID_REQD and ba.find(mo.ReplayProtection) is None
    assert HOA not in c.bindings
    assert register(c, seq=2)[1].status == 0


# ---- authentication -----------------------------------------------------------------------------
def test_wrong_key_gets_146_signed_with_the_right_key_and_binding_stays():
    c = make_cache()
    register(c, seq=1)
    bad = build_bu(KEY, SPI, NAI, HOA, HA, 2, 150, "udp4", v4coa=a4("192.0.2.7"),
                   timestamp=ntp_timestamp(T0 + 1000), mac_key=bytes(16))
    (out,) = exchange(c, bad, ("udp4", "203.0.113.9", 5555), T0 + 1000)
    _pkt, ba = parse_ba(out[0], mac_coa=V4MAPPED + a4("192.0.2.7"))      # BA MAC is valid (real key)
    assert ba.status == C.BA_AUTH_FAIL
    assert c.bindings[HOA].peer == ("198.18.12.2", 40001) and c.bindings[HOA].seq == 1


def test_unknown_spi_is_dropped_silently():
    c = make_cache()
    bu = build_bu(KEY, 9999, NAI, HOA, HA, 1, 150, "udp4", v4coa=V4COA)
    assert exchange(c, bu, NAT_SRC, T0) == []
    (ev,) = events(c)
    assert isinstance(ev, BUDropped) and "unknown SPI 9999" in ev.reason and ev.source == NAT_SRC


def test_nai_of_another_mn_is_dropped():
    c = make_cache()
    bu = build_bu(KEY, SPI, NAI2, HOA, HA, 1, 150, "udp4", v4coa=V4COA)
    assert exchange(c, bu, NAT_SRC, T0) == []
    assert isinstance(events(c)[0], BUDropped)


def test_bu_without_mn_id_is_dropped():
    from roam6 import crypto
    from roam6.wire.ipv6 import build_ipv6
    from roam6_codec.mh import BindingUpdate
    msg = BindingUpdate(1, C.BU_A | C.BU_H, 150, [mo.IPv4CareofAddress(V4COA), mo.MobilityAuth(1, SPI, None)])
    mh = msg.encode(src=HOA, dst=HA, mac=lambda p: crypto.mnha_auth_data(KEY, MAC4, HOA, p))
    c = make_cache()
    assert exchange(c, build_ipv6(HOA, HA, 135, mh), NAT_SRC, T0) == []
    assert "MN-ID" in events(c)[0].reason


def test_bad_mh_checksum_is_dropped():
    bu = bytearray(bu4(1))
    bu[44] ^= 0xFF       # MH checksum field (IPv6 header 40 + 4)
    c = make_cache()
    assert exchange(c, bytes(bu), NAT_SRC, T0) == []
    assert "checksum" in events(c)[0].reason


# ---- registration rules -------------------------------------------------------------------------
def test_h_bit_change_is_139():
    c = make_cache()
    register(c, seq=1)
    (out,) = exchange(c, bu4(2, now=T0 + 1000, flags=C.BU_A | C.BU_F), NAT_SRC, T0 + 1000)
    assert parse_ba(out[0], mac_coa=MAC4)[1].status == C.BA_REG_TYPE_CHANGE


def test_hoa_outside_home_prefix_is_132():
    c = make_cache()
    other = a6("2001:db8:bb::1")
    bu = build_bu(KEY2, SPI2, NAI2, other, HA, 1, 150, "udp4", v4coa=V4COA, timestamp=ntp_timestamp(T0))
    (out,) = exchange(c, bu, NAT_SRC, T0)
    assert parse_ba(out[0], key=KEY2, mac_coa=MAC4, hoa=other)[1].status == C.BA_NOT_HOME_SUBNET


def test_hoa_of_another_mn_is_129():
    c = make_cache()
    bu = build_bu(KEY, SPI, NAI, HOA2, HA, 1, 150, "udp4", v4coa=V4COA)   # SPI 4096 owns ::100 only
    (out,) = exchange(c, bu, NAT_SRC, T0)
    assert parse_ba(out[0], mac_coa=MAC4, hoa=HOA2)[1].status == C.BA_PROHIBITED
    assert HOA2 not in c.bindings


def test_dereg_without_binding_is_133():
    c = make_cache()
    (out,) = exchange(c, bu4(1, lifetime=0), NAT_SRC, T0)
    assert parse_ba(out[0], mac_coa=MAC4)[1].status == C.BA_NOT_HA_FOR_MN


def test_dereg_removes_binding():
    c = make_cache()
    register(c, seq=1)
    c.events()
    (out,) = exchange(c, bu4(2, lifetime=0, now=T0 + 5000), NAT_SRC, T0 + 5000)
    _pkt, ba = parse_ba(out[0], mac_coa=MAC4)
    assert ba.status == 0 and ba.lifetime == 0 and ba.find(mo.BindingRefreshAdvice) is None
    assert HOA not in c.bindings
    (ev,) = events(c)
    assert isinstance(ev, BindingRemoved) and ev.reason == "dereg"


def test_dereg_from_home_over_udp6_coa_equals_hoa():
    c = make_cache()
    register(c, seq=1)
    c.events()
    bu = build_bu(KEY, SPI, NAI, HOA, HA, 2, 150, "udp6", coa=HOA)     # CoA == HoA: back home
    (out,) = exchange(c, bu, ("udp6", "2001:db8:aa::100", 4191), T0 + 1000)
    assert parse_ba(out[0], mac_coa=HOA)[1].status == 0 and HOA not in c.bindings
    assert isinstance(events(c)[0], BindingRemoved)


def test_lifetime_capped_and_refresh_advice_below_it():
    c = make_cache(max_lifetime=400)
    _out, ba = register(c, lifetime=0xFFFF)
    assert ba.lifetime == 100 and c.bindings[HOA].lifetime == 400
    assert ba.find(mo.BindingRefreshAdvice).interval == 75


def test_short_lifetime_has_no_refresh_advice():
    c = make_cache()
    _out, ba = register(c, lifetime=1)
    assert ba.lifetime == 1 and ba.find(mo.BindingRefreshAdvice) is None


def test_unknown_options_are_skipped():
    c = make_cache()
    extra = (mo.UnknownOption(99, b"\x01\x02\x03"), mo.ExperimentalOption(b"xyz"), mo.VendorSpecific(12345, 1, b"v"))
    _out, ba = register(c, extra_options=extra)
    assert ba.status == 0 and HOA in c.bindings


def test_no_ba_for_accepted_bu_without_a_flag():
    c = make_cache()
    assert exchange(c, bu4(1, flags=C.BU_H | C.BU_F), NAT_SRC, T0) == []
    assert HOA in c.bindings


# ---- binding life -------------------------------------------------------------------------------
def test_move_refresh_and_expiry_with_virtual_clock():
    c = make_cache()
    register(c, seq=1, lifetime=25)                       # 100 s
    assert isinstance(events(c)[0], BindingAdded)
    register(c, seq=2, lifetime=25, now=T0 + 50_000, src=("udp4", "198.18.13.2", 1024))
    (ev,) = events(c)
    assert isinstance(ev, BindingMoved) and ev.old_peer == ("198.18.12.2", 40001)
    d = ev.as_dict()
    assert (d["ev"], d["peer"], d["old_peer"], d["old_transport"]) == \
        ("binding_moved", "198.18.13.2:1024", "198.18.12.2:40001", "udp4")
    assert c.bindings[HOA].peer == ("198.18.13.2", 1024)
    register(c, seq=3, lifetime=25, now=T0 + 60_000, src=("udp4", "198.18.13.2", 1024))
    assert isinstance(events(c)[0], BindingRefreshed)
    c.handle_timer(T0 + 100_000)          # the first registration's deadline: no longer relevant
    assert HOA in c.bindings and events(c) == []
    assert c.get_timer() <= T0 + 160_000
    c.handle_timer(T0 + 159_900)
    assert HOA in c.bindings
    c.handle_timer(T0 + 160_000)
    assert HOA not in c.bindings
    (ev,) = events(c)
    assert isinstance(ev, BindingRemoved) and ev.reason == "expired"
    assert c.get_timer() is None


def test_two_mns_bind_independently():
    c = make_cache()
    register(c, seq=1)
    bu = build_bu(KEY2, SPI2, NAI2, HOA2, HA, 1, 150, "udp4", v4coa=a4("192.0.2.101"))
    (out,) = exchange(c, bu, ("udp4", "198.18.12.2", 40002), T0)
    assert parse_ba(out[0], key=KEY2, mac_coa=V4MAPPED + a4("192.0.2.101"), hoa=HOA2)[1].status == 0
    assert set(c.bindings) == {HOA, HOA2}


def test_unbound_data_gets_rate_limited_binding_error():
    from roam6.wire.ipv6 import decode_ipv6
    from roam6_codec.mh import BindingError, decode_mh
    c = make_cache()
    def unbound(src, now):
        c.unbound_data(src, NAT_SRC, now)
        return c.datagrams_to_send(now)
    (out,) = unbound(HOA, T0)
    assert out[1] == ("udp4", "198.18.12.2", 40001)
    be = decode_mh(decode_ipv6(out[0]).payload)
    assert isinstance(be, BindingError) and be.status == 1 and be.home_address == HOA
    assert unbound(HOA, T0 + 500) == []
    assert len(unbound(HOA, T0 + 1500)) == 1
    assert unbound(a6("2001:db8:ff::1"), T0 + 9000) == []   # not one of our HoAs


def test_remove_all_reports_every_binding():
    c = make_cache()
    register(c)
    c.events()
    c.remove_all()
    assert [e.reason for e in events(c)] == ["shutdown"] and c.bindings == {} and c.get_timer() is None


def test_events_follow_binding_transitions_table():
    from roam6_host.ha.cache import BINDING_TRANSITIONS as T
    c = make_cache()
    seen = []

    def step(src, seq, now, **kw):
        register(c, seq=seq, now=now, src=src, **kw)
        seen.extend(type(e).__name__ + ("(%s)" % e.reason if getattr(e, "reason", "") else "") for e in c.events())

    step(NAT_SRC, 1, T0, lifetime=25)
    step(NAT_SRC, 2, T0 + 1000, lifetime=25)
    step(("udp4", "198.18.13.2", 1), 3, T0 + 2000, lifetime=25)
    step(("udp4", "198.18.13.2", 1), 4, T0 + 3000, lifetime=0)
    step(NAT_SRC, 5, T0 + 4000, lifetime=1)
    c.handle_timer(T0 + 8000)
    seen.extend(type(e).__name__ + "(%s)" % e.reason for e in c.events())
    assert seen == [T[("none", "register")][1], T[("bound", "register, same CoA")][1],
                    T[("bound", "register, new CoA")][1], T[("bound", "dereg")][1],
                    T[("none", "register")][1], T[("bound", "lifetime over")][1]]


def test_ip6_dereg_from_home_ba_goes_straight_to_the_hoa():
    c = make_cache()
    bu = build_bu(KEY, SPI, NAI, HOA, HA, 1, 150, "ip6", coa=COA6)
    exchange(c, bu, ("ip6", "2001:db8:a1::100", 0), T0)
    home = build_bu(KEY, SPI, NAI, HOA, HA, 2, 0, "ip6", at_home=True)
    (out,) = exchange(c, home, ("ip6", "2001:db8:aa::100", 0), T0 + 1000)
    assert out[1] == ("ip6", "2001:db8:aa::100", 0)
    pkt, ba = parse_ba(out[0], mac_coa=HOA)
    assert pkt.dst == HOA and pkt.rh2 is None and ba.status == 0 and HOA not in c.bindings


def test_replace_sas_revokes_bindings_and_keeps_replay_state():
    from roam6_host.ha.sa import SA
    c = make_cache()
    register(c, seq=1)
    bu = build_bu(KEY2, SPI2, NAI2, HOA2, HA, 1, 150, "udp4", v4coa=V4COA, timestamp=ntp_timestamp(T0))
    exchange(c, bu, NAT_SRC, T0)
    c.events()
    kept = c.sas[SPI]
    c.replace_sas({SPI: SA(NAI, SPI, KEY, HOA)})          # SPI2 revoked, SPI unchanged
    assert c.sas[SPI] is kept and kept.last_ts == ntp_timestamp(T0, 0x1234)
    (ev,) = events(c)
    assert isinstance(ev, BindingRemoved) and ev.reason == "revoked" and ev.binding.hoa == HOA2
    assert set(c.bindings) == {HOA}
    assert exchange(c, bu, NAT_SRC, T0 + 1000) == []            # its BUs are now dropped (unknown SPI)
    assert isinstance(events(c)[0], BUDropped)
    c.replace_sas({SPI: SA(NAI, SPI, KEY, HOA2)})          # SPI now owns another HoA
    assert c.bindings == {} and events(c)[0].reason == "revoked"


def test_sa_without_hoa_cannot_take_another_mns_hoa():
    c = make_cache()                        # SPI2's SA has no HoA of its own
    bu = build_bu(KEY2, SPI2, NAI2, HOA, HA, 1, 150, "udp4", v4coa=V4COA)     # HOA is pinned to SPI
    (out,) = exchange(c, bu, NAT_SRC, T0)
    assert parse_ba(out[0], key=KEY2, mac_coa=MAC4)[1].status == C.BA_PROHIBITED
    free = a6("2001:db8:aa::777")           # not pinned: SPI2 may register it...
    bu = build_bu(KEY2, SPI2, NAI2, free, HA, 1, 150, "udp4", v4coa=V4COA)
    (out,) = exchange(c, bu, NAT_SRC, T0)
    assert parse_ba(out[0], key=KEY2, mac_coa=MAC4, hoa=free)[1].status == 0
    from roam6_host.ha.sa import SA
    c.sas[4098] = SA(b"third@example.test", 4098, KEY, None)
    bu = build_bu(KEY, 4098, b"third@example.test", free, HA, 2, 150, "udp4", v4coa=V4COA)
    (out,) = exchange(c, bu, ("udp4", "203.0.113.1", 1), T0 + 1000)   # ...and nobody else while it is bound
    assert parse_ba(out[0], mac_coa=MAC4, hoa=free)[1].status == C.BA_PROHIBITED
    assert c.bindings[free].spi == SPI2 and c.bindings[free].peer == ("198.18.12.2", 40001)


def test_expiry_heap_stays_bounded_under_rapid_refreshes():
    c = make_cache(keep_events=False)
    for seq in range(1, 5001):
        exchange(c, bu4(seq & 0xFFFF, now=T0 + seq, ts=False), NAT_SRC, T0 + seq)
    assert c.bindings[HOA].seq == 5000
    assert len(c._expiry) <= 4 * len(c.bindings) + 1025
    assert c.get_timer() <= c.bindings[HOA].expires
    c.handle_timer(c.bindings[HOA].expires)
    assert c.bindings == {}


def test_expiry_follows_the_monotonic_clock_and_timestamps_the_wall_clock():
    """The driver gives monotonic ms as `now` and Unix ms as `wall`: a wall clock stepped
    by NTP (here an hour forward) neither ends a binding early nor breaks the timestamp check."""
    c = make_cache()
    mono = 500_000                                        # ms since the host booted
    outs = exchange(c, bu4(1, lifetime=25, now=T0), NAT_SRC, mono, wall=T0)
    assert parse_ba(outs[0][0], mac_coa=MAC4)[1].status == 0
    assert c.get_timer() == mono + 100_000                    # the binding's end on the monotonic clock
    stepped = T0 + 3_600_000
    c.handle_timer(mono + 50_000)
    assert HOA in c.bindings
    # the MN follows the new wall time: its timestamp is checked against `wall`, not `now`
    outs = exchange(c, bu4(2, lifetime=25, now=stepped), NAT_SRC, mono + 60_000, wall=stepped)
    assert parse_ba(outs[0][0], mac_coa=MAC4)[1].status == 0
    # a BU stamped with the old wall time is out of the window: 144 carries the HA's wall seconds
    outs = exchange(c, bu4(3, lifetime=25, now=T0 + 61_000), NAT_SRC, mono + 61_000, wall=stepped + 1000)
    _pkt, ba = parse_ba(outs[0][0], mac_coa=MAC4)
    assert ba.status == C.BA_ID_MISMATCH
    assert ba.find(mo.ReplayProtection).timestamp >> 32 == (stepped + 1000) // 1000 + NTP_EPOCH
    c.handle_timer(mono + 159_900)
    assert HOA in c.bindings
    c.handle_timer(mono + 160_000)
    assert HOA not in c.bindings


def test_a_new_binding_waits_for_dad_then_the_newest_bu_is_answered():
    """RFC 6275 §10.4.1: no binding for the HoA yet -> DAD on the home link before the BA. A BU
    retransmitted meanwhile replaces the held one; silence for dad_ms accepts it."""
    from roam6_host.ha.cache import DadStarted
    c = make_cache(dad_ms=1000)
    assert exchange(c, bu4(1, now=T0), NAT_SRC, T0) == []
    (ev,) = events(c)
    assert isinstance(ev, DadStarted) and ev.as_dict()["reason"] == "2001:db8:aa::100" and ev.hoa == HOA \
        and c.dad_pending(HOA)
    assert HOA not in c.bindings and c.get_timer() == T0 + 1000
    assert exchange(c, bu4(2, now=T0 + 500), NAT_SRC, T0 + 500) == []      # the MN sent it again
    c.unbound_data(HOA, NAT_SRC, T0 + 600)
    assert c.datagrams_to_send(T0 + 600) == []    # its data meanwhile: no "lost binding" error
    assert events(c) == []                                               # one probe, not two
    c.handle_timer(T0 + 990)
    assert c.datagrams_to_send(T0 + 990) == [] and HOA not in c.bindings
    c.handle_timer(T0 + 1000)
    (out,) = c.datagrams_to_send(T0 + 1000)
    _pkt, ba = parse_ba(out[0], mac_coa=MAC4)
    assert (ba.status, ba.seq) == (0, 2) and out[1] == ("udp4", "198.18.12.2", 40001)
    assert HOA in c.bindings and not c.dad_pending(HOA)
    assert isinstance(events(c)[0], BindingAdded)
    # bound: a refresh or a move is answered at once (register() asserts the one BA)
    _out, ba = register(c, seq=3, now=T0 + 5000)
    assert ba.status == 0 and c.bindings[HOA].seq == 3 and events(c)[0].kind == "binding_refreshed"


def test_dad_conflict_gets_134_and_binds_nothing():
    c = make_cache(dad_ms=1000)
    assert exchange(c, bu4(7, now=T0), NAT_SRC, T0) == []
    events(c)
    c.dad_conflict(a6("2001:db8:aa::999"), T0 + 100)
    assert c.datagrams_to_send(T0 + 100) == [] and c.ignored == 1        # not one we wait for
    c.dad_conflict(HOA, T0 + 200)
    (out,) = c.datagrams_to_send(T0 + 200)
    _pkt, ba = parse_ba(out[0], mac_coa=MAC4)
    assert (ba.status, ba.seq) == (C.BA_DAD_FAILED, 7)
    (ev,) = events(c)
    assert isinstance(ev, BURejected) and ev.status == 134 and ev.reason == "dad"
    c.handle_timer(T0 + 5000)
    assert HOA not in c.bindings and c.get_timer() is None and c.datagrams_to_send(T0 + 5000) == []


def test_dad_probe_is_a_neighbor_solicitation_from_the_unspecified_address():
    """The HA's DAD probe (ha/dad.py), read back by scapy as an independent oracle."""
    from scapy.layers.inet6 import ICMPv6ND_NS, IPv6
    from roam6_host.ha.dad import probe
    pkt, mac = probe(HOA)
    p = IPv6(pkt)
    assert (p.src, p.dst, p.hlim) == ("::", "ff02::1:ff00:100", 255)
    assert p[ICMPv6ND_NS].tgt == "2001:db8:aa::100"
    # byte for byte what scapy builds (its checksum included), and no options
    assert pkt == bytes(IPv6(src="::", dst="ff02::1:ff00:100", hlim=255) / ICMPv6ND_NS(tgt="2001:db8:aa::100"))
    assert mac == bytes.fromhex("3333ff000100")
