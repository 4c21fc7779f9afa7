"""footprint_run: the pieces the three footprint sections share, on made-up MN output."""
import json

import pytest

from roam6_host.errors import UserError
from roam6_host.footprint_run import HEAP_GOAL, events_of, heap_figures, output_tail, registered

LINES = [json.dumps(e) + "\n" for e in (
    {"ev": "start", "t_ms": 0, "heap": 20000},
    {"ev": "heap", "t_ms": 5, "alloc": 21000, "free": 40000},
    {"ev": "ba", "t_ms": 9, "status": 0, "bu_ba_ms": 1.5},
    {"ev": "registered", "t_ms": 9},
    {"ev": "heap", "t_ms": 9, "alloc": 23000, "free": 38000},
)] + ["not json\n"]


def test_events_and_registered():
    ev = events_of(LINES)
    assert [e["ev"] for e in ev] == ["start", "heap", "ba", "registered", "heap"]
    assert registered(ev) and not registered(ev[:4])       # the heap after registering is needed


def test_heap_figures_read_before_and_after_registration():
    d = heap_figures(events_of(LINES), LINES, "64K", "test")
    assert d["heap_in_use_after_registration"] == 23000 and d["heap_free_after_registration"] == 38000
    assert d["heap_in_use_before_first_bu"] == 21000 and d["runtime_bytes"] == 2000
    assert d["heap_code_and_buffers"] == 20000 and d["heap_node_state_bytes"] == 3000
    assert d["heap_goal_met"] == (23000 <= HEAP_GOAL) and d["bu_ba_ms"] == 1.5


def test_no_registration_is_a_user_error_with_the_tail():
    with pytest.raises(UserError) as e:
        heap_figures(events_of(LINES[:3]), LINES[:3], "64K", "test")
    assert "did not register under -X heapsize=64K" in str(e.value) and e.value.exit_code == 1


def test_output_tail():
    assert output_tail(["a\n", "\n", "b\n", "c\n"]) == "b | c" and output_tail([]) == "no output"
