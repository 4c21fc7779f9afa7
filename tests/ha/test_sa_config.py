"""Per-SA precomputed HMAC equals the firmware's RFC 4285 function; config and keys file errors
name the field; a keys file readable by others is refused."""
import json
import os

import pytest

from roam6 import crypto

from roam6_host.errors import UserError
from roam6_host.ha.config import load_config, parse_config
from roam6_host.ha.sa import SA


@pytest.mark.parametrize("n", [0, 1, 55, 56, 63, 64, 65, 200])
def test_precomputed_hmac_matches_firmware_crypto(n):
    key = bytes(range(3, 19))
    coa, hoa, data = bytes(range(16)), bytes(range(16, 32)), bytes((i * 7) & 0xFF for i in range(n))
    sa = SA(b"x@y", 300, key)
    assert sa.mnha_auth(coa, hoa, data) == crypto.mnha_auth_data(key, coa, hoa, data)
    assert sa.mnha_auth(coa, hoa, data) == sa.mnha_auth(coa, hoa, data)   # the pads are not consumed


def test_protocols_rfc4285_vector():
    # docs/PROTOCOL-NOTES.md §10.3: key 0b*16, HoA 2001:db8:1::100, CoA 2001:db8:2::200
    import socket
    sa = SA(b"mn@example.com", 256, b"\x0b" * 16)
    data = bytes.fromhex("3b05050000000007c0000096080f016d6e406578616d706c652e636f6d09110100000100")
    coa = socket.inet_pton(socket.AF_INET6, "2001:db8:2::200")
    hoa = socket.inet_pton(socket.AF_INET6, "2001:db8:1::100")
    assert sa.mnha_auth(coa, hoa, data).hex() == "d83b8d94266ac94371f6da76"


def write(tmp_path, cfg, keys, mode=0o600):
    kp = tmp_path / "keys.json"
    kp.write_text(json.dumps(keys))
    os.chmod(kp, mode)
    cp = tmp_path / "ha.json"
    cp.write_text(json.dumps(cfg))
    return str(cp)


CFG = {"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "ipv4": "198.18.1.2",
       "keys_file": "keys.json"}
KEYS = {"sas": [{"nai": "board1@example.test", "spi": 4096, "key": "00112233445566778899aabbccddeeff",
                 "hoa": "2001:db8:aa::100"}]}


def test_good_config_loads(tmp_path):
    c = load_config(write(tmp_path, CFG, KEYS))
    assert c.port == 4191 and c.tun == "r6tun" and c.replay_window == 7 and c.max_lifetime == 3600
    assert c.dad_ms == 1000                                # RFC 4861 RetransTimer: one probe, 1 s
    assert c.transports == ["udp4", "udp6", "ip6"] and c.prefix_bytes == bytes.fromhex("20010db800aa0000")
    (sa,) = c.sas
    assert sa.spi == 4096 and sa.nai == b"board1@example.test" and len(sa.key) == 16


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_keys_file_readable_by_others_is_refused(tmp_path, mode):
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, CFG, KEYS, mode))
    assert "readable by group or others" in str(e.value) and "chmod 600" in str(e.value)


@pytest.mark.parametrize("change,field", [
    ({"home_prefix": "2001:db8:aa::1/64"}, "home_prefix"),
    ({"address": "2001:db8:bb::1"}, "address"),
    ({"address": "nonsense"}, "address"),
    ({"ipv4": "300.1.1.1"}, "ipv4"),
    ({"port": 0}, "port"),
    ({"port": "4191"}, "port"),
    ({"tun": "a-very-long-interface-name"}, "tun"),
    ({"replay_window": -1}, "replay_window"),
    ({"transports": ["udp5"]}, "transports"),
    ({"colour": "blue"}, "colour"),
    ({"require_timestamps": "yes"}, "require_timestamps"),
    ({"dad_ms": -1}, "dad_ms"),
    ({"dad_ms": 1.5}, "dad_ms"),
])
def test_config_errors_name_the_field(tmp_path, change, field):
    cfg = dict(CFG, **change)
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, cfg, KEYS))
    assert repr(field) in str(e.value)


def test_missing_field_is_named(tmp_path):
    cfg = dict(CFG)
    del cfg["keys_file"]
    with pytest.raises(UserError, match="'keys_file' is missing"):
        parse_config(cfg)


