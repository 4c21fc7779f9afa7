"""config.json checking (roam6.node.config): every mistake names its field."""
from support import raises

from roam6.node.config import ConfigError, parse_config
from roam6.wire.addr import ip6_from_text


def good():
    return {
        "nai": "board1@example.test", "spi": 4096, "key": "00112233445566778899aabbccddeeff",
        "hoa": "2001:db8:aa::100", "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1",
        "ha_ipv4": "198.18.1.2", "domain": "example.test", "bootstrap": ["static"],
        "transports": ["udp4", "udp6"], "lifetime": 600, "timestamps": True,
        "state_file": "roam6.state",
    }


def test_good_config():
    c = parse_config(good())
    assert c.nai == b"board1@example.test" and c.spi == 4096
    assert c.key == bytes.fromhex("00112233445566778899aabbccddeeff")
    assert c.hoa == ip6_from_text("2001:db8:aa::100")
    assert c.home_prefix == (ip6_from_text("2001:db8:aa::"), 64)
    assert c.ha_ipv4 == bytes([198, 18, 1, 2])
    assert c.transports == ["udp4", "udp6"] and c.lifetime == 600 and c.timestamps is True


def test_defaults():
    d = good()
    for k in ("lifetime", "timestamps", "state_file", "transports", "domain", "bootstrap"):
        del d[k]
    c = parse_config(d)
    assert c.lifetime == 600 and c.timestamps and c.state_file == "roam6.state"
    assert c.transports == ["udp4", "udp6", "ip6"]


def check_bad(field, value, word=None):
    d = good()
    if value is KeyError:
        del d[field]
    else:
        d[field] = value
    e = raises(ConfigError, parse_config, d)
    assert e.field == field, (field, e.field, str(e))
    assert repr(field) in str(e), str(e)
    if word:
        assert word in str(e), str(e)


def test_each_bad_field_is_named():
    check_bad("nai", KeyError, "missing")
    check_bad("nai", "nobody", "user@realm")
    check_bad("nai", 5)
    check_bad("spi", KeyError, "missing")
    check_bad("spi", 255, "256")
    check_bad("spi", "4096")
    check_bad("spi", True)
    check_bad("key", KeyError)
    check_bad("key", "0011", "32 hex")
    check_bad("key", "zz112233445566778899aabbccddeeff", "hex")
    check_bad("hoa", "2001:db8:bb::1", "home_prefix")
    check_bad("hoa", "not-an-address", "IPv6")
    check_bad("home_prefix", "2001:db8:aa::", "/64")
    check_bad("home_prefix", "2001:db8:aa::/129", "length")
    check_bad("ha", "1.2.3.4", "IPv6")
    check_bad("ha", KeyError, "missing")
    check_bad("ha_ipv4", "300.1.1.1", "IPv4")
    check_bad("transports", ["udp4", "tcp"], "tcp")
    check_bad("transports", [])
    check_bad("bootstrap", ["dhcp"], "dhcp")
    check_bad("lifetime", 0)
    check_bad("lifetime", 10 ** 7)
    check_bad("timestamps", "yes", "true or false")
    check_bad("wifi", {"ssid": "x"})
    check_bad("lifetim", 600, "not a config field")


def test_bootstrap_values_allowed():
    d = good()
    d["ha"] = "bootstrap"
    d["bootstrap"] = ["dhcpv6", "dns", "static"]
    c = parse_config(d)
    assert c.ha is None
    d["bootstrap"] = ["static"]
    e = raises(ConfigError, parse_config, d)
    assert e.field == "ha"


def test_udp4_only_needs_ha_ipv4():
    d = good()
    del d["ha_ipv4"]
    d["transports"] = ["udp4"]
    assert raises(ConfigError, parse_config, d).field == "ha_ipv4"


def test_not_an_object():
    assert raises(ConfigError, parse_config, [1, 2]).field == "(top level)"


def test_probe_checked():
    d = good()
    d["probe"] = {"port": 9000, "sensor": {"dst": "2001:db8:f3::2", "port": 9001, "interval_ms": 5}}
    assert parse_config(d).probe["port"] == 9000
    d["probe"] = {"port": 9000, "sensor": {"dst": "nope", "port": 9001}}
    assert raises(ConfigError, parse_config, d).field == "probe"


def test_ro_field_checked_by_the_ro_policy():
    d = good()
    d["ro"] = {"default": "never", "cns": {"2001:db8:f3::2": "always"}}
    parse_config(d)
    d["ro"] = {"default": "sometimes"}
    e = raises(ConfigError, parse_config, d)
    assert e.field == "ro" and "ro.default" in str(e), str(e)


def test_max_bindack_timeout_checked_and_set_on_the_class_by_app_setup():
    check_bad("max_bindack_timeout", 0, "1 to 32")
    check_bad("max_bindack_timeout", 33, "1 to 32")
    check_bad("max_bindack_timeout", "4")
    d = good()
    d["max_bindack_timeout"] = 4
    c = parse_config(d)
    assert c.raw["max_bindack_timeout"] == 4 and not hasattr(c, "max_bindack_timeout")
    import json
    from roam6.core.bul import HomeBinding
    from roam6.node import app
    from support import fresh_state_file
    path = fresh_state_file("r6cfgmb") + ".json"
    with open(path, "w") as f:
        f.write(json.dumps(d))
    try:
        rc, cfg, plan = app.setup([path, "--coa", "192.0.2.50", "--transport", "udp4"])
        assert rc == 0 and HomeBinding.max_bindack_ms == 4000 and cfg.raw is None
    finally:
        HomeBinding.max_bindack_ms = 32000
        import os
        os.remove(path)


def test_addressing_field():
    for ok in ("stack", "dhcp", "dna"):
        d = good()
        d["addressing"] = ok
        parse_config(d)
    check_bad("addressing", "auto", "RFC 4436")
    check_bad("addressing", 1, "dna")
