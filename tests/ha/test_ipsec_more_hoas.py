"""RFC 4877 §4.4 at the HA (ha/ipsecmh.py, sans-IO with the real BindingCache): the home address
through the configuration payload and what roam6 does with more than one HoA and with a HoA change.

- More than one HoA: the keys file's "more_hoas" are further HoAs of the same device; the MN asks for
  each one's transport-mode MH CHILD_SA with CREATE_CHILD_SA (TSi = that HoA, USE_TRANSPORT_MODE) in
  the same IKE SA; the HA keeps a TSi naming one of the device's HoAs (any other is narrowed to the
  CP HoA) and binds that CHILD_SA to that HoA only: each HoA has its own binding and its own SA, and
  a BU claiming one HoA over the other's SA is dropped (esp_wrong_sa).
- A HoA change: the keys file gives the device another HoA (SIGHUP): its SAs and binding go, and at
  its re-authentication the configuration payload hands out the new HoA, the only one its SA may claim.
"""
from roam6.ipsec import ikev2 as k

from roam6_host.ha.cache import BindingCache
from roam6_host.ha.ipsecconf import IpsecPeer
from roam6_host.ha.ipsecmh import IpsecHA

from ha_helpers import HA, PREFIX, T0, a6
from ipsec_mn import EspMN

import types

PSK = bytes(range(32))
NAI, NAI2 = b"esp1@example.test", b"esp2@example.test"
HOA1, HOA_B, HOA_OTHER = a6("2001:db8:aa::301"), a6("2001:db8:aa::311"), a6("2001:db8:aa::302")
UDP6 = ("udp6", "2001:db8:a1::7", 4191)
PEER = ("2001:db8:a1::7", 4500)


def setup(peers):
    cache = BindingCache(HA, PREFIX, {})
    ipsec = IpsecHA(peers, HA, "ha.test", T0)
    for sa in list(ipsec.cache_sas.values()) + list(ipsec.more_sas.values()):
        cache.add_sa(sa)
    return types.SimpleNamespace(cache=cache, _flush=lambda now: None, tun=None), ipsec


def connect(ipsec, hoa=HOA1, psk=PSK):
    mn = EspMN(psk, NAI.decode(), hoa, HA, (a6("2001:db8:a1::7"), 4500), (HA, 4500), T0)
    for _ in range(4):
        for data, _dst in mn.ike.datagrams_to_send(T0):
            ipsec.ike_receive(data, PEER, 4500, T0)
        for data, _peer, _port in ipsec.ike_datagrams(T0):
            mn.ike.receive(data, T0)
    return mn


def mh_child(mn, ipsec, hoa):
    """CREATE_CHILD_SA for `hoa`'s MH SA (transport mode, TSi = hoa proto 135): (esp_out, esp_in)."""
    ike = mn.ike
    ni, spi = ike.rng(32), ike._new_spi()
    pls = [(k.PL_NOTIFY, k.notify(k.N_USE_TRANSPORT_MODE)), (k.PL_SA, k.sa_payload(3, spi, ike._esp_items())),
           (k.PL_NONCE, ni), (k.PL_TSI, k.ts_payload([k.ts_host(hoa, 135)])),
           (k.PL_TSR, k.ts_payload([k.ts_host(HA, 135)]))]
    ipsec.ike_receive(k.MARKER + ike._encrypted(pls, k.CREATE_CHILD_SA, k.F_I, ike._msgid), PEER, 4500, T0)
    (resp, _, _), = ipsec.ike_datagrams(T0)
    msg = resp[4:]
    got = {t: b for t, _, b in ike._decrypt(msg, k.parse_chain(msg, 28, len(msg), msg[16]))}
    ike._msgid += 1
    _proto, their, _items = k.parse_sa(got[k.PL_SA])
    out, inn, _ = ike._pair(ni + bytes(got[k.PL_NONCE]), int.from_bytes(their, "big"), int.from_bytes(spi, "big"))
    return out, inn, k.parse_ts(got[k.PL_TSI])


def signal(ha, ipsec, packet):
    ipsec.on_signal(ha, packet, UDP6, T0)
    return ha.cache.datagrams_to_send(T0)


