"""The roam scenario's machinery on a live bench: probes, sniffer, captures, report, timeline.

With --app reference the board runs the bench's own CPython probe application (no mobility) and
re-associates with the same network: every roam must recover, nothing may be lost outside the
interruptions, and the interruption can only be about the link flap plus one probe interval."""
import argparse
import json
import os

from roam6_hil.scenarios import roam


def args_for(tmp_path, prefix, *extra):
    p = argparse.ArgumentParser()
    roam.add_arguments(p)
    return p.parse_args(["--report", str(tmp_path / "rep"), "--prefix", prefix, "--dwell", "0.2"] + list(extra))


def test_reference_roams_are_measured(tmp_path, prefix, capsys):
    rc = roam.run(args_for(tmp_path, prefix, "--app", "reference", "--roams", "4", "--traffic", "sensor"))
    out = capsys.readouterr().out
    rep = json.load(open(tmp_path / "rep" / "report.json"))
    s = rep["summary"]
    assert rc == 0, out
    assert s["roams"] == 4 and s["recovered_all"] and s["ok"]
    assert s["lost_outside_interruptions"] == 0 and s["duplicated_total"] == 0
    assert s["probes_received_board"] >= 0.95 * s["probes_sent"]
    for row in rep["rows"]:
        # re-association only: the gap is the flap plus a few probe intervals (bound loose for a
        # loaded CI machine)
        assert 0 < row["interruption_down_ms"] < 500 and 0 < row["interruption_up_ms"] < 500
        assert row["addr_to_first_probe_ms"] is not None
    assert "p50" in out and "timeline:" in out
    assert open(tmp_path / "rep" / "timeline.png", "rb").read(4) == b"\x89PNG"
    pcaps = os.listdir(tmp_path / "rep" / "pcap")
    assert "board-wlan0.pcap" in pcaps and "core-apC.pcap" in pcaps
    # the board's link carried the probes: its pcap is far more than a header
    assert os.path.getsize(tmp_path / "rep" / "pcap" / "board-wlan0.pcap") > 20000
