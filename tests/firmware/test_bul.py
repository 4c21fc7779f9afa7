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


def test_status_146_stops_and_reports():
    b = make()
    b.move(COA, 0)
    sent(b)
    drain(b)
    assert ack(b, 30, status=146)
    assert b.state == S.FAILED
    assert b.get_timer() is None
    evs = drain(b)
    assert ("error", "authentication failed", 146) in evs
    b.move(COA2, 100)                        # no more BUs after an authentication failure
    assert sent(b) == []


def test_other_rejections_stop():
    for status in (129, 131, 132, 133, 139, 174):
        b = make()
        b.move(COA, 0)
        sent(b)
        assert ack(b, 30, status=status)
        assert b.state == S.FAILED, status
        assert b.get_timer() is None


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
    b.lost("be", 5000)
    out = sent(b)
    assert len(out) == 1 and b.state == S.REGISTERING and not b.bound
    assert b.get_timer() == 5000 + 1500          # the HA has no binding: DAD before its BA
    b.lost("be", 5001)                       # a second BE while the BU is out: no storm
    assert sent(b) == []


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
    b.lost("brr", 1)                         # a BRR while detached: no BU, just counted
    assert sent(b) == [] and b.ignored == 2 and drain(b) == [("lost", "brr")]
