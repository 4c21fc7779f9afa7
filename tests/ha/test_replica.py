"""The hot standby's replication protocol (ha/replica.py), sans-IO: two caches, two Replica
machines, datagrams carried by the test. Ordered, authenticated, and a stale standby is not
ready to take over until a whole copy has arrived."""
from roam6_host.ha.replica import Replica, parse_replica, seal, RECORDS

from ha_helpers import HOA, NAT_SRC, T0, bu4, exchange, make_cache, parse_ba

KEY = bytes(range(32))


def pair(now=0):
    a_cache, b_cache = make_cache(), make_cache()
    a = Replica(KEY, a_cache, now, active=True, epoch=7)
    b = Replica(KEY, b_cache, now, epoch=9)
    return a, b


def carry(src, dst, now, drop=()):
    n = 0
    for i, d in enumerate(src.datagrams_to_send(now)):
        if i not in drop:
            dst.receive(d, now, T0 + now)
            n += 1
    return n


def register(a, seq, now):
    wall = T0 + seq * 1000                      # RFC 4285 timestamps: a second apart
    outs = exchange(a.cache, bu4(seq, now=wall), NAT_SRC, now, wall=wall)
    assert parse_ba(outs[0][0])[1].status == 0
    for ev in a.cache.events():                 # what Continuity.changed does per binding event
        a.send_records([a.cache.record(ev.binding, now, wall)], now)


def test_standby_follows_in_order_and_accepts_next_sequence_after_takeover():
    a, b = pair()
    a.handle_timer(0)
    carry(a, b, 0)                              # HELLO: b hears an active peer
    assert not b.ready(0)
    a.handle_timer(1500)
    carry(a, b, 1500)
    assert not b.ready(1600)                    # past the start-up wait, but an active peer and no copy
    assert b.ready(2100)                        # the active went silent: ready with what it has
    b.handle_timer(0)
    carry(b, a, 0)                              # HELLO + SYNC_REQ
    carry(a, b, 0)                              # SYNC (empty cache)
    assert b.synced and b.ready(1) and b.next_event()[0] == "peer"
    assert b.next_event() == ("synced", 0, 1)
    register(a, 1, 10)
    register(a, 2, 20)
    assert carry(a, b, 20) == 2
    bb = b.cache.bindings[HOA]
    assert bb.seq == 2 and bb.peer == NAT_SRC[1:] and b.applied == 2
    # the standby takes over: the MN's next BU (seq 3) is accepted, the old number is not
    b.become(True, 30)
    outs = exchange(b.cache, bu4(2, now=T0 + 3_000), NAT_SRC, 31, wall=T0 + 3_000)
    assert parse_ba(outs[0][0])[1].status == 135
    outs = exchange(b.cache, bu4(3, now=T0 + 4_000), NAT_SRC, 32, wall=T0 + 4_000)
    assert parse_ba(outs[0][0])[1].status == 0


def test_wrong_key_and_replays_refused():
    a, b = pair()
    a.handle_timer(0)
    carry(a, b, 0)
    b.handle_timer(0)
    carry(b, a, 0)
    carry(a, b, 0)
    register(a, 1, 10)
    good = a.datagrams_to_send(10)
    forged = seal(bytes(32), RECORDS, 7, 1, good[0][16:-32])      # same body, wrong key
    b.receive(forged, 10, T0)
    assert b.refused == 1 and HOA not in b.cache.bindings
    assert b.next_event()[0] == "peer" and b.next_event()[0] == "synced"
    assert b.next_event()[0] == "refused"
    b.receive(good[0][:-1] + bytes([good[0][-1] ^ 1]), 10, T0)      # one bit of the MAC
    assert b.refused == 2
    b.receive(good[0], 10, T0 + 10)
    assert b.cache.bindings[HOA].seq == 1
    b.cache.bindings[HOA].seq = 1
    b.receive(good[0], 11, T0 + 11)            # replayed: old seq, ignored
    assert b.applied == 1 and b.ignored >= 1


def test_gap_makes_standby_stale_until_resync():
    a, b = pair()
    a.handle_timer(0)
    carry(a, b, 0)
    b.handle_timer(0)
    carry(b, a, 0)
    carry(a, b, 0)
    register(a, 1, 10)
    register(a, 2, 20)
    carry(a, b, 20, drop=(0,))                  # the first RECORDS lost
    assert not b.synced and not b.ready(21) and b.cache.bindings == {}
    assert b.next_event()[0] == "peer" and b.next_event()[0] == "synced" and b.next_event()[0] == "resync"
    b.handle_timer(200)                         # asks again
    carry(b, a, 200)
    a.handle_timer(200)
    carry(a, b, 200)
    assert b.synced and b.cache.bindings[HOA].seq == 2
    # an old SYNC replayed after a newer request is ignored (nonce)
    register(a, 3, 300)
    carry(a, b, 300)
    assert b.cache.bindings[HOA].seq == 3


def test_fresh_pair_without_active_peer_is_ready_after_wait():
    _a, b = pair()
    assert not b.ready(0) and b.ready(1000)


def test_parse_replica_errors(tmp_path):
    import pytest
    from roam6_host.errors import UserError
    kf = tmp_path / "r.key"
    kf.write_text(KEY.hex())
    kf.chmod(0o644)
    with pytest.raises(UserError, match="group or others"):
        parse_replica({"peer": "2001:db8::3", "bind": "2001:db8::2", "key_file": "r.key"}, "HA config x", str(tmp_path))
    kf.chmod(0o600)
    with pytest.raises(UserError, match="replica.peer"):
        parse_replica({"peer": "x", "bind": "2001:db8::2", "key_file": "r.key"}, "HA config x", str(tmp_path))
    r = parse_replica({"peer": "2001:db8::3", "bind": "2001:db8::2", "key_file": "r.key"}, "HA config x", str(tmp_path))
    assert r.key == KEY and r.port == 4192
