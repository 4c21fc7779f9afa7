"""`roam6 provision`: config.json per CONTRACTS.md §5, the HA keys file per §6, modes and secrecy."""
import json
import os
import stat
import threading

import pytest

from roam6_host import provision
from roam6_host.cli import main as cli_main

STATIC = ["--hoa", "2001:db8:aa::100", "--ha", "2001:db8:aa::1", "--ha-ipv4", "198.18.1.2"]


def _prov(tmp_path, nai, *extra, out=None):
    out = out or str(tmp_path / ("%s.json" % nai.split("@")[0]))
    return cli_main(["provision", "--nai", nai, "--keys-file", str(tmp_path / "keys.json"), "--out", out] + list(extra))


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_static_device_config_and_keys_file(tmp_path, capsys):
    assert _prov(tmp_path, "board1@example.test", *STATIC, "--board", "esp32", "--wifi", "apA:s3cret") == 0
    out = capsys.readouterr().out
    cfg = json.loads((tmp_path / "board1.json").read_text())
    keys = json.loads((tmp_path / "keys.json").read_text())
    assert cfg["nai"] == "board1@example.test" and cfg["hoa"] == "2001:db8:aa::100"
    assert cfg["home_prefix"] == "2001:db8:aa::/64" and cfg["ha"] == "2001:db8:aa::1" and cfg["ha_ipv4"] == "198.18.1.2"
    assert cfg["transports"] == ["udp4"]            # the esp32 profile: IPv4 only
    assert cfg["wifi"] == [{"ssid": "apA", "psk": "s3cret"}] and cfg["bootstrap"] == ["static"]
    assert cfg["spi"] >= 256 and len(bytes.fromhex(cfg["key"])) == 16
    assert keys == {"sas": [{"nai": "board1@example.test", "spi": cfg["spi"], "key": cfg["key"],
                             "hoa": "2001:db8:aa::100"}]}
    assert _mode(tmp_path / "keys.json") == 0o600 and _mode(tmp_path / "board1.json") == 0o600
    assert cfg["key"] not in out                    # secret stays off the terminal


def test_keys_file_is_what_the_home_agent_accepts(tmp_path):
    ha_config = pytest.importorskip("roam6_host.ha.config", reason="the HA's config module is not in this checkout yet")
    import ipaddress
    _prov(tmp_path, "a@example.test", *STATIC)
    _prov(tmp_path, "b@example.test", "--bootstrap", "--domain", "example.test")
    sas = ha_config.load_keys(str(tmp_path / "keys.json"), ipaddress.IPv6Network("2001:db8:aa::/64"))
    assert [s.nai for s in sas] == [b"a@example.test", b"b@example.test"]
    a = json.loads((tmp_path / "a.json").read_text())
    assert sas[0].key == bytes.fromhex(a["key"]) and sas[0].spi == a["spi"] and sas[1].hoa is None


def test_bootstrap_device(tmp_path):
    assert _prov(tmp_path, "b@example.test", "--bootstrap", "--domain", "example.test", "--board", "rp2040") == 0
    cfg = json.loads((tmp_path / "b.json").read_text())
    assert cfg["hoa"] == "bootstrap" and cfg["ha"] == "bootstrap" and cfg["domain"] == "example.test"
    assert cfg["bootstrap"] == ["dhcpv6", "dns"] and cfg["transports"] == ["udp6", "udp4"]
    assert "hoa" not in json.loads((tmp_path / "keys.json").read_text())["sas"][0]


def test_spis_unique_even_when_the_random_source_repeats(tmp_path, monkeypatch):
    _prov(tmp_path, "a@example.test", *STATIC)
    first = json.loads((tmp_path / "a.json").read_text())["spi"]
    # a stand-in for bad luck: the generator offers the taken SPI twice before a free one
    offers = iter([first - 256, first - 256, 4242 - 256])
    monkeypatch.setattr(provision.secrets, "randbelow", lambda n: next(offers))
    _prov(tmp_path, "b@example.test", "--hoa", "2001:db8:aa::101", "--ha", "2001:db8:aa::1", "--transports", "udp6")
    assert json.loads((tmp_path / "b.json").read_text())["spi"] == 4242
    spis = [e["spi"] for e in json.loads((tmp_path / "keys.json").read_text())["sas"]]
    assert sorted(spis) == sorted({first, 4242})


