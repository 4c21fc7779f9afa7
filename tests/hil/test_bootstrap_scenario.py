"""`roam6 hil run bootstrap`: the real MN boots on each network knowing only its NAI, key, home
address and domain, finds the real HA through the bench's Kea (RFC 6610) or dnsmasq (RFC 5026),
and registers."""
import argparse
import json

from roam6_hil.scenarios import bootstrap


def test_boots_on_every_network_and_finds_its_ha(tmp_path, prefix, capsys):
    p = argparse.ArgumentParser()
    bootstrap.add_arguments(p)
    rc = bootstrap.run(p.parse_args(["--profile", "rp2040", "--report", str(tmp_path / "rep"), "--prefix", prefix]))
    out = capsys.readouterr().out
    rep = json.load(open(tmp_path / "rep" / "report.json"))
    assert rc == 0 and rep["ok"], out
    rows = {r["net"]: r for r in rep["rows"]}
    assert set(rows) == {"apA", "apB", "apC"}
    assert rows["apA"]["method"] == "dhcpv6" and rows["apA"]["transport"] == "udp6"   # IPv6 only: DHCPv6
    assert rows["apB"]["method"] == "dns" and rows["apB"]["transport"] == "udp4"      # IPv4 only: DNS
    for r in rows.values():
        assert r["registered"] and r["ha"] == "2001:db8:aa::1", r
