"""Benchmark (prints JSON): the MN's own cost per link event on MicroPython with a 64 KB heap —
the unix adapter parsing an rtnetlink address message and movement detection deciding. No
timing assertion (timing goals are reported, not unit-tested); the decisions are checked."""
import json

from bootnet import micropython
from nshelp import TestNamespaces


def test_link_event_cost_on_micropython():
    n = TestNamespaces()
    try:
        ns = n.add("b")  # a namespace of our own (its loopback is the interface watched)
        out = micropython(n, ns, "mp_movement_cost.py")
        r = out.next(60)
        print(json.dumps(r))
        # per roam: add A (moved), del A (detached), add B (moved), del B (detached)
        assert r["events"] == 2000 and r["decisions"] == 2000, r
        assert r["us_per_event"] > 0
    finally:
        n.teardown()
