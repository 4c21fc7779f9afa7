"""`roam6 hil run roam --aaa`: the real MN (MicroPython) roams while the real HA gets its key from
a real FreeRADIUS (SQLite store in the bench folder); the HA's accounting per roam is read back
from FreeRADIUS's table: Start, an Interim-Update with each new care-of address, Stop at home."""
import argparse
import json
import shutil

import pytest

from roam6_hil.scenarios import roam


def test_mn_roams_with_the_ha_on_freeradius(tmp_path, prefix, capsys):
    if shutil.which("freeradius") is None:
        pytest.fail("FreeRADIUS is not installed: apt-get install freeradius freeradius-utils (deps/apt.txt)")
    p = argparse.ArgumentParser()
    roam.add_arguments(p)
    args = p.parse_args(["--report", str(tmp_path / "rep"), "--prefix", prefix, "--dwell", "0.25", "--roams", "3",
                         "--profile", "router", "--addressing", "static", "--no-pcap", "--aaa", "--family", "both"])
    rc = roam.run(args)
    out = capsys.readouterr().out
    rep = json.load(open(tmp_path / "rep" / "report.json"))
    assert rc == 0 and rep["summary"]["ok"] and rep["summary"]["deregistered"] is True, out
    rows, acct = rep["rows"], rep["aaa_accounting"]
    assert [r["net"] for r in rows] == ["apB", "apC", "apA", "home"], out
    statuses = [a["status"] for a in acct]
    assert statuses[0] == "Start" and statuses[-1] == "Stop", out
    assert set(statuses[1:-1]) == {"Interim-Update"}, out
    # every roam's care-of address is in a record, in roam order (the MN may also move between
    # its addresses on one network, e.g. udp4 then udp6 on apC: more records than roams)
    def names(a, r):
        return a["coa"].startswith(r["coa"] + " via ") and a["transport"] == r["transport"]

    i = 0
    for r in rows[:3]:
        while i < len(acct) and not names(acct[i], r):
            i += 1
        assert i < len(acct), (r, acct)
    assert acct[-1]["terminatecause"] == "User-Request" and acct[-1]["inputpackets"] > 0
    assert "accounting (FreeRADIUS roam6_acct_log): %d record(s)" % len(acct) in out
    # RFC 5555 from AAA: the IPv4 HoA is the device's Framed-IP-Address (not the HA's pool; the
    # HA has no keys file, its leases file is ha.json's ipv4_leases_file), and it roams too
    from roam6_hil.aaa import AAA_HOA4
    v4 = rep["ipv4"]
    assert v4["hoa4"] == AAA_HOA4 and v4["summary"]["recovered_all"], out
    assert [r["net"] for r in v4["rows"]] == ["apB", "apC", "apA"] and v4["summary"]["lost_outside_interruptions"] == 0
    assert [r["transport"] for r in v4["rows"]] == [r["transport"] for r in rows[:3]]   # udp4, then IPv4 over udp6
    assert v4["summary"]["family"] == "ipv4" and rep["summary"]["family"] == "ipv6"
    assert set(v4["compare"]) == {"ipv4", "ipv6"}
    assert "IPv4 home address %s, from the IPv4-only correspondent:" % AAA_HOA4 in out
