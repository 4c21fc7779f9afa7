"""config.json "standby_retry_ms" (node/standbyretry.py, CONTRACTS.md §5): with a hot-standby HA pair
the first BU of a move unanswered for that long is sent again once (a BU lost with a crashed HA
costs that, not RFC 6275's 1 s); first registrations, refreshes and retransmissions keep the RFC's
timers; the field is checked, and without it nothing of this is loaded."""
import sys

from roam6.core.bul import HomeBinding
from roam6.node import eventlog
from roam6.node.config import ConfigError, parse_config
from support import BU, raises

COA = bytes([192, 0, 2, 100])
COA2 = bytes([192, 0, 2, 101])
HOA = bytes(15) + b"\x01"
RAW = {"nai": "b@example.test", "spi": 4096, "key": "00" * 16, "hoa": "2001:db8:aa::100",
       "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1", "ha_ipv4": "198.18.1.2", "transports": ["udp4"]}


def _config(extra):
    raw = dict(RAW)
    raw.update(extra)
    return parse_config(raw)


def _events(b):
    evs = []
    while True:
        e = b.next_event()
        if e is None:
            return evs
        evs.append(e)


def test_field_is_checked_and_loads_the_module_only_when_given():
    was = eventlog.report
    loaded = "roam6.node.standbyretry" in sys.modules
    _config({})
    assert eventlog.report is was and ("roam6.node.standbyretry" in sys.modules) == loaded
    for bad in (0, 19, 1001, "150", True, None):
        assert raises(ConfigError, _config, {"standby_retry_ms": bad}).field == "standby_retry_ms"
    from roam6.node import standbyretry
    try:
        _config({"standby_retry_ms": 150})
        assert standbyretry._ms[0] == 150 and eventlog.report is standbyretry.report
    finally:                        # the rest of this process's tests: no wrapper, no hurry
        standbyretry._ms[0] = 0
        eventlog.report = standbyretry._report


def test_the_first_bu_of_a_move_is_retried_once_after_the_configured_time():
    from roam6.node import standbyretry
    b = HomeBinding(lifetime_s=600, timestamps=False, seq=100, hoa=HOA)
    try:
        standbyretry._ms[0] = 150
        b.move(COA, 0)                                   # first registration: the HA runs DAD
        (ev,) = [e for e in _events(b) if e[0] == "bu"]
        assert not standbyretry.hurry(b, ev, 0) and b.get_timer() == 1500
        (r,) = [BU(x) for x in b.bu_to_send()]
        assert b.receive_ba(0, r.seq, 150, None, None, None, 40)
        for e in _events(b):
            standbyretry.hurry(b, e, 40)                 # ("registered", COA, ...): the CoA noted
        b.move(COA2, 10000)                              # a roam while bound: hurried once
        (ev,) = [e for e in _events(b) if e[0] == "bu"]
        assert standbyretry.hurry(b, ev, 10000) and b.get_timer() == 10150
        b.bu_to_send()
        b.handle_timer(10150)
        (r,) = [BU(x) for x in b.bu_to_send()]
        assert r.coa == COA2 and b.get_timer() == 12150  # then RFC 6275's doubled back-off
        (ev,) = [e for e in _events(b) if e[0] == "bu"]
        assert not standbyretry.hurry(b, ev, 10150) and b.get_timer() == 12150      # once per move
        assert b.receive_ba(0, r.seq, 150, None, None, None, 10160)
        for e in _events(b):
            standbyretry.hurry(b, e, 10160)
        b.handle_timer(b.get_timer())                    # the refresh: same CoA, not hurried
        (ev,) = [e for e in _events(b) if e[0] == "bu"]
        t = b.get_timer()
        assert not standbyretry.hurry(b, ev, t - 1000) and b.get_timer() == t
        standbyretry._ms[0] = 0                          # not configured: never hurries
        b.move(COA, 500000)
        (ev,) = [e for e in _events(b) if e[0] == "bu"]
        assert not standbyretry.hurry(b, ev, 500000) and b.get_timer() == 501000
    finally:
        standbyretry._ms[0] = 0
        standbyretry._coa[0] = None
