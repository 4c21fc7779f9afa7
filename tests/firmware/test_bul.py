"""Home-registration binding update list entry (roam6.core.bul) on a virtual clock.

Every test drives the sans-IO machine with explicit `now` values (ms) and checks the BUs it asks
for, its deadlines and its events against RFC 6275 §11.7/§11.8 and RFC 4285.
"""
from roam6.core import bul
from roam6.core.bul import HomeBinding
from support import BU, BUL as S

COA = bytes([192, 0, 2, 100])
COA2 = bytes([192, 0, 2, 101])
HOA = bytes(15) + b"\x01"


def make(**kw):
    kw.setdefault("lifetime_s", 600)
    kw.setdefault("timestamps", True)
    kw.setdefault("seq", 100)
    kw.setdefault("ntp_offset_ms", 3900000000000)
    kw.setdefault("hoa", HOA)
    return HomeBinding(**kw)


def drain(b):
    evs = []
    while True:
        e = b.next_event()
        if e is None:
            return evs
        evs.append(e)


def ack(b, now, status=0, lifetime_units=150, refresh_units=None, nat=None, req=None, seq=None, ts=None):
    if req is None:
        req = b.last_req
    return b.receive_ba(status, req.seq if seq is None else seq, lifetime_units, refresh_units,
                        req.timestamp if ts is None else ts, nat, now)


def sent(b):
    out = [BU(r) for r in b.bu_to_send()]
    if out:
        b.last_req = out[-1]
    return out


def run_timers(b, until, step=1):
    """Advance the virtual clock to `until`, firing the timer exactly at each deadline."""
    times = []
    while True:
        t = b.get_timer()
        if t is None or t > until:
            return times
        b.handle_timer(t)
        for r in sent(b):
            times.append((t, r))


def test_first_bu_goes_out_at_once_on_move():
    b = make()
    assert b.get_timer() is None and sent(b) == []
    b.move(COA, 5000)
    out = sent(b)
    assert len(out) == 1
    r = out[0]
    assert r.seq == 100 and r.lifetime_units == 150 and r.coa == COA and not r.dereg
    assert b.state == S.REGISTERING
    assert b.get_timer() == 5000 + 1500     # InitialBindackTimeoutFirstReg


def test_retransmission_schedule_first_registration():
    b = make()
    b.move(COA, 0)
    first = sent(b)[0]
    times = run_timers(b, 200000)
    gaps = []
    last = 0
    for t, _ in times:
        gaps.append(t - last)
        last = t
    # 1.5 s, then doubled up to 32 s, then kept at 32 s (RFC 6275 §11.8)
    assert gaps[:7] == [1500, 3000, 6000, 12000, 24000, 32000, 32000], gaps
    seqs = [first.seq] + [r.seq for _, r in times]
    for a, c in zip(seqs, seqs[1:]):
        assert c == (a + 1) & 0xFFFF        # every retransmission has a larger number
    stamps = [first.timestamp] + [r.timestamp for _, r in times]
    for a, c in zip(stamps, stamps[1:]):
        assert c > a                         # and a fresh timestamp


def test_retransmission_after_first_registration_starts_at_1s():
    b = make()
    b.move(COA, 0)
    sent(b)
    assert ack(b, 40)
    b.move(COA2, 10000)
    r = sent(b)[0]
    assert r.coa == COA2
    assert b.get_timer() == 11000            # INITIAL_BINDACK_TIMEOUT
    b.handle_timer(11000)
    assert len(sent(b)) == 1 and b.get_timer() == 13000


def test_move_sends_new_bu_at_once_and_restarts_backoff():
    b = make()
    b.move(COA, 0)
    sent(b)
    run_timers(b, 4600)                      # two retransmissions: timer now 6 s away
    b.move(COA2, 5000)
    out = sent(b)
    assert len(out) == 1 and out[0].coa == COA2
    assert b.get_timer() == 6500             # back-off restarted (still first registration)


def test_ba_accepted_schedules_refresh_at_three_quarters():
    b = make()
    b.move(COA, 0)
    sent(b)
    assert ack(b, 30, lifetime_units=150)   # 600 s granted
    assert b.state == S.BOUND and b.bound
    evs = drain(b)
    kinds = [e[0] for e in evs]
    assert kinds == ["bu", "ba", "registered"], kinds
    _, _status, _seq, bu_ba_ms, _reg_ms = evs[1]
    assert bu_ba_ms == 30                    # bu->ba time
    assert b.refresh_at == 30 + 450000
    assert b.get_timer() == 30 + 450000
    b.handle_timer(30 + 450000)
    out = sent(b)
    assert len(out) == 1 and out[0].lifetime_units == 150 and b.state == S.REFRESHING
    assert b.bound                           # the old binding still holds until expiry


