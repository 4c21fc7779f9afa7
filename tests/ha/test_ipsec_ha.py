"""The HA's IPsec (ha/ipsecmh.py) sans-IO, with the firmware's Initiator as the MN (tests/ha/ipsec_mn.py):
IKE through IpsecHA, then ESP-protected BUs through the real BindingCache. Registration on udp4/udp6/ip6
(BA sealed, K echoed, no RFC 4285 options), replay, the wrong SA, a BU in clear for an IPsec device,
the HA's own MH sealed, and the RFC 4285 path of other devices untouched. The real `roam6 ha`
process: test_ipsec_ha_netns.py."""
import types

from roam6.ipsec import ikev2 as k
from roam6_codec import consts as C
from roam6.wire.ipv6 import build_ipv6, decode_ipv6

from roam6_host.ha.cache import BindingCache
from roam6_host.ha.ipsecconf import IpsecPeer
from roam6_host.ha.ipsecmh import IpsecHA
from roam6_host.ha.sa import SA

from ha_helpers import HA, HOA, KEY, NAI, PREFIX, SPI, T0, V4COA, a6, bu4
from ipsec_mn import EspMN

PSK = bytes(range(32))
INAI, INAI2 = b"esp1@example.test", b"esp2@example.test"
IHOA, IHOA2 = a6("2001:db8:aa::301"), a6("2001:db8:aa::302")
COA6 = a6("2001:db8:a1::7")
UDP6 = ("udp6", "2001:db8:a1::7", 4191)


class Log:
    def __init__(self):
        self.lines = []

    def __call__(self, ev, **f):
        self.lines.append(dict(f, ev=ev))

    def once(self, key, ev, **f):
        self(ev, **f)


def setup():
    log = Log()
    cache = BindingCache(HA, PREFIX, {SPI: SA(NAI, SPI, KEY, HOA)})
    ipsec = IpsecHA([IpsecPeer(INAI, PSK, IHOA), IpsecPeer(INAI2, PSK[::-1], IHOA2)], HA, "ha.test", T0, log=log)
    for sa in ipsec.cache_sas.values():
        cache.add_sa(sa)
    ha = types.SimpleNamespace(cache=cache, _flush=lambda now: None, tun=None)
    return ha, ipsec, log


def connect(ipsec, psk=PSK, nai=INAI, hoa=IHOA, now=T0):
    mn = EspMN(psk, nai.decode(), hoa, HA, (COA6, 4500), (HA, 4500), now)
    for _ in range(4):
        for data, _dst in mn.ike.datagrams_to_send(now):
            ipsec.ike_receive(data, ("2001:db8:a1::7", 4500), 4500, now)
        for data, _peer, _port in ipsec.ike_datagrams(now):
            mn.ike.receive(data, now)
    return mn


def signal(ha, ipsec, packet, source, now=T0):
    took = ipsec.on_signal(ha, packet, source, now)
    if not took:
        ha.cache.receive(packet, source, now, wall=now)
    return ha.cache.datagrams_to_send(now)


