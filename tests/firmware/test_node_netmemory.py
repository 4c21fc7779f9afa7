"""The per-network memory of Detecting Network Attachment (roam6.node.netmemory): a few entries,
kept in a file, never returned past their lease or lifetime."""
import os

from roam6.node.netmemory import NetMemory, key

from support import fresh_state_file

R = b"\xc0\x00\x02\x01"
MAC = b"\x02\x00\x00\x00\xb1\x01"
A = b"\xc0\x00\x02\x32"


def _mem(name):
    return NetMemory(fresh_state_file("r6nets-" + name))


def test_key_is_prefix_and_router_mac():
    assert key(4, A, 24, MAC) == key(4, b"\xc0\x00\x02\x99", 24, MAC)     # same network, other host
    assert key(4, A, 24, MAC) != key(4, A, 24, b"\x02\x00\x00\x00\xb1\x02")  # another router
    assert key(4, A, 24, MAC) != key(4, b"\xc0\x00\x03\x32", 24, MAC)     # another prefix
    assert key(6, bytes(16), 64, MAC).startswith("6/")


def test_round_trip_through_the_file():
    m = _mem("rt")
    k = m.remember(4, A, 24, R, MAC, [R], 1000, R)
    m.save()
    n = NetMemory(m.path).load(999)
    (e,) = n.candidates(4, 999)
    assert (e["k"], e["a"], e["p"], e["r"], e["m"], e["d"], e["x"], e["s"]) == (k, A, 24, R, MAC, [R], 1000, R)
    assert n.candidates(6, 999) == []
    os.remove(m.path)


def test_never_past_the_lease():
    m = _mem("stale")
    m.remember(4, A, 24, R, MAC, [], 1000)
    assert len(m.candidates(4, 999)) == 1
    assert m.candidates(4, 1000) == []       # at its expiry: gone
    m.save()
    n = NetMemory(m.path).load(5000)          # a stale entry in the file is dropped on load
    assert n.entries == [] and n.dropped == 1
    os.remove(m.path)


def test_few_entries_least_recently_used_goes():
    m = NetMemory(None, cap=2)
    k1 = m.remember(4, A, 24, R, MAC, [], 100)
    k2 = m.remember(4, b"\x0a\x00\x00\x05", 24, b"\x0a\x00\x00\x01", MAC, [], 100)
    m.used(k1)                                # k1 used again: k2 is now the oldest
    m.remember(6, bytes(15) + b"\x05", 64, b"\xfe\x80" + bytes(14), MAC, [], 100)
    ks = [e["k"] for e in m.entries]
    assert len(ks) == 2 and k1 in ks and k2 not in ks
    assert m.forget(k1) and not m.forget(k1)


def test_renewing_replaces_the_entry():
    m = NetMemory(None)
    m.remember(4, A, 24, R, MAC, [], 100)
    m.remember(4, A, 24, R, MAC, [], 500)
    (e,) = m.entries
    assert e["x"] == 500


def test_no_memory_remembers_nothing():
    m = NetMemory(None, cap=0)
    m.remember(4, A, 24, R, MAC, [], 100)
    assert m.candidates(4, 0) == []
    m.save()                                  # no path: nothing written, no error


def test_damaged_file_is_an_empty_memory():
    p = fresh_state_file("r6nets-bad")
    for text in ("{not json", '{"v": 1, "nets": 5}', '{"v": 2, "nets": []}'):
        with open(p, "w") as f:
            f.write(text)
        assert NetMemory(p).load(0).entries == []
    # one damaged entry does not cost the good one
    with open(p, "w") as f:
        f.write('{"v": 1, "nets": [{"f": 9}, {"k": "x", "f": 4, "a": "c0000232", "p": 24, "r": "c0000201",'
                ' "m": "020000000b101", "d": [], "x": 50}]}')
    # (an odd-length MAC is damage too)
    assert NetMemory(p).load(0).entries == []
    with open(p, "w") as f:
        f.write('{"v": 1, "nets": [{"f": 9}, {"k": "x", "f": 4, "a": "c0000232", "p": 24, "r": "c0000201",'
                ' "m": "02000000b101", "d": [], "x": 50}]}')
    (e,) = NetMemory(p).load(0).entries
    assert e["a"] == A and e["m"] == MAC
    os.remove(p)
