"""`roam6 hil run roam --family both` (RFC 5555 IPv4 home address): the MN roams with both home
addresses; probes from the IPv4-only correspondent (cn4) to the IPv4 HoA and from the CN to the
IPv6 HoA, each stream analysed on its own. Tiny on purpose (one roam: apA -> apB, IPv4 over udp6
then over udp4 behind NAT); the 20-roam figures come from the command (README)."""
import argparse
import json

import pytest

from roam6_host.errors import UserError
from roam6_hil.scenarios import roam


def _args(*extra):
    p = argparse.ArgumentParser()
    roam.add_arguments(p)
    return p.parse_args(list(extra))


def test_both_home_addresses_recover_after_a_roam(tmp_path, prefix, capsys):
    rc = roam.run(_args("--report", str(tmp_path / "rep"), "--prefix", prefix, "--dwell", "0.25", "--roams", "1",
                        "--profile", "router", "--addressing", "static", "--no-pcap", "--family", "both"))
    out = capsys.readouterr().out
    rep = json.load(open(tmp_path / "rep" / "report.json"))
    assert rc == 0 and rep["summary"]["ok"], out
    assert rep["family"] == "both" and rep["summary"]["family"] == "ipv6"
    v4 = rep["ipv4"]
    assert v4["hoa4"].startswith("198.18.50.") and v4["summary"]["family"] == "ipv4"
    assert v4["summary"]["dst"] == v4["hoa4"]
    # the IPv4 stream is judged on the roams before home: apB (IPv4 over udp4, NAT)
    assert [r["net"] for r in v4["rows"]] == ["apB"] and v4["rows"][0]["transport"] == "udp4"
    r4 = v4["rows"][0]
    assert r4["recovered_down"] and r4["recovered_up"] and r4["recovered_echo"], (r4, out)
    assert r4["interruption_down_ms"] < 2500 and r4["interruption_up_ms"] < 2500, (r4, out)
    assert v4["summary"]["lost_outside_interruptions"] == 0, out
    # the two streams were told apart: each got its own probes back
    assert v4["summary"]["probes_received_cn"] > 20 and rep["summary"]["probes_received_cn"] > 20
    assert [r["net"] for r in rep["rows"]] == ["apB", "home"]
    assert "IPv4 home address %s, from the IPv4-only correspondent:" % v4["hoa4"] in out
    assert set(v4["compare"]) == {"ipv4", "ipv6"}


def test_family_mistakes_are_refused_before_the_bench(tmp_path):
    with pytest.raises(UserError) as e:
        roam.check_args(_args("--family", "ipv4", "--app", "reference"))
    assert "--app mn" in str(e.value)
    with pytest.raises(SystemExit):
        _args("--family", "ipv5")
