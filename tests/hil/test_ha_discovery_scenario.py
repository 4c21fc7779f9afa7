"""`roam6 hil run ha-discovery`, tiny: the roam-dhaad case (registered with HA2, HA2's host dies,
the MN roams: its list [HA2, a dead address] tried in turn, then DHAAD finds HA1). The boot cases
are tests/e2e/test_ha_switch.py's; all four: README, Performance."""
import argparse
import json

import pytest

from roam6_hil.scenarios import ha_discovery


def test_after_a_roam_with_its_list_dead_the_mn_finds_an_ha_by_dhaad(tmp_path, prefix, capsys):
    p = argparse.ArgumentParser()
    ha_discovery.add_arguments(p)
    rc = ha_discovery.run(p.parse_args(["--cases", "roam-dhaad", "--report", str(tmp_path / "rep"),
                                        "--prefix", prefix]))
    out = capsys.readouterr().out
    rep = json.load(open(tmp_path / "rep" / "report.json"))
    assert rc == 0 and rep["ok"], out
    (row,) = rep["rows"]
    assert row["case"] == "roam-dhaad" and row["registered"] and row["ha"] == "2001:db8:aa::1", row
    assert row["found_by"] == "dhaad" and row["dhaad_reply"] == ["2001:db8:aa::1", "2001:db8:aa::2"], row
    assert 0 < row["seconds"] < 10, row


def test_unknown_case_is_refused(tmp_path):
    from roam6_host.errors import UserError
    p = argparse.ArgumentParser()
    ha_discovery.add_arguments(p)
    with pytest.raises(UserError):
        ha_discovery.run(p.parse_args(["--cases", "boot-magic", "--report", str(tmp_path / "r")]))
