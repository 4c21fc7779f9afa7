"""The `aaa` section of ha.json: every mistake is one UserError naming the field (no traceback)."""
import json
import os

import pytest

from roam6_host.errors import UserError
from roam6_host.ha.config import load_config


def write(tmp_path, aaa, mode=0o600, keys=False):
    (tmp_path / "radius-secret").write_text("s3cret\n")
    os.chmod(tmp_path / "radius-secret", mode)
    cfg = {"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "transports": ["udp6"], "aaa": aaa}
    if keys:
        (tmp_path / "keys.json").write_text('{"sas": []}')
        os.chmod(tmp_path / "keys.json", 0o600)
        cfg["keys_file"] = "keys.json"
    (tmp_path / "ha.json").write_text(json.dumps(cfg))
    return str(tmp_path / "ha.json")


def test_a_good_section_and_no_keys_file_needed(tmp_path):
    servers = [{"host": "2001:db8:f4::2"}, {"host": "198.18.4.3", "auth_port": 11812}]
    c = load_config(write(tmp_path, {"servers": servers, "secret_file": "radius-secret", "dae_port": 3799}))
    a = c.aaa
    assert a.secret == b"s3cret" and [s.host for s in a.servers] == ["2001:db8:f4::2", "198.18.4.3"]
    assert a.servers[1].auth_port == 11812 and a.servers[1].acct_port == 1813 and a.dae_port == 3799
    assert c.sas == [] and a.timeout_ms == 1000 and a.retries == 2
    assert load_config(write(tmp_path, {"servers": [{"host": "::1"}], "secret_file": "radius-secret"}, keys=True)).aaa


@pytest.mark.parametrize("aaa, mode, words", [
    ({"servers": [{"host": "::1"}], "secret_file": "radius-secret"}, 0o644, ["readable by group", "chmod 600"]),
    ({"servers": [{"host": "radius.example.test"}], "secret_file": "radius-secret"}, 0o600, ["'host'", "address"]),
    ({"servers": [], "secret_file": "radius-secret"}, 0o600, ["'servers'"]),
    ({"servers": [{"host": "::1"}]}, 0o600, ["'secret_file' is missing"]),
    ({"servers": [{"host": "::1"}], "secret_file": "nope"}, 0o600, ["cannot be opened"]),
    ({"servers": [{"host": "::1"}], "secret_file": "radius-secret", "timout_ms": 5}, 0o600, ["'timout_ms'"]),
    ({"servers": [{"host": "::1", "port": 1}], "secret_file": "radius-secret"}, 0o600, ["'port'"]),
    ({"servers": [{"host": "::1"}], "secret_file": "radius-secret", "retries": 0}, 0o600, ["'retries'"]),
    ("yes", 0o600, ["must be an object"]),
])
def test_mistakes_name_the_field(tmp_path, aaa, mode, words):
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, aaa, mode))
    text = str(e.value) + " " + str(getattr(e.value, "hint", ""))
    assert ("ha.json" in text or "radius-secret" in text) and all(w in text for w in words), text
