"""`hil run roam --dna-nak` on a live bench: the board's lease on the network it comes back to is
given to another client meanwhile (dnsmasq NAKs the INIT-REBOOT). The MN on MicroPython, the real
HA and dnsmasq: the board must move to a new address within one DHCP exchange, register it, and
lose nothing outside the roam's window (docs/ARCHITECTURE.md "Addressing by the board")."""
import argparse
import json

import pytest

from roam6_hil.scenarios import roam
from roam6_host.errors import UserError


def _args(tmp_path, prefix, *extra):
    p = argparse.ArgumentParser()
    roam.add_arguments(p)
    # 0.5 s on each network: the NAKed roam's second BU (from the new address) is the MN's 4th
    # within a second at a 0.25 s dwell, and RFC 6275's MAX_UPDATE_RATE (3 a second) holds it
    # back past the end of the run
    return p.parse_args(["--report", str(tmp_path / "rep"), "--prefix", prefix, "--dwell", "0.5", "--no-pcap"]
                        + list(extra))


def test_lease_given_away_meanwhile(tmp_path, prefix, capsys):
    rc = roam.run(_args(tmp_path, prefix, "--roams", "2", "--profile", "esp32", "--addressing", "auto", "--dna-nak"))
    out = capsys.readouterr().out
    rep = json.load(open(tmp_path / "rep" / "report.json"))
    s, rows = rep["summary"], rep["rows"]
    assert rc == 0 and s["ok"], out
    n = s["dna_nak"]
    assert n["ok"] and n["roam"] == 2 and rows[1]["net"] == "apB", out     # apB: where the board started
    old = n["given_away"]
    assert old and n["old"] == old and n["new"] and n["new"] != old, n     # NAKed: the remembered one
    assert n["exchanges_after_nak"] == 1 and n["new_ba_ms"] > n["nak_ms"], n
    assert s["dhcp_naks"] == 1 and s["revisited"] == 1, out                # confirmed (same router), then NAKed
    assert rows[1]["coa"] == n["new"] and rows[1]["recovered_down"] and rows[1]["recovered_echo"]
    assert s["lost_outside_interruptions"] == 0 and s["duplicated_total"] == 0, out
    # the MN registered the new address, the old one was never registered again after the NAK
    bas = [e for e in rep["mn_events"] if e["ev"] == "ba" and e["t"] >= rep["roam_stamps"][1]["t_down"]]
    assert bas and bas[-1]["coa"] == n["new"] and bas[-1]["status"] == 0
    assert "given to another client" in out and "1 DHCP exchange(s)" in out


def test_refused_where_it_cannot_show(tmp_path, prefix):
    with pytest.raises(UserError, match="--addressing auto"):
        roam.run(_args(tmp_path, prefix, "--roams", "2", "--addressing", "static", "--dna-nak"))
    with pytest.raises(UserError, match="--roams 3"):
        roam.run(_args(tmp_path, prefix, "--roams", "1", "--addressing", "auto", "--dna-nak"))
    assert not (tmp_path / "rep").exists()          # refused before anything was made