def test_two_home_addresses_each_with_its_own_mh_sa_and_binding():
    ha, ipsec = setup([IpsecPeer(NAI, PSK, HOA1, [HOA_B]), IpsecPeer(NAI2, PSK[::-1], HOA_OTHER)])
    mn = connect(ipsec)
    assert mn.ike.hoa == (HOA1, 128)                         # the CP hands out the primary HoA
    (ba, _), = signal(ha, ipsec, mn.bu(1))
    assert mn.open_ba(ba)[1].status == 0
    out_b, in_b, ts_b = mh_child(mn, ipsec, HOA_B)
    assert ts_b[0][4] == HOA_B and ts_b[0][1] == 135          # kept: one of the device's HoAs
    mn_b = EspMN.__new__(EspMN)
    mn_b.hoa, mn_b.ha = HOA_B, HA
    mn_b.ike = types.SimpleNamespace(esp_out=out_b, esp_in=in_b)
    (ba, _), = signal(ha, ipsec, mn_b.bu(1))
    _, got = mn_b.open_ba(ba)
    assert got.status == 0
    b1, b2 = ha.cache.bindings[HOA1], ha.cache.bindings[HOA_B]
    assert b1.spi == ipsec.cache_sas[NAI].spi and b2.spi == ipsec.more_sas[(NAI, HOA_B)].spi and b1.spi != b2.spi
    # one HoA claimed over the other's SA: dropped, both ways
    assert signal(ha, ipsec, mn.bu(2, hoa=HOA_B)) == [] and signal(ha, ipsec, mn_b.bu(2, hoa=HOA1)) == []
    assert ipsec.counts["esp_wrong_sa"] == 2
    # a CHILD_SA asked for another device's HoA is narrowed to this device's CP HoA: it cannot claim it
    out_x, _in_x, ts_x = mh_child(mn, ipsec, HOA_OTHER)
    assert ts_x[0][4] == HOA1
    mn_x = types.SimpleNamespace(hoa=HOA_OTHER, ha=HA, ike=types.SimpleNamespace(esp_out=out_x))
    assert signal(ha, ipsec, EspMN.bu(mn_x, 1)) == [] and HOA_OTHER not in ha.cache.bindings
    assert ipsec.counts["esp_wrong_sa"] == 3
    # the HA's messages for each HoA leave under that HoA's newest MH SA (mh_out per HoA)
    assert ipsec.mh_out[HOA_B].sa_in.spi == out_b.spi and ipsec.mh_out[HOA1].sa_in.spi == out_x.spi


def test_a_home_address_change_at_re_authentication():
    ha, ipsec = setup([IpsecPeer(NAI, PSK, HOA1, [HOA_B])])
    mn = connect(ipsec)
    signal(ha, ipsec, mn.bu(1))
    out_b, in_b, _ = mh_child(mn, ipsec, HOA_B)
    assert set(ha.cache.bindings) == {HOA1}
    new_hoa = a6("2001:db8:aa::399")
    # the keys file now gives the device another HoA (and no second one): SIGHUP
    ha.cache.replace_sas(ipsec.reload([IpsecPeer(NAI, PSK, new_hoa)]))
    assert [(e.binding.hoa, e.reason) for e in ha.cache.events() if e.kind == "binding_removed"] == \
        [(HOA1, "revoked")]
    assert not ipsec.by_spi and not ipsec.more_sas                # every CHILD_SA of the device went
    assert signal(ha, ipsec, mn.bu(2)) == []                      # the old SA: unknown SPI
    # its re-authentication: the configuration payload hands out the new HoA
    mn2 = connect(ipsec, hoa=new_hoa)
    assert mn2.ike.hoa == (new_hoa, 128)
    (ba, _), = signal(ha, ipsec, mn2.bu(1))
    assert mn2.open_ba(ba)[1].status == 0 and set(ha.cache.bindings) == {new_hoa}
    assert signal(ha, ipsec, mn2.bu(2, hoa=HOA1)) == [] and ipsec.counts["esp_wrong_sa"] == 1


def test_reload_keeps_pseudo_spis_unique_and_drops_a_changed_devices_further_hoas():
    a, b = IpsecPeer(NAI, PSK, HOA1, [HOA_B]), IpsecPeer(NAI2, PSK[::-1], HOA_OTHER)
    ha, ipsec = setup([a])
    before = dict(ipsec.more_sas)
    table = ipsec.reload([a, b])                       # a device added: new SPIs, none reused
    assert len(table) == 3 and ipsec.more_sas == before
    table = ipsec.reload([IpsecPeer(NAI, b"x" * 32, HOA1, [HOA_B]), b])   # device 1's PSK changed
    assert len(table) == 3 and ipsec.more_sas[(NAI, HOA_B)] is not before[(NAI, HOA_B)]
    assert len({sa.spi for sa in table.values()}) == 3 and before[(NAI, HOA_B)].spi not in table