def test_refresh_advice_wins_when_shorter():
    b = make()
    b.move(COA, 0)
    sent(b)
    ack(b, 10, lifetime_units=150, refresh_units=25)   # advice: 100 s
    assert b.refresh_at == 10 + 100000


def test_nat_refresh_time_drives_keepalives():
    b = make()
    b.move(COA, 0)
    sent(b)
    ack(b, 10, lifetime_units=150, nat=20)
    assert b.refresh_at == 10 + 20000
    b.handle_timer(10 + 20000)
    assert len(sent(b)) == 1                 # the keepalive is a BU refresh (RFC 5555 §6)
    ack(b, 20050, lifetime_units=150, nat=20)
    assert b.refresh_at == 20050 + 20000


def test_nat_refresh_all_ones_means_no_keepalive():
    b = make()
    b.move(COA, 0)
    sent(b)
    ack(b, 10, lifetime_units=150, nat=0xFFFFFFFF)
    assert b.refresh_at == 10 + 450000


def test_refresh_unanswered_until_expiry_falls_back_to_registering():
    b = make(lifetime_s=40)
    b.move(COA, 0)
    sent(b)
    ack(b, 10, lifetime_units=10)            # 40 s, expires at 0 + 40 s
    b.handle_timer(b.refresh_at)             # refresh at 30.01 s
    sent(b)
    assert b.state == S.REFRESHING and b.bound
    run_timers(b, 40000)
    assert b.state == S.REGISTERING and not b.bound
    assert b.retransmit_at is not None      # keeps trying on the back-off
    assert b.first_reg                      # the binding is gone: a new attempt starts at 1.5 s


def test_late_ba_for_old_coa_does_not_bind_new_one():
    b = make()
    b.move(COA, 0)
    old = sent(b)[0]
    b.move(COA2, 100)
    new = sent(b)[0]
    assert not ack(b, 150, req=old)          # belongs to the attempt before the move
    assert b.state == S.REGISTERING
    assert ack(b, 160, req=new)
    assert b.state == S.BOUND and b.coa == COA2


def test_ba_for_earlier_retransmission_of_same_attempt_counts():
    b = make()
    b.move(COA, 0)
    first = sent(b)[0]
    b.handle_timer(1500)
    sent(b)
    assert ack(b, 1600, req=first)
    assert b.state == S.BOUND


def test_ba_with_wrong_timestamp_is_dropped():
    b = make()
    b.move(COA, 0)
    r = sent(b)[0]
    assert not ack(b, 10, ts=r.timestamp + 1)
    assert not b.receive_ba(0, r.seq, 150, None, None, None, 10)   # missing echo
    assert b.state == S.REGISTERING
    assert ack(b, 10)


def test_without_timestamps_no_replay_option():
    b = make(timestamps=False)
    b.move(COA, 0)
    r = sent(b)[0]
    assert r.timestamp is None
    assert b.receive_ba(0, r.seq, 150, None, None, None, 10)


def test_status_1_is_accepted():
    b = make()
    b.move(COA, 0)
    sent(b)
    assert ack(b, 10, status=1)
    assert b.state == S.BOUND


def test_status_135_resyncs_to_ha_sequence_and_resends_at_once():
    b = make(seq=100)
    b.move(COA, 0)
    sent(b)
    assert ack(b, 20, status=135, seq=5000)
    out = sent(b)
    assert len(out) == 1 and out[0].seq == 5001
    st = b.state_to_save()
    assert st is not None and st["seq"] == (5001 + S.SEQ_BLOCK) & 0xFFFF   # saved before use
    assert ack(b, 40)
    assert b.state == S.BOUND


def test_status_135_loop_is_bounded():
    b = make()
    b.move(COA, 0)
    sent(b)
    n = 0
    for i in range(10):
        ack(b, 10 + i, status=135, seq=7000 + i)
        n += len(sent(b))
    # the first BU and two answers are MAX_UPDATE_RATE's 3: the third answer waits until the
    # first BU is a second old
    assert n == 2 and b.get_timer() == S.RATE_MS
    n += len([r for _t, r in run_timers(b, S.RATE_MS)])
    assert n == S.MAX_RESYNCS
    assert b.retransmit_at is not None       # the back-off goes on