def test_registration_over_esp_on_each_transport():
    ha, ipsec, log = setup()
    mn = connect(ipsec)
    kinds = [e[0] for e in mn.events()]
    assert kinds == ["ike_up", "hoa", "child_up"], kinds
    assert mn.ike.hoa == (IHOA, 128)                          # the keys file's HoA, through CP
    (ba_pkt, dest), = signal(ha, ipsec, mn.bu(1), UDP6)
    assert dest == UDP6
    pkt, ba = mn.open_ba(ba_pkt)
    assert ba.status == 0 and ba.flags & C.BA_K and ba.seq == 1 and ba.lifetime == 150
    assert pkt.dst == IHOA and pkt.src == HA
    b = ha.cache.bindings[IHOA]
    assert b.transport == "udp6" and b.spi == ipsec.cache_sas[INAI].spi
    # udp4: the IPv4 CoA option as today, the NAT detected from the outer source
    (ba_pkt, dest), = signal(ha, ipsec, mn.bu(2, "udp4", v4coa=V4COA), ("udp4", "198.18.9.9", 40000))
    _, ba = mn.open_ba(ba_pkt)
    assert ba.status == 0 and any(type(o).__name__ == "NATDetection" for o in ba.options)
    # ip6: src CoA + Home Address option; the BA to the CoA with a type 2 routing header
    (ba_pkt, dest), = signal(ha, ipsec, mn.bu(3, "ip6", coa=COA6), ("ip6", "2001:db8:a1::7", 0))
    pkt, ba = mn.open_ba(ba_pkt)
    assert ba.status == 0 and pkt.dst == COA6 and pkt.rh2 == IHOA and dest == ("ip6", "2001:db8:a1::7", 0)
    assert ha.cache.bindings[IHOA].peer == ("2001:db8:a1::7", 0)
    # the cache's own rules still run: an old sequence number gets BA 135, sealed too
    (ba_pkt, _), = signal(ha, ipsec, mn.bu(2), UDP6)
    assert mn.open_ba(ba_pkt)[1].status == C.BA_SEQ_OUT_OF_WINDOW
    # deregistration
    (ba_pkt, _), = signal(ha, ipsec, mn.bu(4, lifetime=0), UDP6)
    assert mn.open_ba(ba_pkt)[1].status == 0 and IHOA not in ha.cache.bindings


def test_replay_wrong_sa_and_clear_bu_are_dropped():
    ha, ipsec, log = setup()
    mn = connect(ipsec)
    bu = mn.bu(1)
    assert len(signal(ha, ipsec, bu, UDP6)) == 1
    assert signal(ha, ipsec, bu, UDP6) == []                 # the same ESP packet again
    assert ipsec.counts["esp_replayed"] == 1
    # the second device's HoA claimed over the first device's SA: dropped, no binding
    assert signal(ha, ipsec, mn.bu(2, hoa=IHOA2), UDP6) == []
    assert ipsec.counts["esp_wrong_sa"] == 1 and IHOA2 not in ha.cache.bindings
    assert any(x.get("reason") == "esp_wrong_sa" for x in log.lines)
    # an RFC 4285 BU in clear for an IPsec device's HoA (even one a valid SA signs): dropped, no BA
    clear = bu4(5, hoa=IHOA, now=T0)
    assert signal(ha, ipsec, clear, ("udp4", "198.18.9.9", 40000)) == []
    assert ipsec.counts["clear_bu_refused"] == 1
    # garbage after the ESP header's place, unknown SPIs: dropped and counted, never raised
    for junk in (build_ipv6(IHOA, HA, 50, b"\x00\x00\x00\x01" + bytes(60)), build_ipv6(IHOA, HA, 50, b"\x01"),
                 build_ipv6(IHOA, HA, 50, mn.ike.esp_out.spi_bytes + bytes(4))):
        assert signal(ha, ipsec, junk, UDP6) == []
    assert ipsec.counts["esp_unknown_spi"] == 1 and ipsec.counts["esp_malformed"] >= 1
    # an unknown MH type inside ESP: no ICMPv6 / Binding Error quoting it in clear
    from roam6.wire.checksum import checksum6
    mh = bytearray(bytes((59, 1, 200, 0, 0, 0)) + bytes(10))
    mh[4:6] = checksum6(IHOA, HA, 135, bytes(mh)).to_bytes(2, "big")
    assert signal(ha, ipsec, build_ipv6(IHOA, HA, 50, mn.ike.esp_out.seal(bytes(mh), 135)), UDP6) == []
    # the RFC 4285 device beside it: unchanged
    (ba_pkt, _), = signal(ha, ipsec, bu4(9, now=T0), ("udp4", "198.18.9.9", 40000))
    assert decode_ipv6(ba_pkt).nh == 135 and HOA in ha.cache.bindings


