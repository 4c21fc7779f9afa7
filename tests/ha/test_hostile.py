"""Whatever bytes arrive, the binding cache neither raises nor changes a binding it should not."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roam6.wire.checksum import checksum6

from ha_helpers import HOA, NAT_SRC, T0, bu4, exchange, make_cache

GOOD = bu4(7)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from(["udp4", "udp6", "ip6"]))
def test_random_bytes_never_crash(data, transport):
    c = make_cache()
    src = (transport, "2001:db8::1" if transport != "udp4" else "198.18.12.2", 1)
    c.receive(data, src, T0)
    assert c.bindings == {}


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(-20, 20))
def test_mutated_bu_never_crashes_or_binds_unauthenticated(flips, cut):
    data = bytearray(GOOD)
    for pos, val in flips:
        data[pos] = val
    if cut < 0:
        data = data[:cut]
    elif cut > 0:
        data += bytes(cut)
    c = make_cache()
    c.receive(bytes(data), NAT_SRC, T0)
    if HOA in c.bindings:   # only possible if the flips spared the MH (hop limit, flow label, trailer)
        assert bytes(data[40:]).startswith(GOOD[40:]) and bytes(data[8:40]) == GOOD[8:40]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=16, max_size=16), st.integers(0, 10 ** 13))
def test_unbound_data_any_source(src, now):
    c = make_cache()
    c.unbound_data(src, NAT_SRC, now)


FIRST = bu4(1)
SECOND = bu4(2, now=T0 + 1000)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SECOND) - 1), st.integers(0, 255)), min_size=0, max_size=4),
       st.integers(-8, 8), st.booleans())
def test_hot_path_and_codec_path_agree_on_mutated_bus(flips, cut, fix_checksum):
    """Differential: after both caches saw a good BU (the fast one learnt its layout), any mutation
    of the next BU gets the same answer, byte for byte, and leaves the same binding."""
    data = bytearray(SECOND)
    for pos, val in flips:
        data[pos] = val
    data = bytearray(data[:cut] if cut < 0 else data + bytes(cut))
    if fix_checksum and len(data) >= 48:     # let the mutation reach the rules after the checksum
        data[44:46] = b"\0\0"
        data[44:46] = checksum6(bytes(data[8:24]), bytes(data[24:40]), 135, bytes(data[40:])).to_bytes(2, "big")
    data = bytes(data)
    results = []
    for fast in (True, False):
        c = make_cache(fast=fast)
        exchange(c, FIRST, NAT_SRC, T0)
        out = exchange(c, data, NAT_SRC, T0 + 1000)
        b = c.bindings.get(HOA)
        results.append((out, b and (b.peer, b.seq, b.lifetime, b.coa)))
    assert results[0] == results[1]