def test_status_144_adopts_ha_clock():
    b = make(ntp_offset_ms=1000 * 1000)     # device clock far off (no RTC)
    b.move(COA, 0)
    r = sent(b)[0]
    ha_secs = 3900000000
    ts = (ha_secs << 32) | (r.timestamp & 0xFFFFFFFF)
    assert ack(b, 50, status=144, ts=ts)
    out = sent(b)
    assert len(out) == 1
    assert out[0].timestamp >> 32 == ha_secs
    assert b.state_to_save() is not None      # the offset is kept across reboots too
    assert ack(b, 80)
    assert b.state == S.BOUND


def test_status_144_with_wrong_low_bits_is_dropped():
    b = make()
    b.move(COA, 0)
    r = sent(b)[0]
    ts = (3900000000 << 32) | ((r.timestamp + 1) & 0xFFFFFFFF)
    assert not ack(b, 50, status=144, ts=ts)
    assert sent(b) == []


def test_status_146_keeps_trying_at_max_backoff_and_recovers():
    """RFC 4285 §8's 146 is no longer final (an on-path attacker can have the HA sign one for a
    tampered copy of our BU): reported, then the BU again every MAX_BINDACK_TIMEOUT until a good
    BA comes."""
    b = make()
    b.move(COA, 0)
    sent(b)
    drain(b)
    assert ack(b, 30, status=146)
    assert b.state == S.REGISTERING and not b.bound
    assert b.get_timer() == 30 + S.MAX_BINDACK_MS
    evs = drain(b)
    assert ("error", "authentication failed", 146) in evs
    now = 30
    for i in range(5):                       # the attack goes on: one BU per 32 s, each reported
        t = b.get_timer()
        assert t == now + S.MAX_BINDACK_MS, (i, t, now)
        b.handle_timer(t)
        out = sent(b)
        assert len(out) == 1 and out[0].coa == COA
        now = t + 5
        assert ack(b, now, status=146)
        assert drain(b)[-1] == ("error", "authentication failed", 146)
    t = b.get_timer()                        # the attack stops: the next try is answered
    b.handle_timer(t)
    assert len(sent(b)) == 1
    assert ack(b, t + 5)
    assert b.state == S.BOUND and b.bound
    assert [e[0] for e in drain(b)] == ["bu", "ba", "registered"]


def test_status_146_during_a_refresh_keeps_the_binding():
    b = make()
    b.move(COA, 0)
    sent(b)
    ack(b, 10)
    t = b.get_timer()                        # the refresh
    b.handle_timer(t)
    sent(b)
    assert ack(b, t + 5, status=146)
    assert b.state == S.REFRESHING and b.bound   # the HA's binding still holds until it expires
    assert b.get_timer() == t + 5 + S.MAX_BINDACK_MS


def test_other_rejections_keep_trying_at_max_backoff():
    for status in (129, 131, 132, 133, 134, 139, 145, 147, 174):
        b = make()
        b.move(COA, 0)
        sent(b)
        drain(b)
        assert ack(b, 30, status=status)
        assert b.state == S.REGISTERING, status
        assert b.get_timer() == 30 + S.MAX_BINDACK_MS, status
        assert drain(b)[-1] == ("error", "registration refused", status)
        b.handle_timer(30 + S.MAX_BINDACK_MS)
        assert len(sent(b)) == 1, status


def test_max_bindack_timeout_set_on_the_instance():
    b = make()
    b.max_bindack_ms = 4000                  # config.json "max_bindack_timeout": 4 (a bench)
    b.move(COA, 0)
    sent(b)
    assert ack(b, 30, status=146)
    assert b.get_timer() == 4030
    times = [t for t, _r in run_timers(b, 20000)]
    assert times[:3] == [4030, 8030, 12030]
    assert make().max_bindack_ms == S.MAX_BINDACK_MS   # the class default, no attribute


def test_deregistration_refused_146_retries_then_gives_up():
    b = make()
    b.home(0)
    sent(b)
    assert ack(b, 10, status=146, lifetime_units=0)
    assert b.state == S.DEREGISTERING and b.get_timer() == 10 + S.MAX_BINDACK_MS
    run_timers(b, 10 ** 6)
    assert b.state == S.HOME and b.tries == S.DEREG_TRIES


def test_max_update_rate_at_most_3_in_any_second():
    """RFC 6275 §11.8 MAX_UPDATE_RATE: however fast the moves come, at most 3 BUs in any second."""
    b = make()
    times = []
    for t in range(0, 5000, 50):             # a flapping link: a new address every 50 ms
        b.move(COA if t % 100 else COA2, t)
        times += [t for _r in sent(b)]
        times += [tt for tt, _r in run_timers(b, t)]
    assert times[:3] == [0, 50, 100]
    for i in range(len(times)):
        assert len([x for x in times if times[i] <= x < times[i] + 1000]) <= 3, times
    assert len(times) >= 6                   # ... and the moves still get their BUs


