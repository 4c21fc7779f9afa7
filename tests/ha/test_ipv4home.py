"""IPv4 home addresses at the HA (ha/ipv4home.py, RFC 5555 §3.1.1/§3.2.1): the real MN registration
(roam6.core.registration) against the real binding cache, virtual clock; statuses, pool, leases."""
import ipaddress
import json
import os

import pytest

from roam6.core.registration import Registration
from roam6.core.v4ack import enable
from roam6_codec import mhopts as mo
from roam6_host.errors import UserError
from roam6_host.ha import ipv4home
from roam6_host.ha.cache import BindingCache
from roam6_host.ha.config import SAConfig, parse_config
from roam6_host.ha.sa import SA

from ha_helpers import HA, HOA, HOA2, KEY, KEY2, NAI, NAI2, PREFIX, SPI, SPI2, T0, a4, parse_ba

PFX = ipaddress.IPv4Network("198.18.50.0/24")
COA = a4("192.0.2.100")


def homes(tmp_path, pool=("198.18.50.100", "198.18.50.101"), static=None):
    return ipv4home.IPv4Homes(PFX, [ipaddress.IPv4Address(a) for a in pool], static,
                              str(tmp_path / "keys.json.ipv4-leases.json"))


def cache(h):
    sas = {SPI: SA(NAI, SPI, KEY, HOA), SPI2: SA(NAI2, SPI2, KEY2, HOA2)}
    c = BindingCache(HA, PREFIX, sas, dad_ms=0)
    c.v4homes = h
    return c


def mn(v4, nai=NAI, spi=SPI, key=KEY, hoa=HOA, seq=1):
    r = Registration(nai, spi, key, hoa, HA, 600, True, seq, T0 + 2208988800 * 1000)
    enable(r, v4)
    return r


def roundtrip(c, r, now=0, src=("udp4", "192.0.2.100", 4191), coa=COA):
    """One BU from the MN to the cache and the BA back; returns (BA codec object, MN events)."""
    r.move(coa, "udp4", now)
    (pkt, _), = r.datagrams_to_send(now)
    c.receive(bytes(pkt), src, T0 + now, wall=T0 + now)   # (the driver hands bytes)
    (ba_pkt, _dst), = c.datagrams_to_send(T0 + now)
    _p, ba = parse_ba(ba_pkt)
    r.receive(ba_pkt, now + 1)
    evs = []
    while True:
        e = r.next_event()
        if e is None:
            break
        evs.append(e)
    return ba, evs


def v4ev(c):
    return [e for e in c.events() if e.kind.startswith("ipv4")]


def test_pool_assigns_and_the_mn_uses_it_then_dereg_frees_it(tmp_path):
    h = homes(tmp_path)
    c = cache(h)
    r = mn(bytes(4))
    ba, evs = roundtrip(c, r)
    assert ba.status == 0
    ack = ba.find(mo.IPv4AddressAck)
    assert ack.status == 0 and ack.address == a4("198.18.50.100") and ack.prefix_len == 32
    assert ("ipv4", 0, a4("198.18.50.100")) in evs and r.v4hoa == a4("198.18.50.100")
    assert h.bound[a4("198.18.50.100")] is c.bindings[HOA]
    kinds = [e.kind for e in c.events()]
    assert kinds == ["binding_added", "ipv4_bound"]
    h.save()
    saved = json.load(open(h.leases_path))["leases"]
    assert saved[0]["nai"] == NAI.decode() and saved[0]["addr"] == "198.18.50.100"
    assert os.stat(h.leases_path).st_mode & 0o077 == 0
    # a refresh from another CoA: one BU moves both HoAs; the same address, no new event
    ba, _ = roundtrip(c, r, 1000, ("udp4", "192.0.2.77", 4000), a4("192.0.2.77"))
    assert ba.find(mo.IPv4AddressAck).address == a4("198.18.50.100")
    assert [e.kind for e in c.events()] == ["binding_moved"]
    assert h.bound[a4("198.18.50.100")].peer == ("192.0.2.77", 4000)
    r.home(2000)                                   # deregistration: both go, the lease is freed
    (pkt, _), = r.datagrams_to_send(2000)
    c.receive(bytes(pkt), ("udp6", "2001:db8:aa::100", 4191), T0 + 2000, wall=T0 + 2000)
    evs = c.events()
    assert [e.kind for e in evs] == ["binding_removed", "ipv4_released"] and evs[1].reason == "dereg"
    assert not h.bound and not h.leases
    h.save()
    assert json.load(open(h.leases_path)) == {"leases": []}


