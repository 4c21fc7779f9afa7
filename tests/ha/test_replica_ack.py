"""replica "ack" (ha/ack.py, ha/replica.py ACK): the active holds a BA until the standby has
acknowledged the record behind it; bounded wait; ACKs with a wrong key, of another epoch, replayed
or ahead of what was sent change nothing. Sans-IO: two Replica machines, datagrams carried by the
test; the HA driver around Continuity is a test double (it only collects what _send is given)."""
import types

import pytest

from roam6_host.errors import UserError
from roam6_host.ha.ack import BaHold
from roam6_host.ha.continuity import Continuity
from roam6_host.ha.replica import ACK, ReplicaConfig, parse_replica, seal

from ha_helpers import HOA, NAT_SRC, T0, bu4, exchange, parse_ba
from test_replica import KEY, carry, pair


def acking_pair():
    a, b = pair()
    a.want_acks = True
    a.handle_timer(0)
    carry(a, b, 0)                  # HELLO
    b.handle_timer(0)
    carry(b, a, 0)                  # HELLO (ready: no) + SYNC_REQ
    carry(a, b, 0)                  # SYNC, flagged: b acks it
    assert b.synced
    carry(b, a, 0)
    return a, b


def records(a, seq, now):
    wall = T0 + seq * 1000
    outs = exchange(a.cache, bu4(seq, now=wall), NAT_SRC, now, wall=wall)
    assert parse_ba(outs[0][0])[1].status == 0
    a.send_records([a.cache.record(ev.binding, now, wall) for ev in a.cache.events()], now)
    return outs


def events(m):
    out = []
    while True:
        ev = m.next_event()
        if ev is None:
            return out
        out.append(ev)


def test_standby_acks_cumulatively_once_per_pass():
    a, b = acking_pair()
    events(a)
    records(a, 1, 10)
    records(a, 2, 11)
    assert carry(a, b, 12) == 2                 # two RECORDS messages ...
    acks = b.datagrams_to_send(12)
    assert len(acks) == 1                       # ... one ACK, for the later one
    a.receive(acks[0], 13, T0)
    assert a.acked == a.seq == 2 and events(a) == [("acked", 2)]
    assert b.cache.bindings[HOA].seq == 2


def test_no_acks_unless_asked():
    a, b = pair()
    a.handle_timer(0)
    carry(a, b, 0)
    b.handle_timer(0)
    carry(b, a, 0)
    carry(a, b, 0)
    b.datagrams_to_send(0)
    records(a, 1, 10)
    carry(a, b, 10)
    assert b.datagrams_to_send(10) == [] and b.cache.bindings[HOA].seq == 1


def test_wrong_key_stale_and_made_up_acks_change_nothing():
    a, b = acking_pair()
    events(a)
    records(a, 1, 10)
    records(a, 2, 11)
    carry(a, b, 12)
    good = b.datagrams_to_send(12)[0]
    forged = seal(bytes(32), ACK, b.epoch, b.seq, good[16:-32])      # the right body, a wrong key
    a.receive(forged, 13, T0)
    assert a.refused == 1 and a.acked == 0
    ahead = seal(KEY, ACK, b.epoch, b.seq, (a.epoch).to_bytes(4, "big") + (9).to_bytes(4, "big"))
    a.receive(ahead, 13, T0)                    # seq 9 was never sent: made up
    other = seal(KEY, ACK, b.epoch, b.seq, (a.epoch + 1).to_bytes(4, "big") + (2).to_bytes(4, "big"))
    a.receive(other, 13, T0)                    # another epoch (an earlier stream of ours)
    assert a.stale_acks == 2 and a.acked == 0
    a.receive(good, 14, T0)
    assert a.acked == 2
    old = seal(KEY, ACK, b.epoch, b.seq, (a.epoch).to_bytes(4, "big") + (1).to_bytes(4, "big"))
    a.receive(old, 15, T0)                      # out of order: behind what was acknowledged
    a.receive(good, 15, T0)                     # replayed
    assert a.stale_acks == 4 and a.acked == 2
    assert [e for e in events(a) if e[0] == "acked"] == [("acked", 2)]


def test_hold_released_by_ack_or_after_the_wait():
    h = BaHold(50)
    h.hold(["ba1"], 1, 100)
    h.hold(["ba2", "ba3"], 2, 110)
    h.hold(["ba4"], 3, 120)
    assert h.get_timer() == 150
    assert h.acked_to(2, 115) == ["ba1", "ba2", "ba3"] and h.wait_ms_max == 15
    assert h.handle_timer(169) == [] and h.handle_timer(170) == ["ba4"]
    assert h.stats()["timeouts"] == 1 and h.stats()["acked"] == 3 and h.get_timer() is None
    h.hold(["x"], 0xFFFFFFFF, 200)              # the stream's seq wraps
    h.hold(["y"], 0, 201)
    assert h.acked_to(0, 202) == ["x", "y"]


