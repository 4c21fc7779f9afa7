"""DHAAD replies, the RFC 2526 anycast address and Mobile Prefix Advertisements (ha/dhaad.py),
checked against scapy's dissectors (the independent oracle)."""
import ipaddress

from scapy.layers.inet6 import IPv6, ICMPv6HAADReply, ICMPv6HAADRequest, ICMPv6MPSol, ICMPv6NDOptPrefixInfo

from roam6_host.ha import dhaad

HOA = "2001:db8:aa::100"


def cfg(**kw):
    raw = {"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "keys_file": "k.json"}
    raw.update(kw)
    return _cfg(raw)


def _cfg(raw):
    import json
    import os
    import tempfile
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "k.json"), "w") as f:
        json.dump({"sas": []}, f)
    os.chmod(os.path.join(d, "k.json"), 0o600)
    p = os.path.join(d, "ha.json")
    with open(p, "w") as f:
        json.dump(raw, f)
    from roam6_host.ha.config import load_config
    return load_config(p)


def test_anycast_address_rfc2526():
    assert ipaddress.IPv6Address(dhaad.anycast(ipaddress.IPv6Network("2001:db8:aa::/64"))) == \
        ipaddress.IPv6Address("2001:db8:aa::fdff:ffff:ffff:fffe")
    assert ipaddress.IPv6Address(dhaad.anycast(ipaddress.IPv6Network("2001:db8:aa::/48"))) == \
        ipaddress.IPv6Address("2001:db8:aa:ffff:ffff:ffff:ffff:fffe")


def test_dhaad_reply_lists_home_agents_by_preference():
    c = cfg(home_agents=["2001:db8:aa::2", "2001:db8:aa::1"])
    req = bytes(ICMPv6HAADRequest(id=0x1234))
    rep = ICMPv6HAADReply(dhaad.dhaad_reply(req, c.home_agents))
    assert rep.type == 145 and rep.id == 0x1234 and rep.addresses == ["2001:db8:aa::2", "2001:db8:aa::1"]
    assert dhaad.dhaad_reply(bytes(ICMPv6MPSol()), c.home_agents) is None
    assert cfg().home_agents == [ipaddress.IPv6Address("2001:db8:aa::1").packed]


def test_bad_home_agents_is_a_user_error():
    from roam6_host.errors import UserError
    for bad in (["nonsense"], ["2001:db8:bb::1"], [], "2001:db8:aa::1"):
        try:
            cfg(home_agents=bad)
        except UserError as e:
            assert "home_agents" in str(e)
        else:
            raise AssertionError(bad)


def test_mps_answered_with_the_home_prefix():
    c = cfg()
    mps = bytes(IPv6(src=HOA, dst="2001:db8:aa::1") / ICMPv6MPSol(id=77))
    out = IPv6(dhaad.mpa_packet(mps, c))
    assert out.src == "2001:db8:aa::1" and out.dst == HOA
    mpa = out.payload
    assert mpa.type == 147 and mpa.id == 77
    pio = mpa[ICMPv6NDOptPrefixInfo]
    assert pio.prefix == "2001:db8:aa::1" and pio.prefixlen == 64 and pio.A == 1 and pio.R == 1
    # scapy recomputes the checksum: ours must equal it
    fresh = IPv6(bytes(out))
    del fresh.payload.cksum
    assert IPv6(bytes(fresh)).payload.cksum == mpa.cksum
    bad = bytearray(mps)
    bad[-1] ^= 1
    assert dhaad.mpa_packet(bytes(bad), c) is None          # checksum
    assert dhaad.mpa_packet(mps[:44], c) is None             # too short
