"""`roam6 hil run roam --family ipv4` (RFC 5555 IPv4 home address): the MN roams with its IPv4
HoA, probed from the IPv4-only correspondent (cn4). Tiny on purpose (two roams); --family both
(two streams told apart, IPv4 over udp6 on apA) runs in tests/hil/test_roam_aaa.py; the 20-roam
figures come from the command (README)."""
import argparse
import json

import pytest

from roam6_host.errors import UserError
from roam6_hil.scenarios import roam


def _args(*extra):
    p = argparse.ArgumentParser()
    roam.add_arguments(p)
    return p.parse_args(list(extra))


def test_ipv4_hoa_on_the_esp32_profile_roams(tmp_path, prefix, capsys):
    """--family ipv4 on the ESP32's configuration (100K heap, udp4 only, the board addressing
    itself): the IPv4 HoA from the HA's pool, probed from cn4 across two roams (apB -> apC ->
    apB, IPv4 over udp4 behind NAT). Also the guard on the MN's heap with the IPv4 HoA on:
    0.7 KB more ran this configuration out of memory at its second roam."""
    rc = roam.run(_args("--report", str(tmp_path / "rep"), "--prefix", prefix, "--dwell", "0.25", "--roams", "2",
                        "--profile", "esp32", "--addressing", "auto", "--no-pcap", "--family", "ipv4"))
    out = capsys.readouterr().out
    rep = json.load(open(tmp_path / "rep" / "report.json"))
    assert rc == 0 and rep["summary"]["ok"], out
    s = rep["summary"]
    assert rep["family"] == "ipv4" and s["family"] == "ipv4" and "ipv4" not in rep
    assert s["dst"].startswith("198.18.50.") and "from the IPv4-only correspondent" in out
    assert [r["net"] for r in rep["rows"]] == ["apC", "apB"] and {r["transport"] for r in rep["rows"]} == {"udp4"}
    for r in rep["rows"]:
        assert r["recovered_down"] and r["recovered_up"] and r["recovered_echo"], (r, out)
        assert r["interruption_down_ms"] < 2500 and r["interruption_up_ms"] < 2500, (r, out)
    assert s["lost_outside_interruptions"] == 0 and s["probes_received_cn"] > 20, out
    assert not [e for e in rep["mn_events"] if e["ev"] == "error"], out


def test_family_mistakes_are_refused_before_the_bench(tmp_path):
    with pytest.raises(UserError) as e:
        roam.check_args(_args("--family", "ipv4", "--app", "reference"))
    assert "--app mn" in str(e.value)
    with pytest.raises(SystemExit):
        _args("--family", "ipv5")
    for argv, why in ((("--ipv4-tlv",), "needs --family ipv4 or both"),
                      (("--family", "both", "--ipv4-tlv", "--profile", "rp2040"), "leaves the TLV header out")):
        with pytest.raises(UserError) as e:
            roam.check_args(_args(*argv))
        assert why in str(e.value)