def test_statuses_outside_taken_exhausted_prefix(tmp_path):
    h = homes(tmp_path, pool=("198.18.50.100",), static={NAI2: a4("198.18.50.9")})
    c = cache(h)
    # outside the IPv4 home prefix: 131, the IPv6 binding still made
    ba, evs = roundtrip(c, mn(a4("10.1.2.3")))
    assert ba.status == 0 and ba.find(mo.IPv4AddressAck).status == 131
    assert any(e[0] == "registered" for e in evs) and ("ipv4", 131, a4("10.1.2.3")) in evs
    assert [e.status for e in v4ev(c)] == [131]
    # bound statically to another NAI: 130
    ba, _ = roundtrip(c, mn(a4("198.18.50.9"), seq=20), 100)
    assert ba.find(mo.IPv4AddressAck).status == 130
    # in the prefix but neither pool nor ours: 129
    ba, _ = roundtrip(c, mn(a4("198.18.50.77"), seq=40), 200)
    assert ba.find(mo.IPv4AddressAck).status == 129
    # the pool's one address to NAI, then NAI2 asks for it: 130; NAI2's own static one works
    ba, _ = roundtrip(c, mn(bytes(4), seq=60), 300)
    assert ba.find(mo.IPv4AddressAck).address == a4("198.18.50.100")
    r2 = mn(a4("198.18.50.100"), NAI2, SPI2, KEY2, HOA2)
    ba, _ = roundtrip(c, r2, 400, ("udp4", "192.0.2.101", 4191), a4("192.0.2.101"))
    assert ba.find(mo.IPv4AddressAck).status == 130 and r2.v4hoa is None
    r2 = mn(bytes(4), NAI2, SPI2, KEY2, HOA2, seq=30)
    ba, _ = roundtrip(c, r2, 500, ("udp4", "192.0.2.101", 4191), a4("192.0.2.101"))
    assert ba.find(mo.IPv4AddressAck).address == a4("198.18.50.9")


def test_pool_exhausted_and_no_ipv4_home_at_all(tmp_path):
    h = homes(tmp_path, pool=("198.18.50.100",))
    c = cache(h)
    roundtrip(c, mn(bytes(4)))
    r2 = mn(bytes(4), NAI2, SPI2, KEY2, HOA2)
    ba, evs = roundtrip(c, r2, 10, ("udp4", "192.0.2.101", 4191), a4("192.0.2.101"))
    assert ba.find(mo.IPv4AddressAck).status == 132 and ("ipv4", 132, bytes(4)) in evs
    c2 = cache(None)                               # an HA with no IPv4 home prefix: 129
    ba, evs = roundtrip(c2, mn(bytes(4)))
    assert ba.status == 0 and ba.find(mo.IPv4AddressAck).status == 129


def test_expiry_frees_the_lease_and_a_restart_keeps_it(tmp_path):
    h = homes(tmp_path)
    c = cache(h)
    roundtrip(c, mn(bytes(4)))
    c.events()
    c.remove_all()                                 # HA stops: routes go, the lease stays
    evs = c.events()
    assert [e.kind for e in evs] == ["binding_removed", "ipv4_released"] and evs[1].reason == "shutdown"
    h.save()
    h2 = homes(tmp_path)
    h2.load(T0 + 1000)
    assert h2.leases[NAI][0] == a4("198.18.50.100")
    c2 = cache(h2)
    r2 = mn(bytes(4), NAI2, SPI2, KEY2, HOA2)      # another NAI never gets the kept lease
    ba, _ = roundtrip(c2, r2, 0, ("udp4", "192.0.2.101", 4191), a4("192.0.2.101"))
    assert ba.find(mo.IPv4AddressAck).address == a4("198.18.50.101")
    ba, _ = roundtrip(c2, mn(bytes(4), seq=50))    # the MN comes back: its own address again
    assert ba.find(mo.IPv4AddressAck).address == a4("198.18.50.100")
    c2.handle_timer(T0 + 10_000_000)               # both bindings expire: leases freed
    assert not h2.bound and not h2.leases
    h3 = homes(tmp_path)
    h3.load(T0 + 700_000_000)                      # a kept lease past its expiry is dropped
    assert not h3.leases