def test_the_has_own_mh_to_an_ipsec_device_leaves_sealed():
    ha, ipsec, _ = setup()
    mn = connect(ipsec)
    signal(ha, ipsec, mn.bu(1), UDP6)
    ha.cache.unbound_data(IHOA2, UDP6, T0)                      # no SA for IHOA2's device: in clear
    ha.cache.bindings.pop(IHOA)
    ha.cache.unbound_data(IHOA, UDP6, T0 + 5000)                # a Binding Error to IHOA: sealed
    outs = ipsec.protect(ha.cache.datagrams_to_send(T0 + 5000))
    assert [decode_ipv6(d).nh for d, _ in outs] == [135, 50]
    nh, mh = mn.ike.esp_in.open(bytes(decode_ipv6(outs[1][0]).payload))
    assert nh == 135 and mh[2] == 7                            # MH type 7: Binding Error


def test_wrong_psk_is_refused_with_authentication_failed():
    ha, ipsec, log = setup()
    mn = connect(ipsec, psk=b"x" * 32)
    evs = mn.events()
    assert ("failed", "auth", k.N_AUTH_FAILED) in evs or ("failed", "notify", k.N_AUTH_FAILED) in evs, evs
    assert not ipsec.by_spi and any(x["ev"] == "ike_refused" and x["reason"] == "auth" for x in log.lines)


def test_provision_writes_both_sides_and_the_ha_loads_them(tmp_path):
    import json

    from roam6.node.config import ConfigError, parse_config
    from roam6_host import provision
    from roam6_host.ha.config import load_config
    keys, out = str(tmp_path / "keys.json"), str(tmp_path / "c.json")
    cfg = provision.provision(keys, out, nai="esp1@example.test", hoa="2001:db8:aa::301", ha="2001:db8:aa::1",
                              transports=["udp6"], security="ipsec")
    assert cfg["security"] == "ipsec" and len(bytes.fromhex(cfg["psk"])) == 32 and "spi" not in cfg
    provision.provision(keys, str(tmp_path / "d.json"), nai="b@example.test", hoa="2001:db8:aa::100",
                        ha="2001:db8:aa::1", transports=["udp6"])
    (tmp_path / "ha.json").write_text(json.dumps({"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1",
                                                 "keys_file": "keys.json", "security": ["rfc4285", "ipsec"]}))
    c = load_config(str(tmp_path / "ha.json"))
    assert [(p.nai, p.psk.hex(), p.hoa) for p in c.ipsec_peers] == [(b"esp1@example.test", cfg["psk"], IHOA)]
    assert [s.nai for s in c.sas] == [b"b@example.test"]
    try:                                     # the MN's own loader, once it knows "security" (issue #19 MN side)
        parse_config(json.loads(open(out).read()))
    except ConfigError as exc:
        assert exc.field == "security"