def test_concurrent_provisioning_loses_no_entry(tmp_path):
    errors = []

    def one(i):
        try:
            provision.provision(str(tmp_path / "keys.json"), str(tmp_path / ("d%d.json" % i)),
                                nai="d%d@example.test" % i,
                                hoa="2001:db8:aa::%x" % (0x200 + i), ha="2001:db8:aa::1", transports=["udp6"])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    sas = json.loads((tmp_path / "keys.json").read_text())["sas"]
    assert sorted(e["nai"] for e in sas) == sorted("d%d@example.test" % i for i in range(8))
    assert len({e["spi"] for e in sas}) == 8
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_list_revoke_and_show_key(tmp_path, capsys):
    _prov(tmp_path, "a@example.test", *STATIC)
    _prov(tmp_path, "b@example.test", "--hoa", "2001:db8:aa::101", "--ha", "2001:db8:aa::1", "--transports", "udp6,ip6")
    key_a = json.loads((tmp_path / "a.json").read_text())["key"]
    capsys.readouterr()
    assert cli_main(["provision", "--list", "--keys-file", str(tmp_path / "keys.json")]) == 0
    out = capsys.readouterr().out
    assert "a@example.test" in out and "b@example.test" in out and "2 device(s)" in out and key_a not in out
    cli_main(["provision", "--list", "--show-key", "--keys-file", str(tmp_path / "keys.json")])
    assert key_a in capsys.readouterr().out
    assert cli_main(["provision", "--revoke", "a@example.test", "--keys-file", str(tmp_path / "keys.json")]) == 0
    sas = json.loads((tmp_path / "keys.json").read_text())["sas"]
    assert [e["nai"] for e in sas] == ["b@example.test"] and _mode(tmp_path / "keys.json") == 0o600
    assert cli_main(["provision", "--revoke", "a@example.test", "--keys-file", str(tmp_path / "keys.json")]) == 2
    assert "a@example.test is not in" in capsys.readouterr().err


def test_reprovision_needs_force_and_rotates_the_key(tmp_path, capsys):
    _prov(tmp_path, "a@example.test", *STATIC)
    old = json.loads((tmp_path / "a.json").read_text())
    assert _prov(tmp_path, "a@example.test", *STATIC) == 2
    assert "already provisioned" in capsys.readouterr().err
    assert _prov(tmp_path, "a@example.test", *STATIC, "--force") == 0
    new = json.loads((tmp_path / "a.json").read_text())
    sas = json.loads((tmp_path / "keys.json").read_text())["sas"]
    assert len(sas) == 1 and sas[0]["key"] == new["key"] != old["key"]


@pytest.mark.parametrize("args,message", [
    (["--hoa", "2001:db8:aa::100"], "--ha is missing"),
    (["--hoa", "nope", "--ha", "2001:db8:aa::1"], "'nope' is not an IPv6 address"),
    (["--ha", "2001:db8:aa::1"], "either --hoa ADDRESS or --bootstrap"),
    (["--hoa", "2001:db8:aa::100", "--ha", "2001:db8:aa::1"], "udp4 needs the HA's IPv4 address"),
    (["--hoa", "2001:db8:bb::100", "--ha", "2001:db8:aa::1", "--home-prefix", "2001:db8:aa::/64", "--transports",
      "udp6"],
     "outside --home-prefix"),
    (STATIC + ["--board", "esp32", "--transports", "udp6"], "board esp32 cannot use transport udp6"),
    (STATIC + ["--wifi", "nocolon"], "must be SSID:PSK"),
    (["--bootstrap"], "DNS bootstrapping needs --domain"),
])
def test_bad_input_is_named_and_nothing_is_written(tmp_path, capsys, args, message):
    assert _prov(tmp_path, "a@example.test", *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "keys.json").exists()


def test_duplicate_hoa_and_bad_nai_refused(tmp_path, capsys):
    _prov(tmp_path, "a@example.test", *STATIC)
    assert _prov(tmp_path, "b@example.test", *STATIC) == 2
    assert "already belongs to a@example.test" in capsys.readouterr().err
    assert _prov(tmp_path, "no-realm", *STATIC) == 2
    assert "not like user@realm" in capsys.readouterr().err


def test_open_keys_file_is_refused(tmp_path, capsys):
    keys = tmp_path / "keys.json"
    keys.write_text('{"sas": []}')
    os.chmod(keys, 0o644)
    assert _prov(tmp_path, "a@example.test", *STATIC) == 2
    err = capsys.readouterr().err
    assert "readable by group or others" in err and "chmod 600" in err
    assert json.loads(keys.read_text()) == {"sas": []}


