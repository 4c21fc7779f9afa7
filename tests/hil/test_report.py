"""report.py's arithmetic on constructed probe records (no network): every figure is computed by
hand from how the records were built."""
import json
import re

import pytest

from roam6_hil import report

T0 = 100.0
DT = 0.005


def build(mode="echo"):
    # CN sends seq n at T0 + n*DT for 400 probes (2 s). A roam at t=101.0 (seq 200's send time):
    # probes 198..203 are lost on the way down (sent 100.99..101.015); probe 300 is lost later
    # (outside the interruption); probe 250 reaches the board twice; 260 arrives after 261.
    sent = [(n, T0 + n * DT) for n in range(400)]
    down, echo = [], []
    for n, t in sent:
        if 198 <= n <= 203 or n == 300:
            continue
        ta = t + 0.0005 + (0.006 if n == 260 else 0)
        down.append((n, ta))
        if n == 250:
            down.append((n, ta + 0.0001))
        echo.append((n, ta + 0.0005))
    roams = [{"net": "apC", "t_down": 100.5, "t_link_up": 100.503, "t_addr": 100.504, "addr": "x"},
             {"net": "apB", "t_down": 100.99, "t_link_up": 100.995, "t_addr": 101.012, "addr": "192.0.2.50"}]
    events = [{"t": 101.013, "ev": "bu", "coa": "192.0.2.50", "transport": "udp4"},
              {"t": 101.0145, "ev": "ba", "bu_ba_ms": 1.5, "status": 0, "coa": "192.0.2.50", "transport": "udp4"},
              {"t": 100.2, "ev": "heap", "alloc": 20000}, {"t": 101.9, "ev": "heap", "alloc": 20100}]
    cn = {"sent": sent, "echo": echo, "up": []}
    sniff = {"down": down, "up": [], "echo_out": []}
    return cn, sniff, roams, events


def test_interruption_loss_duplicates_reorders():
    cn, sniff, roams, events = build()
    rep = report.analyse(cn, sniff, roams, events, "echo", t_end=T0 + 2.1)
    r1, r2 = rep["rows"]
    # roam 1 at 100.5: nothing lost, gap is the 5 ms probe spacing around it
    assert r1["lost_down"] == 0 and r1["recovered_down"] and r1["interruption_down_ms"] == pytest.approx(5.0, abs=0.01)
    # roam 2 at 100.99: last arrival before = seq 197 (sent 100.985, +0.5 ms); first new = seq 204 (101.02)
    assert r2["interruption_down_ms"] == pytest.approx((101.02 + 0.0005 - 100.9855) * 1000, abs=0.01)
    assert r2["interruption_up_ms"] == pytest.approx((101.021 - 100.986) * 1000, abs=0.01)
    assert r2["lost_down"] == 7                 # 198..203 in the interruption, 300 outside
    assert r2["lost_outside"] == 1 and rep["summary"]["lost_outside_interruptions"] == 1
    assert r2["lost_up"] == 0                   # every probe that reached the board was echoed
    assert r2["duplicated"] == 1 and r2["reordered"] == 2   # 260 after 261 at the board, and its echo
    assert r2["bu_ba_ms"] == 1.5 and r2["transport"] == "udp4" and r2["coa"] == "192.0.2.50"
    assert r2["addr_to_first_probe_ms"] == pytest.approx((101.0205 - 101.012) * 1000, abs=0.01)
    assert r2["mn_ms"] == pytest.approx(1.0, abs=0.01)
    assert r2["link_ms"] == pytest.approx(5.0, abs=0.01) and r2["addr_ms"] == pytest.approx(17.0, abs=0.01)
    s = rep["summary"]
    assert s["recovered_all"] and s["heap_first"] == 20000 and s["heap_last"] == 20100
    assert s["interruption_down_ms"]["max"] == r2["interruption_down_ms"]
    assert s["interruption_down_ms"]["p50"] == r1["interruption_down_ms"]


def test_no_recovery_is_reported():
    cn, sniff, roams, events = build()
    # nothing arrives after the second roam
    sniff["down"] = [x for x in sniff["down"] if x[1] < 100.99]
    cn["echo"] = [x for x in cn["echo"] if x[1] < 100.99]
    rep = report.analyse(cn, sniff, roams, events, "echo", t_end=T0 + 2.1)
    assert not rep["rows"][1]["recovered_down"] and not rep["summary"]["recovered_all"]
    assert rep["rows"][1]["interruption_down_ms"] is None


def test_sensor_mode_uses_the_boards_stream_and_departure_times():
    cn, sniff, roams, events = build()
    # the board sends its own stream every 5 ms; it leaves the radio at T0+n*DT, reaches the CN
    # 1 ms later; 198..201 never leave... 199 leaves but is lost upstream
    up_out = [(n, T0 + n * DT) for n in range(400) if not (198 <= n <= 201) or n == 199]
    cn["up"] = [(n, t + 0.001) for n, t in up_out if n != 199]
    sniff["up"] = up_out
    rep = report.analyse(cn, sniff, roams, events, "sensor", t_end=T0 + 2.1)
    r2 = rep["rows"][1]
    assert r2["lost_up"] == 1
    assert r2["interruption_up_ms"] == pytest.approx((T0 + 202 * DT + 0.001 - (T0 + 197 * DT + 0.001)) * 1000, abs=0.01)