def test_config_mistakes_are_one_line_errors(tmp_path):
    import json
    import os

    import pytest

    from roam6_host.errors import UserError
    from roam6_host.ha.config import load_config
    good = {"nai": "e@example.test", "security": "ipsec", "psk": PSK.hex(), "hoa": "2001:db8:aa::301"}
    cases = [({"security": ["ipsec", "tls"]}, [good], "field 'security' must be a non-empty list"),
             ({"security": "ipsec"}, [good], "field 'security' must be a non-empty list"),
             ({}, [good], "does not list \"ipsec\""),
             ({"security": ["ipsec"]}, [dict(good, psk="00" * 8)], "field 'psk' must be 32 to 256 hex digits"),
             ({"security": ["ipsec"]}, [dict(good, psk="zz")], "field 'psk' must be"),
             ({"security": ["ipsec"]}, [{k: v for k, v in good.items() if k != "hoa"}], "field 'hoa' is missing"),
             ({"security": ["ipsec"]}, [dict(good, spi=4096)], "field 'spi' is not used by an IPsec entry"),
             ({"security": ["ipsec"]}, [dict(good, security="wep")], "field 'security' must be \"rfc4285\""),
             ({"security": ["ipsec"]}, [dict(good, hoa="2001:db8:bb::1")], "outside the home prefix"),
             ({"security": ["ipsec"]}, [good, dict(good, hoa="2001:db8:aa::302")], "is in the keys file twice")]
    for name, text in (("radius-secret", "s3cret\n"), ("replica.key", "ab" * 32)):
        (tmp_path / name).write_text(text)
        os.chmod(tmp_path / name, 0o600)
    for extra, sas, want in cases:
        (tmp_path / "keys.json").write_text(json.dumps({"sas": sas}))
        os.chmod(tmp_path / "keys.json", 0o600)
        (tmp_path / "ha.json").write_text(json.dumps(dict({"home_prefix": "2001:db8:aa::/64", "address":
                                                           "2001:db8:aa::1", "keys_file": "keys.json"}, **extra)))
        with pytest.raises(UserError) as e:
            load_config(str(tmp_path / "ha.json"))
        assert want in e.value.args[0] and "\n" not in e.value.args[0], (want, str(e.value))
    (tmp_path / "keys.json").write_text(json.dumps({"sas": [good]}))
    # a hot-standby pair serves IPsec devices (bindings replicate; IKE/ESP SAs do not: the MN re-keys)
    (tmp_path / "ha.json").write_text(json.dumps({
        "home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "keys_file": "keys.json",
        "security": ["ipsec"], "replica": {"peer": "2001:db8:aa::3", "bind": "2001:db8:aa::2",
                                           "key_file": "replica.key"}}))
    cfg = load_config(str(tmp_path / "ha.json"))
    assert cfg.ipsec_peers and cfg.replica is not None
    # IPsec with 'aaa' (issue 19, ha/ipsecaaa.py; it used to be refused): keys-file devices and the server's
    (tmp_path / "ha.json").write_text(json.dumps({
        "home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "keys_file": "keys.json",
        "security": ["ipsec"], "aaa": {"servers": [{"host": "::1"}], "secret_file": "radius-secret"}}))
    cfg = load_config(str(tmp_path / "ha.json"))
    assert cfg.ipsec_peers and cfg.aaa is not None and cfg.security == ["ipsec"]


def test_payload_tunnel_both_ways():
    ha, ipsec, _ = setup()
    written = []
    ha.tun = types.SimpleNamespace(write=written.append)
    mn = connect(ipsec)
    signal(ha, ipsec, mn.bu(1), UDP6)
    ipsec.ike_receive(mn.data_child_request(), ("2001:db8:a1::7", 4500), 4500, T0)
    (resp, _, _), = ipsec.ike_datagrams(T0)
    d_out, d_in = mn.data_child_response(resp)
    cn = a6("2001:db8:f3::2")
    inner = build_ipv6(IHOA, cn, 59, b"payload")
    # MN -> HA: outer IPv6 HoA -> HA, ESP in tunnel mode (next header 41): opened into the TUN
    assert signal(ha, ipsec, build_ipv6(IHOA, HA, 50, d_out.seal(inner, 41)), UDP6) == []
    assert written == [inner]
    # an inner source that is not the SA's HoA: dropped
    assert signal(ha, ipsec, build_ipv6(IHOA, HA, 50, d_out.seal(build_ipv6(IHOA2, cn, 59, b"x"), 41)), UDP6) == []
    assert written == [inner] and ipsec.counts["esp_wrong_proto"] == 1
    # the MH SA does not carry payload, nor the tunnel SA a BU
    assert signal(ha, ipsec, build_ipv6(IHOA, HA, 50, mn.ike.esp_out.seal(inner, 41)), UDP6) == []
    assert signal(ha, ipsec, mn.bu(2, sa=d_out), UDP6) == [] and written == [inner]
    # HA -> MN: sealed with the tunnel SA to the binding's path
    down = build_ipv6(cn, IHOA, 59, b"down")
    (pkt, dest), = [ipsec.seal_data(ha.cache.bindings[IHOA], down)]
    assert dest == UDP6
    outer = decode_ipv6(pkt)
    assert outer.nh == 50 and outer.dst == IHOA and d_in.open(bytes(outer.payload)) == (41, down)


def test_the_has_keyed_mac_equals_the_firmwares():
    from roam6.ipsec.esp import SA as EspSA
    from roam6_host.ha.ipsecmh import keyed_mac
    for integ, klen in ((2, 20), (12, 32)):
        ref = EspSA(0x1234, bytes(16), bytes(range(klen)), integ, rng=lambda n: bytes(n))
        fast = keyed_mac(EspSA(0x1234, bytes(16), bytes(range(klen)), integ, rng=lambda n: bytes(n)))
        assert fast._mac is not ref._mac
        assert fast.seal(b"x" * 100, 135) == ref.seal(b"x" * 100, 135)


