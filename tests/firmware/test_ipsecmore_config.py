"""config.json's "more_hoas" (node/ipsecmore.py, via node/ipsecconf.py; docs/CONTRACTS.md §5):
further IPsec home addresses, refused by name without "security": "ipsec", beside "ipsec_data",
with a bad, repeated or primary address, or more than 3. (A board whose board.json excludes the
module: `roam6 build` leaves it out and ipsecconf.py names the field.)"""
from support import raises

from roam6.node.config import ConfigError, parse_config
from roam6.wire.addr import ip6_from_text

PSK = "00112233445566778899aabbccddeeff"
BASE = {"nai": "m@example.test", "hoa": "2001:db8:aa::100", "home_prefix": "2001:db8:aa::/64",
        "ha": "2001:db8:aa::1", "security": "ipsec", "psk": PSK}


def test_more_hoas_parsed():
    c = parse_config(dict(BASE, more_hoas=["2001:db8:aa::101", "2001:db8:aa::102"]))
    assert c.more_hoas == [ip6_from_text("2001:db8:aa::101"), ip6_from_text("2001:db8:aa::102")]
    assert not hasattr(parse_config(dict(BASE)), "more_hoas")       # absent: nothing of it


def test_more_hoas_refused_with_a_message():
    rfc = dict(BASE, security="rfc4285", spi=300, key=PSK, more_hoas=["2001:db8:aa::101"])
    for raw in (rfc, dict(rfc, security=None),
                dict(BASE, more_hoas=["2001:db8:aa::101"], ipsec_data=True),
                dict(BASE, more_hoas="2001:db8:aa::101"), dict(BASE, more_hoas=[]),
                dict(BASE, more_hoas=["2001:db8:aa::%d" % i for i in range(101, 105)]),
                dict(BASE, more_hoas=["2001:db8:aa::zz"]), dict(BASE, more_hoas=[5]),
                dict(BASE, more_hoas=["2001:db8:aa::101", "2001:db8:aa:0::101"]),
                dict(BASE, more_hoas=["2001:db8:aa:0::100"])):
        if raw.get("security", 1) is None:
            del raw["security"]
        e = raises(ConfigError, parse_config, raw)
        assert e.field == "more_hoas", (raw, e)