def test_missing_keys_file_for_list(tmp_path, capsys):
    assert cli_main(["provision", "--list", "--keys-file", str(tmp_path / "none.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ---- every config provision writes loads on the board: the firmware's own parser, on MicroPython

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
D = ["--domain", "example.test"]
VARIANTS = {
    "esp32-static": STATIC + ["--board", "esp32", "--wifi", "apA:s3cret"],
    "rp2040-static": STATIC + ["--board", "rp2040", "--wifi", "apA:s3:cret"],
    "unix-static": STATIC + ["--board", "unix"],
    "default-static": STATIC,
    "bootstrap-domain": ["--bootstrap"] + D,                      # issue 17: refused for a missing home_prefix
    "bootstrap-rp2040": ["--bootstrap", "--board", "rp2040", "--wifi", "apA:x"] + D,
    "bootstrap-esp32": ["--bootstrap", "--board", "esp32", "--wifi", "apA:x"] + D,
    "bootstrap-dhcpv6": ["--bootstrap", "--bootstrap-methods", "dhcpv6"],
    "bootstrap-prefix": ["--bootstrap", "--home-prefix", "2001:db8:aa::/64"] + D,
    "bootstrap-static-ha": ["--bootstrap", "--ha", "2001:db8:aa::1", "--ha-ipv4", "198.18.1.2"] + D,
    "hoa-ha-bootstrap": ["--hoa", "2001:db8:aa::100", "--ha", "bootstrap"] + D,
    "short-no-timestamps": ["--hoa", "2001:db8:aa::100", "--ha", "2001:db8:aa::1", "--transports", "udp6",
                            "--lifetime", "4", "--no-timestamps"],
    "wifi-colon-ssid": STATIC + ["--board", "esp32", "--wifi-ssid", "Cafe: 2nd floor", "--wifi-psk", "a:b",
                                 "--wifi-ssid", "open:net", "--wifi", "apB:"],
}

MP_LOADER = """
import sys
from roam6.node.config import load_config
for path in sys.argv[1:]:
    try:
        c = load_config(path)
        print('OK', path, c.hoa is None, c.ha is None, c.home_prefix is None, ','.join(c.transports))
    except Exception as e:
        print('REFUSED', path, e)
"""


def test_every_provisioned_config_loads_with_the_firmware_on_micropython(tmp_path):
    import subprocess
    paths = []
    for i, (name, args) in enumerate(VARIANTS.items()):
        out = str(tmp_path / ("%s.json" % name))
        fleet = tmp_path / name             # a keys file each: several variants share a HoA
        fleet.mkdir()
        assert _prov(fleet, "d%d@example.test" % i, *args, out=out) == 0, name
        paths.append(out)
    exe = os.path.join(os.path.dirname(__import__("sys").executable), "micropython")
    script = tmp_path / "load.py"
    script.write_text(MP_LOADER)
    r = subprocess.run([exe, str(script)] + paths, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware")))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(paths) and all(ln.startswith("OK ") for ln in lines), r.stdout
    got = {os.path.basename(ln.split()[1])[:-5]: ln.split()[2:] for ln in lines}
    assert got["bootstrap-domain"] == ["True", "True", "True", "udp6,udp4,ip6"]
    assert got["bootstrap-esp32"][3] == "udp4" and got["bootstrap-prefix"][2] == "False"
    cfgs = {n: json.loads((tmp_path / ("%s.json" % n)).read_text()) for n in VARIANTS}
    assert cfgs["bootstrap-domain"]["home_prefix"] == "bootstrap"
    assert cfgs["bootstrap-esp32"]["bootstrap"] == ["dns"]          # its bundle has no DHCPv6 client
    assert cfgs["hoa-ha-bootstrap"]["bootstrap"] == ["dhcpv6", "dns"]
    assert cfgs["rp2040-static"]["wifi"] == [{"ssid": "apA", "psk": "s3:cret"}]
    assert cfgs["wifi-colon-ssid"]["wifi"] == [{"ssid": "Cafe: 2nd floor", "psk": "a:b"},
                                               {"ssid": "open:net", "psk": ""},
                                               {"ssid": "apB", "psk": ""}]


@pytest.mark.parametrize("args,message", [
    (["--bootstrap", "--bootstrap-methods", "static"] + D, "static cannot learn the home address"),
    (["--bootstrap", "--board", "esp32", "--bootstrap-methods", "dhcpv6,dns"] + D, "cannot bootstrap by dhcpv6"),
    (STATIC + ["--wifi-psk", "x"], "has no --wifi-ssid before it"),
])
def test_configs_the_board_would_refuse_are_not_written(tmp_path, capsys, args, message):
    assert _prov(tmp_path, "a@example.test", *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "keys.json").exists()


def test_out_holding_another_devices_config_needs_force(tmp_path, capsys):
    out = str(tmp_path / "config.json")
    assert _prov(tmp_path, "a@example.test", *STATIC, out=out) == 0
    first = (tmp_path / "config.json").read_text()
    assert _prov(tmp_path, "b@example.test", "--hoa", "2001:db8:aa::101", "--ha", "2001:db8:aa::1",
                 "--transports", "udp6", out=out) == 2
    err = capsys.readouterr().err
    assert "already holds the config of a@example.test" in err and "--force" in err
    assert (tmp_path / "config.json").read_text() == first
    assert [e["nai"] for e in json.loads((tmp_path / "keys.json").read_text())["sas"]] == ["a@example.test"]
    (tmp_path / "notes.txt").write_text("not a config")
    assert _prov(tmp_path, "b@example.test", "--hoa", "2001:db8:aa::101", "--ha", "2001:db8:aa::1",
                 "--transports", "udp6", out=str(tmp_path / "notes.txt")) == 2
    assert "a file that is not a device config" in capsys.readouterr().err
    assert _prov(tmp_path, "b@example.test", "--hoa", "2001:db8:aa::101", "--ha", "2001:db8:aa::1",
                 "--transports", "udp6", "--force", out=out) == 0
    assert json.loads((tmp_path / "config.json").read_text())["nai"] == "b@example.test"


def test_lock_file_is_removed_after_use(tmp_path):
    _prov(tmp_path, "a@example.test", *STATIC)
    cli_main(["provision", "--revoke", "a@example.test", "--keys-file", str(tmp_path / "keys.json")])
    assert sorted(os.listdir(tmp_path)) == ["a.json", "keys.json"]


def test_wifi_board_without_wifi_is_warned(tmp_path, capsys):
    assert _prov(tmp_path, "a@example.test", *STATIC, "--board", "esp32") == 0
    err = capsys.readouterr().err
    assert "warning: no Wi-Fi network given" in err and "--wifi SSID:PSK" in err
    assert _prov(tmp_path, "b@example.test", "--hoa", "2001:db8:aa::101", "--ha", "2001:db8:aa::1",
                 "--board", "unix", "--transports", "udp6") == 0
    assert "warning" not in capsys.readouterr().err


def test_ipv4_home_address_goes_to_config_and_keys_file(tmp_path, capsys):
    """--ipv4-hoa (RFC 5555): config.json gets "ipv4_hoa"; a fixed address goes into the keys
    file (the HA's static assignment, which it loads), 0.0.0.0 does not (the HA's pool); a second
    device with the same fixed address is refused; a bad one named."""
    import ipaddress
    from roam6_host.ha.config import load_keys
    assert _prov(tmp_path, "a@example.test", *STATIC, "--ipv4-hoa", "198.18.50.20") == 0
    assert _prov(tmp_path, "b@example.test", "--hoa", "2001:db8:aa::101", "--ha", "2001:db8:aa::1",
                 "--ha-ipv4", "198.18.1.2", "--ipv4-hoa", "0.0.0.0") == 0
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["ipv4_hoa"] == "198.18.50.20" and b["ipv4_hoa"] == "0.0.0.0"
    sas = load_keys(str(tmp_path / "keys.json"), ipaddress.IPv6Network("2001:db8:aa::/64"))
    assert [s.ipv4_hoa for s in sas] == [bytes([198, 18, 50, 20]), None]
    capsys.readouterr()
    assert _prov(tmp_path, "c@example.test", "--hoa", "2001:db8:aa::102", "--ha", "2001:db8:aa::1",
                 "--ha-ipv4", "198.18.1.2", "--ipv4-hoa", "198.18.50.20") != 0
    assert "already belongs to a@example.test" in capsys.readouterr().err
    assert _prov(tmp_path, "d@example.test", "--hoa", "2001:db8:aa::103", "--ha", "2001:db8:aa::1",
                 "--ha-ipv4", "198.18.1.2", "--ipv4-hoa", "198.18.50") != 0
    assert "--ipv4-hoa" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists() and not (tmp_path / "d.json").exists()