def test_sighup_reload_adds_changes_and_revokes_devices():
    ha, ipsec, _ = setup()
    cache = ha.cache
    mn1, mn2 = connect(ipsec), connect(ipsec, psk=PSK[::-1], nai=INAI2, hoa=IHOA2)
    signal(ha, ipsec, mn1.bu(1), UDP6)
    signal(ha, ipsec, mn2.bu(1), ("udp6", "2001:db8:a1::8", 4191))
    assert set(cache.bindings) == {IHOA, IHOA2}
    ihoa3 = a6("2001:db8:aa::303")
    # device 1: a new PSK; device 2: unchanged; device 3: new
    new = [IpsecPeer(INAI, b"n" * 32, IHOA), IpsecPeer(INAI2, PSK[::-1], IHOA2),
           IpsecPeer(b"esp3@example.test", b"3" * 32, ihoa3)]
    by_spi = {SPI: cache.sas[SPI]}
    by_spi.update(ipsec.reload(new))
    cache.replace_sas(by_spi)
    gone = [e for e in cache.events() if e.kind == "binding_removed"]
    assert [(e.binding.hoa, e.reason) for e in gone] == [(IHOA, "revoked")]
    assert set(cache.bindings) == {IHOA2}
    assert signal(ha, ipsec, mn1.bu(2), UDP6) == []              # its old SAs are gone
    assert len(signal(ha, ipsec, mn2.bu(2), ("udp6", "2001:db8:a1::8", 4191))) == 1
    mn3 = connect(ipsec, psk=b"3" * 32, nai=b"esp3@example.test", hoa=ihoa3)
    assert len(signal(ha, ipsec, mn3.bu(1), ("udp6", "2001:db8:a1::9", 4191))) == 1
    assert connect(ipsec, psk=b"n" * 32).ike.esp_out is not None   # device 1 with its new PSK


def test_ike_sas_per_device_and_children_are_bounded():
    ha, ipsec, _ = setup()
    first = connect(ipsec)
    for _ in range(3):                       # re-authentications without Deletes of the old SAs
        last = connect(ipsec)
    ups = [sa for sa in ipsec.responder.sas.values() if sa.up]
    assert len(ups) == 2 and len(ipsec.by_spi) == 2
    assert signal(ha, ipsec, first.bu(1), UDP6) == [] and len(signal(ha, ipsec, last.bu(1), UDP6)) == 1
    # new CHILD_SAs beyond the MH and the payload tunnel: NO_ADDITIONAL_SAS (35)
    ipsec.ike_receive(last.data_child_request(), ("2001:db8:a1::7", 4500), 4500, T0)
    last.data_child_response(ipsec.ike_datagrams(T0)[0][0])
    ipsec.ike_receive(last.data_child_request(), ("2001:db8:a1::7", 4500), 4500, T0)
    (resp, _, _), = ipsec.ike_datagrams(T0)
    msg = resp[4:]
    inner = last.ike._decrypt(msg, k.parse_chain(msg, 28, len(msg), msg[16]))
    assert inner[0][0] == k.PL_NOTIFY and int.from_bytes(inner[0][2][2:4], "big") == 35


def test_home_agent_switch_to_an_ipsec_device_is_sealed_without_rfc4285_options():
    from roam6_codec.mh import decode_mh
    from roam6_host.ha.switch import Switcher
    ha, ipsec, _ = setup()
    mn = connect(ipsec)
    signal(ha, ipsec, mn.bu(1), UDP6)
    sw = Switcher(ha.cache)
    sw.start([IHOA], [a6("2001:db8:bb::1")], T0, 60000)
    (pkt, dest), = ipsec.protect(sw.datagrams_to_send(T0, T0))
    assert dest == UDP6 and decode_ipv6(pkt).nh == 50
    nh, mh = mn.ike.esp_in.open(bytes(decode_ipv6(pkt).payload))
    msg = decode_mh(mh)
    assert nh == 135 and mh[2] == 12 and type(msg).__name__ == "HomeAgentSwitch"
    assert [type(o).__name__ for o in msg.options if "Pad" not in type(o).__name__] == ["BindingRefreshAdvice"]