def test_max_update_rate_lets_roams_a_third_of_a_second_apart_go_at_once():
    b = make()
    for t in range(0, 5000, 400):            # a new address every 0.4 s: never 3 in a second
        b.move(COA if t % 800 else COA2, t)
        assert [r.seq for r in sent(b)], t   # the BU leaves with the move, not a second later
    assert b.last_req.coa == COA2 or b.last_req.coa == COA


def test_transient_rejections_keep_retrying():
    for status in (128, 130):
        b = make()
        b.move(COA, 0)
        sent(b)
        assert ack(b, 30, status=status)
        assert b.state == S.REGISTERING
        assert sent(b) == []
        assert b.get_timer() == 1500
        b.handle_timer(1500)
        assert len(sent(b)) == 1


def test_deregistration_at_home():
    b = make()
    b.move(COA, 0)
    sent(b)
    ack(b, 10)
    drain(b)
    b.home(60000)
    out = sent(b)
    assert len(out) == 1 and out[0].lifetime_units == 0 and out[0].dereg and out[0].coa == HOA
    assert b.state == S.DEREGISTERING
    assert b.get_timer() == 61000
    assert ack(b, 60020, lifetime_units=0)
    assert b.state == S.HOME and b.get_timer() is None
    assert ("deregistered", True) in drain(b)


def test_deregistration_answered_133_is_done():
    b = make()
    b.home(0)
    sent(b)
    assert ack(b, 10, status=133, lifetime_units=0)
    assert b.state == S.HOME


def test_deregistration_gives_up_after_backoff():
    b = make()
    b.home(0)
    sent(b)
    run_timers(b, 500000)
    assert b.state == S.HOME and b.get_timer() is None
    assert b.tries == S.DEREG_TRIES
    assert ("deregistered", False) in drain(b)


def test_leaving_home_registers_again():
    b = make()
    b.home(0)
    sent(b)
    ack(b, 10, lifetime_units=0)
    b.move(COA, 20000)
    out = sent(b)
    assert len(out) == 1 and out[0].lifetime_units == 150
    # a new home registration: the HA runs DAD before its BA, so InitialBindackTimeoutFirstReg again
    assert b.get_timer() == 20000 + 1500
    ack(b, 20100)
    b.move(COA2, 30000)
    sent(b)
    assert b.get_timer() == 31000                # a move of a binding the HA holds: 1 s


def test_detach_stops_retransmissions():
    b = make()
    b.move(COA, 0)
    sent(b)
    b.detach(500)
    assert b.state == S.DETACHED and b.get_timer() is None
    b.move(COA, 900)
    assert len(sent(b)) == 1


def test_lost_binding_reregisters_at_once():
    b = make()
    b.move(COA, 0)
    sent(b)
    ack(b, 10)
    b.lost("be", 5000)                       # a BE (unauthenticated) on a binding 5 s old: no
    assert sent(b) == [] and b.state == S.BOUND and b.ignored == 1   # (docs §11.12)
    at = S.MAX_BINDACK_MS
    b.lost("be", at)
    out = sent(b)
    assert len(out) == 1 and b.state == S.REGISTERING and not b.bound
    assert b.get_timer() == at + 1500          # the HA has no binding: DAD before its BA
    b.lost("be", at + 1)                     # a second BE while the BU is out: no storm
    assert sent(b) == []


def test_brr_flood_sends_at_most_one_bu_per_half_lifetime():
    """1,000 spoofed BRRs (RFC 4285 leaves them unauthenticated): none answered while the binding
    is young, one BU once less than half the requested lifetime is left, none while it is out."""
    b = make(lifetime_s=600, seq=100)
    b.move(COA, 0)
    sent(b)
    b.state_to_save()
    ack(b, 10)
    drain(b)
    for i in range(1000):
        b.lost("brr", 1000 + i)
    assert sent(b) == [] and drain(b) == [] and b.ignored == 1000 and b.state == S.BOUND
    half = 300000                             # 600 s requested: half of it left from 300 s on
    b.lost("brr", half - 1)
    assert sent(b) == []
    n = 0
    for i in range(1000):
        b.lost("brr", half + i)
        n += len(sent(b))
    assert n == 1 and b.state == S.REGISTERING   # (bul treats a BRR as a lost binding)
    assert b.state_to_save() is None          # the reservation of 16 numbers still covers it
    ack(b, half + 1000)
    for i in range(1000):
        b.lost("brr", half + 2000 + i)
    assert sent(b) == [] and b.state == S.BOUND


