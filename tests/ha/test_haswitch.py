"""Home Agent Switch job (ha/haswitch.py), sans-IO with a virtual clock: pacing over devices,
RFC 5142 back-off per device (5 s doubling to 20 s, never above 1/s), done when the binding is
gone, failed at the deadline; the message decodes and carries the right addresses."""
from roam6_codec.mh import HomeAgentSwitch, decode_mh
from roam6.wire.ipv6 import decode_ipv6

from roam6_host.ha.haswitch import SwitchJob

from ha_helpers import HOA, HOA2, KEY2, NAI2, NAT_SRC, SPI2, T0, a6, bu4, build_bu, exchange, make_cache, HA, V4COA


def two_bound():
    c = make_cache()
    exchange(c, bu4(1), NAT_SRC, 0, wall=T0)
    bu = build_bu(KEY2, SPI2, NAI2, HOA2, HA, 1, 150, "udp4", v4coa=V4COA)
    exchange(c, bu, ("udp4", "198.18.12.3", 40002), 0, wall=T0)
    assert set(c.bindings) == {HOA, HOA2}
    return c


def test_pacing_backoff_done_and_deadline():
    c = two_bound()
    job = SwitchJob(c, [HOA, HOA2], [a6("2001:db8:bb::1")], 0, deadline_ms=40_000, per_second=1)
    sent = []
    t = 0
    while not job.finished() and t <= 50_000:
        nt = job.get_timer()
        t = max(t, nt)
        if t == 12_000:
            del c.bindings[HOA]                 # the first device deregistered here
        job.handle_timer(t)
        for d, dest in job.datagrams_to_send(t):
            msg = decode_mh(decode_ipv6(d).payload)
            assert isinstance(msg, HomeAgentSwitch) and msg.addresses == [a6("2001:db8:bb::1")]
            sent.append((t, decode_ipv6(d).dst, dest))
        t += 1 if nt == t else 0
    to1 = [s for s, dst, _ in sent if dst == HOA]
    to2 = [s for s, dst, _ in sent if dst == HOA2]
    assert to1[0] == 0 and to2[0] == 1000             # one message a second over all devices
    assert to1 == [0, 5000] and to2[:4] == [1000, 6000, 16000, 36000]   # 5, 10, 20 s gaps (capped)
    assert all(b - a >= 1000 for a, b in zip(to2, to2[1:]))
    assert job.done == [HOA] and job.failed == [HOA2]
    kinds = []
    while True:
        ev = job.next_event()
        if ev is None:
            break
        kinds.append(ev[0])
    assert kinds.count("switch_done") == 1 and kinds.count("switch_failed") == 1
    assert sent[0][2] == NAT_SRC                       # to the binding's NAT-mapped path