def test_mn_clock_unwrap():
    # ticks_ms wraps at 2**30 ms: a value just after the wrap maps next to the reference time
    ref = (1 << 30) / 1000.0 + 5.0
    assert report.mn_time(4000, ref) == pytest.approx(ref - 1.0)
    assert report.mn_time(123456, 123.0) == pytest.approx(123.456)


def test_table_timeline_and_json(tmp_path):
    cn, sniff, roams, events = build()
    rep = report.analyse(cn, sniff, roams, events, "echo", t_end=T0 + 2.1)
    text = report.table(rep)
    assert "p50" in text and "udp4" in text and "192.0.2.50" in text
    path = report.write(rep, str(tmp_path))
    assert json.load(open(path))["summary"]["roams"] == 2
    png = report.timeline(rep, cn, sniff, roams, str(tmp_path / "timeline.png"), "echo", T0)
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_echo_lost_as_the_carrier_goes_counts_in_that_roam():
    """Probe 197 reached the board just before the roam at 100.99; its echo died with the link.
    That loss belongs to roam 2's interruption, not to roam 1's window where its send time is."""
    cn, sniff, roams, events = build()
    cn["echo"] = [x for x in cn["echo"] if x[0] not in (196, 197)]
    rep = report.analyse(cn, sniff, roams, events, "echo", t_end=T0 + 2.1)
    r1, r2 = rep["rows"]
    assert r2["lost_up"] == 2 and r1["lost_up"] == 0
    assert rep["summary"]["lost_outside_interruptions"] == 1      # only probe 300
    assert r2["interruption_up_ms"] == pytest.approx((101.021 - 100.976) * 1000, abs=0.01)


def test_sensor_mode_needs_the_application_to_answer_again():
    """The board's stream flows and probes reach its radio, but no echo comes back after roam 2
    (the application never got them): not recovered."""
    cn, sniff, roams, events = build()
    up_out = [(n, T0 + n * DT) for n in range(400)]
    cn["up"] = [(n, t + 0.001) for n, t in up_out]
    sniff["up"] = up_out
    cn["echo"] = [x for x in cn["echo"] if x[1] < 100.99]
    rep = report.analyse(cn, sniff, roams, events, "sensor", t_end=T0 + 2.1)
    r2 = rep["rows"][1]
    assert r2["recovered_down"] and r2["recovered_up"] and not r2["recovered_echo"]
    assert not rep["summary"]["recovered_all"]
    assert rep["rows"][0]["recovered_echo"]


def test_split_stages_never_negative_and_add_up():
    """A revisit: the board's address (RFC 4436 confirmed) is announced before the bench's own
    link-up stamp, and a probe reaches the board's radio before the MN logs its BA. Every stage
    is still >= 0, and the stages add up to link down -> first probe."""
    cn, sniff, roams, events = build()
    roams[1]["t_link_up"], roams[1]["t_addr"] = 101.004, 101.001      # address 3 ms before the link stamp
    events[0]["t"], events[1]["t"] = 101.002, 101.03                   # BU at 101.002, BA logged after the probe
    rep = report.analyse(cn, sniff, roams, events, "echo", t_end=T0 + 2.1)
    r2 = rep["rows"][1]
    first = 101.0205                                                   # seq 204 reaches the board
    assert r2["link_ms"] == pytest.approx(11.0, abs=0.01)              # t_down -> the address (link up by then)
    assert r2["addr_ms"] == 0.0 and r2["mn_ms"] == pytest.approx(1.0, abs=0.01)
    assert r2["bu_ba_stage_ms"] == pytest.approx((first - 101.002) * 1000, abs=0.01)
    assert r2["ba_to_first_probe_ms"] == 0.0
    stages = [r2[k] for k, _ in report.SPLIT]
    assert all(v >= 0 for v in stages)
    assert sum(stages) == pytest.approx(r2["split_total_ms"], abs=0.002)
    assert r2["split_total_ms"] == pytest.approx((first - 100.99) * 1000, abs=0.01)
    m = rep["summary"]["split_mean_ms"]
    assert m["n"] == 1 and m["total"] == pytest.approx(sum(m[k] for k, _ in report.SPLIT), abs=0.002)
    line = [x for x in report.table(rep).splitlines() if x.startswith("where the time goes")][0]
    assert "address 0.0" in line and not re.search(r"-\d", line)     # no negative stage shown


def test_timeline_goal_verdict():
    """The picture's verdict line: the revisit goal (p50 <= 20, p90 <= 40 ms both ways) met or not."""
    from roam6_hil import timeline
    rep = {"addressing": "auto", "app": "mn", "summary": {
        "revisited": 19, "revisit_interruption_down_ms": {"n": 19, "p50": 10.0, "p90": 25.0},
        "revisit_interruption_up_ms": {"n": 19, "p50": 11.0, "p90": 41.0}}}
    text, met = timeline._goal(rep)
    assert not met and "NOT met" in text and "p90 25.0 / 41.0" in text
    rep["summary"]["revisit_interruption_up_ms"]["p90"] = 30.0
    assert timeline._goal(rep)[1]
    rep["app"] = "reference"
    assert timeline._goal(rep) is None