def test_mangled_ike_and_esp_never_raise():
    """Seeded mutations (bytes flipped, cut, appended) of a real exchange's IKE messages and an
    ESP-protected BU, fed to the HA's IPsec: dropped or answered, never an exception."""
    import random
    ha, ipsec, _ = setup()
    mn = EspMN(PSK, INAI.decode(), IHOA, HA, (COA6, 4500), (HA, 4500), T0)
    msgs = []
    for _ in range(4):
        for data, _dst in mn.ike.datagrams_to_send(T0):
            msgs.append(data)
            ipsec.ike_receive(data, ("2001:db8:a1::7", 4500), 4500, T0)
        for data, _peer, _port in ipsec.ike_datagrams(T0):
            mn.ike.receive(data, T0)
    mn.ike.check_liveness(T0)
    msgs += [d for d, _ in mn.ike.datagrams_to_send(T0)] + [mn.bu(1), mn.bu(2, "ip6", coa=COA6)]
    rnd = random.Random(19)
    for _ in range(1500):
        m = bytearray(rnd.choice(msgs))
        for _ in range(rnd.randint(1, 6)):
            op = rnd.random()
            if op < 0.5 and m:
                m[rnd.randrange(len(m))] = rnd.randrange(256)
            elif op < 0.75:
                m = m[:rnd.randrange(len(m) + 1)]
            else:
                m += bytes(rnd.randrange(256) for _ in range(rnd.randrange(20)))
        if m[:1] == b"\x60":
            ipsec.on_signal(ha, bytes(m), UDP6, T0)
        else:
            ipsec.ike_receive(bytes(m), ("2001:db8:a1::7", 4500), 4500, T0)
        ipsec.ike_datagrams(T0)
        ha.cache.datagrams_to_send(T0)
    assert ipsec.responder.dropped > 50 and sum(ipsec.counts.values()) > 50


def test_nat_detection_is_answered_for_the_address_asked():
    ha, ipsec, _ = setup()
    ipsec.local_ips = ("198.18.1.2", "2001:db8:aa::1")
    mn = EspMN(PSK, INAI.decode(), IHOA, HA, (COA6, 4500), (HA, 4500), T0)
    (init, _), = mn.ike.datagrams_to_send(T0)
    ipsec.ike_receive(init, ("2001:db8:a1::7", 4500), 4500, T0)
    (resp, _, _), = ipsec.ike_datagrams(T0)
    mn.ike.receive(resp, T0)
    assert mn.ike.nat is False          # NAT-D present and matching: no NAT between them
    mn2 = EspMN(PSK, INAI.decode(), IHOA, HA, (COA6, 4500), (HA, 4500), T0)
    (init, _), = mn2.ike.datagrams_to_send(T0)
    ipsec.ike_receive(init, ("2001:db8:a1::99", 1024), 4500, T0)      # the source rewritten on the way
    (resp, _, _), = ipsec.ike_datagrams(T0)
    mn2.ike.receive(resp, T0)
    assert mn2.ike.nat is True


def test_the_has_fast_esp_equals_the_firmwares():
    import os

    from roam6.ipsec.esp import SA as EspSA
    from roam6_host.ha.espfast import FastSA
    sizes = (0, 1, 14, 15, 16, 64, 1200)
    for integ, klen in ((2, 20), (12, 32)):
        ivs = [os.urandom(16) for _ in sizes]

        def sa(fast, rng=None):
            one = EspSA(0x1234, bytes(range(16)), bytes(range(klen)), integ, rng=rng or os.urandom)
            return FastSA(one) if fast else one
        ref, fast = sa(False, lambda n, it=iter(ivs): next(it)), sa(True, lambda n, it=iter(ivs): next(it))
        rx_ref, rx_fast = sa(False), sa(True)
        for size in sizes:
            payload = os.urandom(size)
            a, b = ref.seal(payload, 135), fast.seal(payload, 135)
            assert a == b, size
            assert rx_fast.open(a) == rx_ref.open(b) == (135, payload)
        assert rx_fast.open(a) is None and rx_fast.replayed == 1                       # replay window as ever
        other = sa(False)
        other.seq = 100
        c = other.seal(b"x", 135)
        assert rx_fast.open(c[:-1] + bytes((c[-1] ^ 1,))) is None and rx_fast.bad_icv == 1
        assert rx_fast.open(c) == (135, b"x")


