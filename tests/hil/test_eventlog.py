"""eventlog.EventReader, the bench's one reader of JSON event lines (no bench needed: a pipe)."""
import io
import json
import os
import threading
import time

from roam6_hil.eventlog import EventReader
from roam6_hil.report import mn_time


def _pipe():
    r, w = os.pipe()
    return os.fdopen(r, "rb"), os.fdopen(w, "wb", buffering=0)


def _line(w, obj):
    w.write((json.dumps(obj) if not isinstance(obj, str) else obj).encode() + b"\n")


def test_events_are_stamped_text_is_logged_and_readline_keeps_the_order(tmp_path):
    rd, w = _pipe()
    log = tmp_path / "x.log"
    er = EventReader(rd, str(log))
    _line(w, "ready")
    _line(w, {"ev": "start", "t_ms": 1000})
    _line(w, {"no_ev": 1})
    _line(w, "{not json")
    assert er.readline(2) == "ready"
    ev = er.wait(lambda e: e["ev"] == "start", 2)
    assert ev is not None and ev["t"] == mn_time(1000.5, ev["t_rx"])
    assert er.readline(2) == json.dumps({"ev": "start", "t_ms": 1000})
    assert er.readline(2) == json.dumps({"no_ev": 1})
    assert er.readline(2) == "{not json"
    assert er.readline(0.05) is None                     # nothing more yet
    assert [e["ev"] for e in er.events] == ["start"]     # only dicts with "ev" are events
    w.close()
    assert er.wait(lambda e: e["ev"] == "never", 2) is None and er.closed
    text = log.read_text().splitlines()
    assert len(text) == 4 and text[0].split(" ", 1)[1] == "ready"
    assert er.last_lines(2) == [json.dumps({"no_ev": 1}), "{not json"] and er.tail(1) == "{not json"


def test_wait_sees_later_events_and_since_and_mark_forget_earlier_ones():
    rd, w = _pipe()
    er = EventReader(rd)
    _line(w, {"ev": "a", "n": 1})
    assert er.wait(lambda e: e["ev"] == "a", 2)["n"] == 1
    t = time.monotonic()
    threading.Timer(0.1, _line, (w, {"ev": "a", "n": 2})).start()
    assert er.wait(lambda e: e["ev"] == "a", 2, since=t)["n"] == 2    # waited for the new one
    er.mark()
    assert er.events == [] and er.wait(lambda e: True, 0.05) is None
    _line(w, {"ev": "b"})
    assert er.wait(lambda e: True, 2)["ev"] == "b"
    w.close()


def test_without_stamp_an_event_keeps_its_own_time():
    er = EventReader(io.StringIO('{"ev": "addr", "t": 12.5, "t_ms": 3}\n'), stamp=False)
    ev = er.wait(lambda e: True, 2)
    assert ev["t"] == 12.5 and "t_rx" in ev
