"""Binding records (ha/record.py) and the journal (ha/journal.py), sans-IO: a cache's bindings
survive a snapshot/apply round trip and a journal written, compacted and damaged on disk."""
import os

import pytest

from roam6_host.ha import record as R
from roam6_host.ha.journal import Journal, JournalCorrupt

from ha_helpers import HOA, NAT_SRC, SPI, T0, bu4, exchange, make_cache, parse_ba


def bound_cache(seq=7, now=T0):
    c = make_cache()
    outs = exchange(c, bu4(seq, now=now), NAT_SRC, now, wall=now)
    assert parse_ba(outs[0][0])[1].status == 0
    c.events()
    return c


def test_record_round_trip_and_damage_refused():
    c = bound_cache()
    rec, = c.snapshot(T0 + 1000, T0 + 1000)
    assert rec.hoa == HOA and rec.seq == 7 and rec.transport == "udp4" and rec.peer == NAT_SRC[1:]
    assert rec.nat and rec.spi == SPI and rec.last_ts == c.sas[SPI].last_ts != 0
    assert rec.remaining_ms == 600 * 1000 - 1000 and rec.lifetime == 600
    data = rec.encode()
    assert R.decode(data) == rec
    assert len(data) < 120                      # compact: one small frame per change
    for bad in (data[:-1], data + b"x", b"\x02" + data[1:], data[:3] + b"\x09" + data[4:], b""):
        with pytest.raises(R.RecordError):
            R.decode(bad)


def test_apply_rebuilds_binding_with_remaining_lifetime_and_replay_state():
    src = bound_cache(seq=7)
    rec, = src.snapshot(T0, T0)
    dst = make_cache()
    assert dst.apply(R.decode(rec.encode()), 50, T0 + 10_000)      # 10 s later on the wall clock
    kind, b = dst.next_event()
    assert kind == "binding_added" and b.peer == NAT_SRC[1:] and b.seq == 7
    assert b.expires == 50 + 600_000 - 10_000
    assert dst.sas[SPI].last_ts == src.sas[SPI].last_ts
    # the next BU with the same number is refused with 135, the next number is accepted
    outs = exchange(dst, bu4(7, now=T0 + 11_000), NAT_SRC, 60, wall=T0 + 11_000)
    assert parse_ba(outs[0][0])[1].status == 135
    outs = exchange(dst, bu4(8, now=T0 + 12_000), NAT_SRC, 70, wall=T0 + 12_000)
    assert parse_ba(outs[0][0])[1].status == 0
    # a removal record ends it; an expired or unknown-SPI record changes nothing
    rem = dst.record(dst.bindings[HOA], 80, T0, removed=True)
    dst.events()
    assert dst.apply(rem, 80, T0) and dst.next_event().reason == "replica" and not dst.bindings
    assert not dst.apply(rec, 90, T0 + 700_000)
    rec.spi = 999
    assert not dst.apply(rec, 90, T0) and not dst.bindings


def test_journal_appends_compacts_and_restores(tmp_path):
    path = str(tmp_path / "ha.journal")
    c = bound_cache(seq=7)
    j = Journal(path, max_records=10)
    assert j.load() == ({}, [])
    j.start(c.snapshot(T0, T0))
    b = c.bindings[HOA]
    for seq in range(8, 17):
        b.seq = seq
        assert not j.append(c.record(b, T0, T0)) or seq == 16
    assert j.count == 9
    b.seq = 17
    assert j.append(c.record(b, T0, T0))          # the 10th: time to compact
    j.compact(c.snapshot(T0, T0))
    assert j.count == 0 and os.path.getsize(path + ".log") == 13
    b.seq = 18
    j.append(c.record(b, T0, T0))
    j.close()
    state, warnings = Journal(path).load()
    assert warnings == [] and state[HOA].seq == 18
    # a removal is the last word
    j2 = Journal(path)
    j2.load()
    j2.start(list(state.values()))
    j2.append(c.record(b, T0, T0, removed=True))
    j2.close()
    assert Journal(path).load()[0] == {}


def test_journal_torn_tail_dropped_corruption_refused(tmp_path):
    path = str(tmp_path / "ha.journal")
    c = bound_cache(seq=7)
    j = Journal(path)
    j.start([])
    j.append(c.record(c.bindings[HOA], T0, T0))
    j.close()
    with open(path + ".log", "ab") as f:
        f.write(b"\0\0\0\x50\1\2")                   # the process died inside the next write
    state, warnings = Journal(path).load()
    assert state[HOA].seq == 7 and "cut short" in warnings[0]
    data = bytearray(open(path + ".log", "rb").read())
    data[30] ^= 0xFF                                  # a flipped bit inside the record
    open(path + ".log", "wb").write(bytes(data))
    with pytest.raises(JournalCorrupt, match="checksum"):
        Journal(path).load()
    open(path, "wb").write(b"not a journal at all")
    with pytest.raises(JournalCorrupt, match="header"):
        Journal(path).load()
    Journal(path).set_aside()
    assert os.path.exists(path + ".corrupt") and Journal(path).load() == ({}, [])


def test_encode_binding_equals_record_encode():
    c = bound_cache(seq=9)
    b = c.bindings[HOA]
    sa = c.sas[SPI]
    assert R.encode_binding(b, sa, T0 + 5, T0 + 7) == c.record(b, T0 + 5, T0 + 7).encode()
    assert R.encode_binding(b, sa, T0, T0, R.REMOVED) == c.record(b, T0, T0, removed=True).encode()
    b.expires = T0 - 10                          # past its end: 0 left, never negative
    assert R.decode(R.encode_binding(b, sa, T0, T0)).remaining_ms == 0


def test_append_many_is_one_write_read_back_as_frames(tmp_path):
    """The records of one batch of BUs in one write (Continuity.flush): read back one by one, the
    count for compaction grows by the batch, and a cut inside the last frame loses only it."""
    c = bound_cache()
    b = c.bindings[HOA]
    sa = c.sas[SPI]
    recs = []
    for seq in (8, 9, 10):
        b.seq = seq
        recs.append(R.encode_binding(b, sa, T0, T0))
    path = str(tmp_path / "ha.journal")
    j = Journal(path, max_records=4)
    j.start([])
    assert not j.append_many([]) and not j.append_many(recs[:2]) and j.count == 2
    assert j.append_many(recs[2:] + recs[:1])          # 4 frames: compaction due
    j.close()
    state, warnings = Journal(path).load()
    assert not warnings and state[HOA].seq == 8         # the last frame written wins
    with open(path + ".log", "r+b") as f:
        f.truncate(os.path.getsize(path + ".log") - 3)
    state, warnings = Journal(path).load()
    assert state[HOA].seq == 10 and warnings            # the torn last frame dropped, said so