def test_ba_templates_equal_the_codec():
    from roam6_host.ha.ipsecmh import _BATemplate, ba_codec
    cache = setup()[0].cache
    for has_refresh in (True, False):
        for has_bra in (True, False):
            tpl = _BATemplate(HA, has_refresh, has_bra)
            for status, flags, seq, units, refresh, bra in ((0, 0x80, 1, 150, 110, 112), (129, 0x80, 7, 3, 1, 65535),
                                                             (135, 0, 65535, 0, 0xFFFFFFFF, 1)):
                r = refresh if has_refresh else None
                b = bra if has_bra else 0
                assert tpl.make(cache, IHOA, status, flags, seq, units, r, b) == ba_codec(
                    HA, IHOA, status, flags, seq, units, r, b), (has_refresh, has_bra, status)


def test_an_ipsec_binding_survives_the_journal():
    """ha.json "journal" with IPsec devices: the record names the device by its NAI (SPI 0: its pseudo
    SPI is not kept across starts); a restarted HA (a new cache and IpsecHA, the devices in another
    order) restores the binding under the device's pseudo SA, and has no CHILD_SA: the MN's old ESP
    is dropped (unknown SPI) until its new IKE SA (test_node_ipsec: the MN re-keys when a BU goes
    unanswered), after which its BU refreshes the restored binding."""
    from roam6_host.ha.record import decode
    ha, ipsec, _ = setup()
    mn = connect(ipsec)
    signal(ha, ipsec, mn.bu(1), UDP6)
    b = ha.cache.bindings[IHOA]
    wire = ha.cache.record(b, T0, 1_000_000).encode()
    rec = decode(wire)
    assert rec.spi == 0 and rec.nai == INAI and rec.hoa == IHOA
    # the restart: the keys file's devices listed the other way round (other pseudo SPIs)
    log = Log()
    cache = BindingCache(HA, PREFIX, {SPI: SA(NAI, SPI, KEY, HOA)})
    ipsec2 = IpsecHA([IpsecPeer(INAI2, PSK[::-1], IHOA2), IpsecPeer(INAI, PSK, IHOA)], HA, "ha.test", T0, log=log)
    for sa in ipsec2.cache_sas.values():
        cache.add_sa(sa)
    assert not cache.apply(rec, T0, 1_000_000)          # without the hook the record names no SA
    cache.esp_sas = ipsec2.cache_sas
    assert cache.apply(rec, T0, 1_000_000)
    b2 = cache.bindings[IHOA]
    assert b2.spi == ipsec2.cache_sas[INAI].spi != ipsec.cache_sas[INAI].spi and b2.transport == "udp6"
    rec2 = decode(wire)
    rec2.nai = INAI2                                     # another device's NAI for this HoA: refused
    cache.bindings.clear()
    assert not cache.apply(rec2, T0, 1_000_000)
    cache.apply(rec, T0, 1_000_000)
    ha2 = types.SimpleNamespace(cache=cache, _flush=lambda now: None, tun=None)
    assert signal(ha2, ipsec2, mn.bu(2), UDP6) == [] and ipsec2.counts["esp_unknown_spi"] == 1
    mn2 = connect(ipsec2)                                # the MN's new IKE SA
    (ba_pkt, _), = signal(ha2, ipsec2, mn2.bu(3), UDP6)
    assert mn2.open_ba(ba_pkt)[1].status == 0 and cache.bindings[IHOA].seq == 3