def test_be_flood_sends_at_most_one_bu_per_max_bindack_timeout():
    b = make(seq=100)
    b.move(COA, 0)
    sent(b)
    ack(b, 10)
    n = 0
    for t in range(1000, 120000, 20):        # a BE every 20 ms for two minutes; every BU answered
        b.lost("be", t)
        out = sent(b)
        n += len(out)
        if out:
            ack(b, t + 5)
    assert n <= 120000 // S.MAX_BINDACK_MS, n


def test_sequence_wraps_around():
    b = make(seq=0xFFFE)
    b.move(COA, 0)
    seqs = [sent(b)[0].seq]
    for t, r in run_timers(b, 30000):
        seqs.append(r.seq)
    assert seqs[:4] == [0xFFFE, 0xFFFF, 0, 1], seqs
    assert bul.seq_after(0, 0xFFFF) and not bul.seq_after(0xFFFF, 0)
    assert bul.seq_after(0x7FFF, 0) and not bul.seq_after(0x8000, 0)


def test_sequence_reservation_saved_before_use_and_rarely():
    b = make(seq=10)
    b.move(COA, 0)
    sent(b)
    st = b.state_to_save()
    assert st["seq"] == 10 + S.SEQ_BLOCK
    assert b.state_to_save() is None
    saves = 0
    used = [10]
    for t, r in run_timers(b, 600000):
        used.append(r.seq)
        s = b.state_to_save()
        if s is not None:
            saves += 1
            assert bul.seq_after(s["seq"], r.seq)
    assert len(used) > S.SEQ_BLOCK
    assert saves == (len(used) - 1) // S.SEQ_BLOCK


def test_reboot_resumes_above_every_used_number():
    b = make(seq=40000)
    b.move(COA, 0)
    saved = None
    used = []
    for r in sent(b):
        used.append(r.seq)
    saved = b.state_to_save()
    for t, r in run_timers(b, 100000):
        used.append(r.seq)
        s = b.state_to_save()
        if s is not None:
            saved = s
    # power cut now: a new entry from the saved state must never reuse a number
    b2 = make(seq=saved["seq"], ntp_offset_ms=saved["ntp_offset_ms"])
    b2.move(COA, 0)
    r = sent(b2)[0]
    for u in used:
        assert bul.seq_after(r.seq, u), (r.seq, u)


def test_timestamps_are_ntp_from_offset():
    off = bul.ntp_offset_ms(1795768167.5, 1000)
    b = make(ntp_offset_ms=off)
    b.move(COA, 1000)
    r = sent(b)[0]
    assert r.timestamp >> 32 == 1795768167 + S.NTP_UNIX_DELTA
    frac = r.timestamp & 0xFFFFFFFF
    assert abs(frac - (1 << 31)) < (1 << 23)


def test_lifetime_rounds_up_to_units_and_caps():
    assert make(lifetime_s=601).lifetime_units == 151
    assert make(lifetime_s=10 ** 6).lifetime_units == 0xFFFF
    assert make(lifetime_s=1).lifetime_units == 1


def test_unlisted_event_is_ignored():
    b = make()
    b.handle_timer(10 ** 6)                  # nothing armed
    assert b.state == S.DETACHED and sent(b) == []
    assert not b.receive_ba(0, 1, 150, None, 0, None, 0)
    assert b.ignored == 1                    # a BA nobody waits for: an illegal step, counted
    b.lost("brr", 1)                         # a BRR while detached: no BU, just counted (not
    assert sent(b) == [] and b.ignored == 2 and drain(b) == []   # logged: a flood is silent)


def test_status_144_to_a_replayed_bu_writes_no_state():
    """An on-path attacker replaying our BU gets a genuine 144 (its timestamp is no longer newer)
    carrying the HA's clock, which ours already agrees with: answered, but no state-file write."""
    off = 3900000000000
    b = make(ntp_offset_ms=off)
    b.move(COA, 0)
    r = sent(b)[0]
    b.state_to_save()
    for i in range(3):
        ts = ((r.timestamp >> 32) << 32) | (r.timestamp & 0xFFFFFFFF)   # the HA's seconds = ours
        assert ack(b, 10 + i, status=144, ts=ts, req=r)
        assert b.state_to_save() is None, i
    assert abs(b.ntp_offset_ms - off) <= 1000