def _keep(now=0):
    """Continuity around a sans-IO replica pair; the driver is a test double collecting _send."""
    sent = []
    rcfg = ReplicaConfig("2001:db8:aa::3", "2001:db8:aa::2", 4192, KEY, ack=True, ack_wait_ms=50)
    cfg = types.SimpleNamespace(journal=None, replica=rcfg, home_link=None)
    ha = types.SimpleNamespace(cfg=cfg, log=lambda *a, **k: None, _send=sent.extend, _apply_events=lambda: None)
    keep = Continuity(ha)
    a, b = acking_pair()
    keep.replica.core, keep.replica.active = a, True
    keep.replica._send = lambda now: None       # (no socket: the test carries a's datagrams itself)
    ha.cache = a.cache
    return keep, a, b, sent


def test_continuity_holds_bas_until_the_ack():
    keep, a, b, sent = _keep()
    b.handle_timer(5 + 100)
    carry(b, a, 5)                              # b's HELLO: it holds a whole copy
    assert a.peer_alive(5)
    outs = exchange(a.cache, bu4(1, now=T0 + 1000), NAT_SRC, 10, wall=T0 + 1000)
    for ev in a.cache.events():
        keep.changed(ev, 10, T0 + 1000)
    keep.flush(10, T0 + 1000)                   # the record leaves for the standby ...
    assert keep.hold_bas(outs, 10) == []        # ... and the BA waits
    assert keep.get_timer() <= 60
    carry(a, b, 11)
    a.receive(b.datagrams_to_send(11)[0], 12, T0)
    ev = a.next_event()
    while ev[0] != "acked":
        ev = a.next_event()
    keep.acked(ev[1], 12)
    assert sent == outs and keep.hold.stats()["acked"] == 1
    # the standby silent: the next BA leaves after ack_wait_ms, counted
    outs = exchange(a.cache, bu4(2, now=T0 + 2000), NAT_SRC, 20, wall=T0 + 2000)
    for ev in a.cache.events():
        keep.changed(ev, 20, T0 + 2000)
    keep.flush(20, T0 + 2000)
    assert keep.hold_bas(outs, 20) == []
    keep.handle_timer(69)
    assert len(sent) == 1
    keep.handle_timer(70)
    assert sent[1:] == outs and keep.hold.timeouts == 1
    # the standby gone (no message for 500 ms): nothing is held
    outs = exchange(a.cache, bu4(3, now=T0 + 3000), NAT_SRC, 600, wall=T0 + 3000)
    for ev in a.cache.events():
        keep.changed(ev, 600, T0 + 3000)
    keep.flush(600, T0 + 3000)
    assert keep.hold_bas(outs, 600) == outs and keep.hold.unheld == 1


def test_parse_replica_ack_fields(tmp_path):
    kf = tmp_path / "r.key"
    kf.write_text(KEY.hex())
    kf.chmod(0o600)
    base = {"peer": "2001:db8::3", "bind": "2001:db8::2", "key_file": "r.key"}
    r = parse_replica(dict(base), "HA config x", str(tmp_path))
    assert r.ack is False and r.ack_wait_ms == 50
    r = parse_replica(dict(base, ack=True, ack_wait_ms=20), "HA config x", str(tmp_path))
    assert r.ack is True and r.ack_wait_ms == 20
    with pytest.raises(UserError, match="replica.ack' must be true or false"):
        parse_replica(dict(base, ack="yes"), "HA config x", str(tmp_path))
    with pytest.raises(UserError, match="ack_wait_ms' must be an integer from 1 to 1000"):
        parse_replica(dict(base, ack=True, ack_wait_ms=0), "HA config x", str(tmp_path))


def test_a_clean_stop_sends_what_still_waits():
    keep, a, b, sent = _keep()
    b.handle_timer(5 + 100)
    carry(b, a, 5)
    outs = exchange(a.cache, bu4(1, now=T0 + 1000), NAT_SRC, 10, wall=T0 + 1000)
    for ev in a.cache.events():
        keep.changed(ev, 10, T0 + 1000)
    keep.flush(10, T0 + 1000)
    assert keep.hold_bas(outs, 10) == [] and sent == []
    keep.replica.close = lambda: None           # (no socket to close)
    keep.close()
    assert sent == outs