def test_config_fields_and_mistakes(tmp_path):
    keys = {"sas": [{"nai": "board1@example.test", "spi": 4096, "key": "00" * 16, "hoa": "2001:db8:aa::100",
                     "ipv4_hoa": "198.18.50.9"}]}
    kp = tmp_path / "keys.json"
    kp.write_text(json.dumps(keys))
    os.chmod(kp, 0o600)
    base = {"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "keys_file": "keys.json"}
    cfg = parse_config(dict(base, ipv4_home_prefix="198.18.50.0/24", ipv4_pool="198.18.50.100-198.18.50.102"),
                       base_dir=str(tmp_path))
    h = cfg.ipv4_homes
    assert h.static == {NAI: a4("198.18.50.9")} and len(h.pool) == 3 and h.leases_path.endswith(".ipv4-leases.json")
    for bad, words in ((dict(ipv4_home_prefix="198.18.50.1/24"), "ipv4_home_prefix"),
                       (dict(ipv4_home_prefix="198.18.50.0/24", ipv4_pool="198.18.51.1-198.18.51.9"), "ipv4_pool"),
                       (dict(ipv4_pool="198.18.50.1-198.18.50.9"), "ipv4_home_prefix"),
                       (dict(ipv4_home_prefix="198.18.60.0/24"), "outside")):
        with pytest.raises(UserError) as e:
            parse_config(dict(base, **bad), base_dir=str(tmp_path))
        assert words in str(e.value)
    keys["sas"][0]["ipv4_hoa"] = "198.18.50"
    kp.write_text(json.dumps(keys))
    with pytest.raises(UserError) as e:
        parse_config(base, base_dir=str(tmp_path))
    assert "ipv4_hoa" in str(e.value)


def _ipv4_bu_and_ba(tmp_path):
    h = homes(tmp_path)
    c = cache(h)
    r = mn(bytes(4))
    r.move(COA, "udp4", 0)
    (pkt, _), = r.datagrams_to_send(0)
    c.receive(bytes(pkt), ("udp4", "192.0.2.100", 4191), T0, wall=T0)
    (ba, _), = c.datagrams_to_send(T0)
    return bytes(pkt), ba


def test_mh_decode_names_the_ipv4_options_and_encodes_them_back(tmp_path):
    import subprocess
    import sys
    bu, ba = _ipv4_bu_and_ba(tmp_path)
    p = subprocess.run([sys.executable, "-m", "roam6_host", "mh", "decode"], input="%s\n%s\n" % (bu.hex(), ba.hex()),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    d_bu, d_ba = (json.loads(x) for x in p.stdout.splitlines())
    o = {x["type"]: x for x in d_bu["mh"]["options"]}
    assert o["IPv4HomeAddress"]["address"] == "0.0.0.0" and o["IPv4HomeAddress"]["prefix_len"] == 32
    a = {x["type"]: x for x in d_ba["mh"]["options"]}
    assert a["IPv4AddressAck"] == {"type": "IPv4AddressAck", "status": 0, "prefix_len": 32,
                                   "address": "198.18.50.100", "reserved": 0}
    e = subprocess.run([sys.executable, "-m", "roam6_host", "mh", "encode"], input=p.stdout,
                       capture_output=True, text=True, timeout=30)
    assert e.stdout.split() == [bu.hex(), ba.hex()], e.stderr


def test_wireshark_dissects_the_ipv4_options_without_a_malformed_packet(tmp_path):
    import shutil
    import struct
    import subprocess
    tshark = shutil.which("tshark")
    assert tshark, "tshark is not installed: apt-get install tshark (deps/apt.txt)"
    bu, ba = _ipv4_bu_and_ba(tmp_path)
    path = tmp_path / "v4hoa.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))     # LINKTYPE_RAW
        for i, pkt in enumerate((bu, ba)):
            f.write(struct.pack("<IIII", i, 0, len(pkt), len(pkt)) + pkt)
    p = subprocess.run([tshark, "-r", str(path), "-V"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "Malformed" not in p.stdout and "IPv4 Home Address: 0.0.0.0" in p.stdout, p.stdout[-2000:]
    assert "IPv4 Address Acknowledgement" in p.stdout and "IPv4 Home Address: 198.18.50.100" in p.stdout


def sacfg(nai, spi, key, hoa, v4=None):
    sa = SAConfig(nai, spi, key, hoa)
    sa.ipv4_hoa = a4(v4) if v4 else None
    return sa


def test_sighup_reassigns_a_static_ipv4_hoa(tmp_path):
    """Keys file reloaded (ha/driver.py reload_keys): a NAI's static IPv4 HoA changed -> its binding
    loses the old one at once (route/proxy ARP go, ipv4_released "reassigned"), the MN's next BU
    is refused 130 for the old one and the one after gets the new one; a static address taken
    out of the pool frees the lease on it; a bad reloaded file is refused whole."""
    h = homes(tmp_path, pool=("198.18.50.100", "198.18.50.101"), static={NAI: a4("198.18.50.9")})
    c = cache(h)
    r = mn(bytes(4))
    ba, _ = roundtrip(c, r)
    assert ba.find(mo.IPv4AddressAck).address == a4("198.18.50.9") and r.v4hoa == a4("198.18.50.9")
    r2 = mn(bytes(4), NAI2, SPI2, KEY2, HOA2)
    ba, _ = roundtrip(c, r2, 10, ("udp4", "192.0.2.101", 4191), a4("192.0.2.101"))
    assert ba.find(mo.IPv4AddressAck).address == a4("198.18.50.100")
    c.events()
    sas = [sacfg(NAI, SPI, KEY, HOA, "198.18.50.100"), sacfg(NAI2, SPI2, KEY2, HOA2)]
    static = ipv4home.static_of(sas, "keys.json", h)
    c.replace_sas({SPI: SA(NAI, SPI, KEY, HOA), SPI2: SA(NAI2, SPI2, KEY2, HOA2)}, static)
    evs = v4ev(c)
    assert sorted((e.kind, e.reason) for e in evs) == [("ipv4_released", "reassigned")] * 2
    assert not h.bound and NAI2 not in h.leases and h.pool == [a4("198.18.50.101")]
    assert HOA in c.bindings and HOA2 in c.bindings          # the IPv6 bindings stay
    ba, evs = roundtrip(c, r, 1000)                          # asks for .9 (its last): refused
    assert ba.find(mo.IPv4AddressAck).status == 130 and r.v4hoa == bytes(4)
    ba, evs = roundtrip(c, r, 2000)                          # asks 0.0.0.0 again: the new static one
    assert ba.find(mo.IPv4AddressAck).address == a4("198.18.50.100") and ("ipv4", 0, a4("198.18.50.100")) in evs
    ba, _ = roundtrip(c, r2, 3000, ("udp4", "192.0.2.101", 4191), a4("192.0.2.101"))
    assert ba.find(mo.IPv4AddressAck).status == 130 and r2.v4hoa == bytes(4)
    ba, _ = roundtrip(c, r2, 4000, ("udp4", "192.0.2.101", 4191), a4("192.0.2.101"))
    assert ba.find(mo.IPv4AddressAck).address == a4("198.18.50.101")
    for bad, words in (([sacfg(NAI, SPI, KEY, HOA, "10.0.0.1")], "outside"),
                       ([sacfg(NAI, SPI, KEY, HOA, "198.18.50.7"),
                         sacfg(NAI2, SPI2, KEY2, HOA2, "198.18.50.7")], "two NAIs")):
        with pytest.raises(UserError) as e:
            ipv4home.static_of(bad, "keys.json", h)
        assert words in str(e.value)
    with pytest.raises(UserError) as e:
        ipv4home.static_of(sas, "keys.json", None)
    assert "ipv4_home_prefix" in str(e.value)


def test_leases_file_of_an_aaa_only_ha(tmp_path):
    """An HA with no keys file (AAA only) and an IPv4 pool must say where the leases live
    (ipv4_leases_file, relative to ha.json's folder); with a keys file they default beside it."""
    secret = tmp_path / "radius-secret"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o600)
    base = {"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1",
            "aaa": {"servers": [{"host": "::1"}], "secret_file": "radius-secret"},
            "ipv4_home_prefix": "198.18.50.0/24", "ipv4_pool": "198.18.50.100-198.18.50.102"}
    with pytest.raises(UserError) as e:
        parse_config(dict(base), base_dir=str(tmp_path))
    assert "ipv4_leases_file" in str(e.value) and "no keys file" in str(e.value)
    cfg = parse_config(dict(base, ipv4_leases_file="state/leases.json"), base_dir=str(tmp_path))
    assert cfg.ipv4_homes.leases_path == str(tmp_path / "state" / "leases.json") and not cfg.keys_file
    with pytest.raises(UserError) as e:
        parse_config(dict(base, ipv4_leases_file=""), base_dir=str(tmp_path))
    assert "ipv4_leases_file" in str(e.value)
    no_pool = dict(base)
    del no_pool["ipv4_pool"]
    assert parse_config(no_pool, base_dir=str(tmp_path)).ipv4_homes.leases_path is None   # nothing to lease
