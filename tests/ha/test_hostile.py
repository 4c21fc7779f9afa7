"""Whatever bytes arrive, the binding cache neither raises nor changes a binding it should not."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import HOA, NAT_SRC, T0, bu4, make_cache

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
    if HOA in c.bindings:   # only possible if the flips left the authenticated bytes as they were
        assert bytes(data[:len(GOOD)]) == GOOD or bytes(data[40:]) .startswith(GOOD[40:])


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=16, max_size=16), st.floats(0, 1e10))
def test_unbound_data_any_source(src, now):
    c = make_cache()
    c.unbound_data(src, NAT_SRC, now)