@pytest.mark.parametrize("sa,field", [
    ({"spi": 4096, "key": "00" * 16}, "nai"),
    ({"nai": "a@b", "spi": 12, "key": "00" * 16}, "spi"),
    ({"nai": "a@b", "spi": 4096, "key": "00" * 15}, "key"),
    ({"nai": "a@b", "spi": 4096, "key": "zz" * 16}, "key"),
    ({"nai": "a@b", "spi": 4096, "key": "00" * 16, "hoa": "2001:db8:bb::1"}, "hoa"),
])
def test_keys_errors_name_the_field(tmp_path, sa, field):
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, CFG, {"sas": [sa]}))
    assert repr(field) in str(e.value)


def test_duplicate_spi_refused(tmp_path):
    keys = {"sas": KEYS["sas"] * 2}
    with pytest.raises(UserError, match="used twice"):
        load_config(write(tmp_path, CFG, keys))


def test_cli_prints_error_without_traceback(tmp_path):
    import subprocess
    import sys
    cp = write(tmp_path, dict(CFG, port=99999), KEYS)
    p = subprocess.run([sys.executable, "-m", "roam6_host", "ha", "--config", cp], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2
    assert "roam6: error: HA config %s: field 'port'" % cp in p.stderr and "Traceback" not in p.stderr


def test_udp4_needs_ipv4(tmp_path):
    cfg = {k: v for k, v in CFG.items() if k != "ipv4"}
    assert load_config(write(tmp_path, cfg, KEYS)).transports == ["udp6", "ip6"]     # default list
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, dict(cfg, transports=["udp4"]), KEYS))
    assert "'ipv4'" in str(e.value)


def test_unknown_field_in_a_keys_file_entry_is_refused(tmp_path):
    sa = {"nai": "board1@example.test", "spi": 4096, "kye": "00112233445566778899aabbccddeeff",
          "key": "00112233445566778899aabbccddeeff"}
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, CFG, {"sas": [KEYS["sas"][0], dict(sa, spi=4097)]}))
    msg = str(e.value)
    assert "\n" not in msg          # one line: the file, the entry, the field, the known fields
    assert str(tmp_path / "keys.json") in msg and "sas[1] (board1@example.test)" in msg
    assert "field 'kye' is not a known field" in msg and "known: nai, spi, key, hoa" in msg


def test_unknown_field_in_the_keys_file_stops_the_ha_without_traceback(tmp_path):
    import subprocess
    import sys
    keys = {"sas": [dict(KEYS["sas"][0], hoa_address="2001:db8:aa::100")]}
    cp = write(tmp_path, CFG, keys)
    p = subprocess.run([sys.executable, "-m", "roam6_host", "ha", "--config", cp], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.strip().splitlines() == [
        "roam6: error: keys file %s: sas[0] (board1@example.test): field 'hoa_address' is not a known field "
        "(known: nai, spi, key, hoa, ipv4_hoa, security, psk, more_hoas)" % (tmp_path / "keys.json")]


@pytest.mark.parametrize("raw", [
    dict(CFG, port=99999), dict(CFG, colour="blue"), {k: v for k, v in CFG.items() if k != "address"},
    dict(CFG, home_prefix="2001:db8:aa::1/64"), dict(CFG, address="nonsense"), dict(CFG, ipv4="300.1.1.1"),
    dict(CFG, tun="a-very-long-interface-name"), dict(CFG, require_timestamps="yes"), dict(CFG, transports=["udp5"]),
    dict(CFG, keys_file=7), ["not", "an", "object"], "{not json", "",
])
def test_every_ha_json_mistake_names_the_file_on_one_line(tmp_path, raw):
    cp = write(tmp_path, CFG, KEYS)
    with open(cp, "w") as f:
        f.write(raw if isinstance(raw, str) else json.dumps(raw))
    with pytest.raises(UserError) as e:
        load_config(cp)
    assert e.value.message.startswith("HA config %s" % cp) and "\n" not in e.value.message, e.value.message


def test_ha_json_mistake_from_the_cli_names_the_file_without_traceback(tmp_path):
    import subprocess
    import sys
    cp = write(tmp_path, dict(CFG, colour="blue"), KEYS)
    p = subprocess.run([sys.executable, "-m", "roam6_host", "ha", "--config", cp], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    first = p.stderr.splitlines()[0]
    assert first.startswith("roam6: error: HA config %s: field 'colour' is not a known field (known: " % cp), first
    assert "keys_file" in first and "home_prefix" in first


@pytest.mark.parametrize("extra", [{"SAs": []}, {"comment": "fleet 1"}])
def test_unknown_top_level_field_of_the_keys_file_is_refused(tmp_path, extra):
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, CFG, dict(KEYS, **extra)))
    (field,) = extra
    assert str(e.value) == "keys file %s: field %r is not a known field (known: sas)" % (tmp_path / "keys.json", field)
