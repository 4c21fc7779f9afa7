"""`roam6 cn` config checking: every bad field is named, no traceback."""
import json
import subprocess
import sys

import pytest

from roam6_host.cn.config import parse_config
from roam6_host.errors import UserError


def test_defaults_and_fields():
    c = parse_config({"address": "2001:db8:f3::2"})
    assert c.address == bytes.fromhex("20010db800f300000000000000000002")
    assert (c.echo_port, c.kcn, c.nonce_period, c.max_lifetime, c.interface) == (7, None, 30, 420, None)
    c = parse_config({"address": "2001:db8:f3::2", "kcn": "00" * 20, "echo_port": 0, "interface": "eth0"})
    assert c.kcn == bytes(20) and c.echo_port == 0
    c = parse_config({"address": "::1", "probe": {"hoa": "2001:db8:aa::100"}})
    assert c.probe == {"hoa": bytes.fromhex("20010db800aa00000000000000000100"), "hoa_text": "2001:db8:aa::100",
                       "port": 9000, "interval_ms": 100, "sport": 9002}


@pytest.mark.parametrize("d,field", [
    ({}, "address"),
    ({"address": "2001:db8::zz"}, "address"),
    ({"address": 5}, "address"),
    ({"address": "::1", "echo_port": 70000}, "echo_port"),
    ({"address": "::1", "echo_port": True}, "echo_port"),
    ({"address": "::1", "kcn": "abcd"}, "kcn"),
    ({"address": "::1", "nonce_period": 0}, "nonce_period"),
    ({"address": "::1", "max_lifetime": 3600}, "max_lifetime"),
    ({"address": "::1", "interface": "x" * 20}, "interface"),
    ({"address": "::1", "adress": "::2"}, "adress"),
    ([], "JSON object"),
    ({"address": "::1", "probe": {"port": 9000}}, "probe.hoa"),
    ({"address": "::1", "probe": {"hoa": "::2", "port": 0}}, "probe.port"),
    ({"address": "::1", "probe": {"hoa": "::2", "interval_ms": 0}}, "probe.interval_ms"),
    ({"address": "::1", "probe": {"hoa": "::2", "sport": 7}}, "probe.sport"),
    ({"address": "::1", "probe": {"hoa": "::2", "every": 5}}, "probe.every"),
])
def test_bad_fields_are_named(d, field):
    with pytest.raises(UserError) as ei:
        parse_config(d, "cn.json")
    assert field in str(ei.value) and "cn.json" in str(ei.value)


def test_cli_reports_without_traceback(tmp_path):
    p = tmp_path / "cn.json"
    p.write_text(json.dumps({"address": "2001:db8::1", "max_lifetime": 9999}))
    r = subprocess.run([sys.executable, "-m", "roam6_host", "cn", "--config", str(p)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "max_lifetime" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "roam6_host", "cn", "--config", str(tmp_path / "nope.json")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr
    p.write_text("{not json")
    r = subprocess.run([sys.executable, "-m", "roam6_host", "cn", "--config", str(p)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "not valid JSON" in r.stderr
