"""`roam6 ha --check FILE` (like kea-dhcp6 -t): OK or each error, exit 0/1, nothing started;
addresses in ha.json must be strings ("address": 1 was taken as ::1)."""
import json
import os
import subprocess
import sys

import pytest

from roam6_host.cli import main as cli_main

KEY = "00112233445566778899aabbccddeeff"


def roam6_process(*args):
    return subprocess.run([sys.executable, "-m", "roam6_host"] + list(args), capture_output=True, text=True,
                          timeout=60)


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def roam6(capsys):
    """The CLI in this process (fast); the first test runs the real command in its own."""
    def run(*args):
        rc = cli_main(list(args))
        out = capsys.readouterr()
        return Result(rc, out.out, out.err)
    return run


def write(tmp_path, cfg=None, keys=None, mode=0o600):
    c = {"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "ipv4": "198.18.1.2",
         "home_link": "home", "keys_file": "ha-keys.json"}
    c.update(cfg or {})
    c = {k: v for k, v in c.items() if v is not ...}
    (tmp_path / "ha.json").write_text(json.dumps(c))
    if keys is not ...:
        k = tmp_path / "ha-keys.json"
        sa = {"nai": "b1@example.test", "spi": 300, "key": KEY, "hoa": "2001:db8:aa::10"}
        k.write_text(json.dumps(keys if keys is not None else {"sas": [sa]}))
        os.chmod(k, mode)
    return str(tmp_path / "ha.json")


def test_a_good_config_is_ok_and_nothing_starts(tmp_path):
    r = roam6_process("ha", "--check", write(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK %s: home prefix 2001:db8:aa::/64, HA address 2001:db8:aa::1 + 198.18.1.2" % (
        tmp_path / "ha.json"))
    assert "transports udp4,udp6,ip6" in r.stdout and "1 SA from %s" % (tmp_path / "ha-keys.json") in r.stdout
    assert r.stderr == ""
    # started nothing: no TUN device named r6tun appeared (the HA would make one)
    assert not os.path.exists("/sys/class/net/r6tun")


def test_check_with_config_flag_too(tmp_path, roam6):
    r = roam6("ha", "--config", write(tmp_path), "--check")
    assert r.returncode == 0 and r.stdout.startswith("OK "), r.stdout + r.stderr


@pytest.mark.parametrize("field,value,said", [
    ("address", 1, "field 'address' must be a string like \"2001:db8:aa::1\", got 1"),
    ("home_prefix", 1, "field 'home_prefix' must be a string, got 1"),
    ("ipv4", 3323068674, "field 'ipv4' must be a string, got 3323068674"),
    ("address", "2001:db8:bb::1", "2001:db8:bb::1 is not inside home_prefix 2001:db8:aa::/64"),
    ("port", 0, "field 'port' must be an integer from 1 to 65535"),
])
def test_each_config_mistake_is_said_and_exit_1(tmp_path, field, value, said, roam6):
    r = roam6("ha", "--check", write(tmp_path, {field: value}))
    assert r.returncode == 1, r.stdout + r.stderr
    assert said in r.stdout and "Traceback" not in r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("ha.json: 1 error")


def test_a_broken_config_does_not_hide_a_broken_keys_file(tmp_path, roam6):
    keys = {"sas": [{"nai": "b1@example.test", "spi": 3, "key": KEY}]}
    r = roam6("ha", "--check", write(tmp_path, {"address": 1}, keys=keys))
    assert r.returncode == 1
    assert "field 'address' must be a string" in r.stdout
    assert "sas[0]: field 'spi' must be an integer from 256" in r.stdout
    assert r.stdout.rstrip().endswith("2 errors")


def test_keys_file_readable_by_others_is_an_error(tmp_path, roam6):
    r = roam6("ha", "--check", write(tmp_path, mode=0o644))
    assert r.returncode == 1 and "is readable by group or others (mode 644)" in r.stdout and "chmod 600" in r.stdout


def test_missing_keys_file_and_missing_config(tmp_path, roam6):
    r = roam6("ha", "--check", write(tmp_path, keys=...))
    assert r.returncode == 1 and "ha-keys.json cannot be opened" in r.stdout
    r = roam6("ha", "--check", str(tmp_path / "nope.json"))
    assert r.returncode == 1 and "nope.json does not exist" in r.stdout


def test_integer_address_refused_by_the_ha_itself(tmp_path):
    """Not only --check: `roam6 ha --config` refuses it before starting (it was ::1). In its own
    process: were it accepted, the HA would start (and the timeout end it)."""
    r = roam6_process("ha", "--config", write(tmp_path, {"address": 1}))
    assert r.returncode == 2 and "field 'address' must be a string" in r.stderr


def test_integer_hoa_in_the_keys_file_is_refused(tmp_path, roam6):
    keys = {"sas": [{"nai": "b1@example.test", "spi": 300, "key": KEY, "hoa": 16}]}
    r = roam6("ha", "--check", write(tmp_path, keys=keys))
    assert r.returncode == 1 and "field 'hoa' must be a string" in r.stdout
