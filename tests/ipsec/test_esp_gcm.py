"""ESP with AES-GCM (RFC 4106; roam6.ipsec.gcm, the HA's ha/espfast.FastGcmSA): checked against
scapy's ESP (an independent implementation) with known keys both ways, the HA's fast SA giving the
firmware SA's bytes, and ENCR_AES_GCM_16 negotiated between the MN's initiator and the HA's
responder (CREATE_CHILD_SA's payload tunnel and a rekey too). strongSwan negotiating it with the
`roam6 ha` process: tests/ipsec/test_ha_process_strongswan.py."""
import os

from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation

from roam6.ipsec import ikev2 as k
from roam6.ipsec.gcm import GcmSA
from roam6_host.ha.espfast import FastGcmSA, fast_sa
from roam6_host.ipsec.responder import Responder

from test_responder import NAI, drain, initiator, pump

MN, HA = "2001:db8:1::10", "2001:db8:1::1"


def test_tunnel_mode_roam6_to_scapy_and_back():
    km = os.urandom(20)
    inner = bytes(IPv6(src=MN, dst="2001:db8:99::5", nh=59))
    theirs = SecurityAssociation(ESP, spi=0x2001, crypt_algo="AES-GCM", crypt_key=km, auth_algo="NULL",
                                 tunnel_header=IPv6(src=MN, dst=HA))
    for ours in (GcmSA(0x2001, km), FastGcmSA(GcmSA(0x2001, km))):
        esp = ours.seal(inner, 41)
        pkt = bytearray(bytes(IPv6(src=MN, dst=HA, nh=50))[:40] + esp)
        pkt[4:6] = len(esp).to_bytes(2, "big")
        assert bytes(theirs.decrypt(IPv6(bytes(pkt)))) == inner
    for seq in (1, 7):
        enc = bytes(theirs.encrypt(IPv6(inner), seq_num=seq)[ESP])
        assert GcmSA(0x2001, km).open(enc) == (41, inner)
        assert FastGcmSA(GcmSA(0x2001, km)).open(enc) == (41, inner)
        bad = bytearray(enc)
        bad[20] ^= 1
        fast = FastGcmSA(GcmSA(0x2001, km))
        assert fast.open(bytes(bad)) is None and fast.bad_icv == 1


def test_the_has_fast_sa_gives_the_firmware_bytes():
    km = os.urandom(20)
    slow, fast = GcmSA(0x77, km), fast_sa(GcmSA(0x77, km))
    assert isinstance(fast, FastGcmSA)
    for n in (0, 5, 64, 1200):
        p = os.urandom(n)
        a, b = slow.seal(p, 41), fast.seal(p, 41)
        assert a == b
        assert GcmSA(0x77, km).open(b) == (41, p)


def test_gcm_negotiated_by_the_initiator_and_the_responder():
    r = Responder({NAI: "psk-1"}, "ha.example.test", 0, local_ip="10.0.0.1")
    ike = initiator(esp_gcm=True)
    pump(ike, r)
    assert [e[0] for e in drain(ike)] == ["ike_up", "child_up"]
    evs = drain(r)
    _, _, sa_in, sa_out, _, _, _ = evs[1]
    assert isinstance(sa_in, GcmSA) and isinstance(ike.esp_out, GcmSA)
    assert sa_in.open(ike.esp_out.seal(b"up", 135)) == (135, b"up")
    assert ike.esp_in.open(sa_out.seal(b"down", 135)) == (135, b"down")
    ike.create_child([k.ts_host(bytes(15) + b"\x02")], [k.ts_range(bytes(16), b"\xff" * 16)], 0)   # payload tunnel
    pump(ike, r)
    assert [e[0] for e in drain(ike)] == ["data_up"] and isinstance(ike.data_out, GcmSA)
    data = drain(r)[0]
    assert data[2].open(ike.data_out.seal(b"x" * 100, 41)) == (41, b"x" * 100)
    ike.rekey_child(0)
    pump(ike, r)
    assert [e[0] for e in drain(ike)] == ["child_rekeyed"]
    new = [e for e in drain(r) if e[0] == "child_rekeyed"][0]
    assert new[2].open(ike.esp_out.seal(b"again", 135)) == (135, b"again")



def test_pfs_on_child_sa_rekey_with_the_responder(monkeypatch):
    """RFC 7296 §1.3.3 with PFS: the MN's rekey carries a KE (group 31 in the ESP proposal), the HA
    answers with its own, and both sides seed the new KEYMAT with g^ir (new) | Ni | Nr (§2.17)."""
    r = Responder({NAI: "psk-1"}, "ha.example.test", 0, local_ip="10.0.0.1")
    ike = initiator(pfs=True)
    pump(ike, r)
    drain(ike)
    drain(r)
    seeds = []
    real = k.esp_pair
    monkeypatch.setattr(k, "esp_pair", lambda prf, sk_d, seed, *a: seeds.append(seed) or real(prf, sk_d, seed, *a))
    ike.rekey_child(0)
    pump(ike, r)
    assert [e[0] for e in drain(ike)] == ["child_rekeyed"] and r.pfs_exchanges == 1
    new = [e for e in drain(r) if e[0] == "child_rekeyed"][0]
    assert new[2].open(ike.esp_out.seal(b"pfs", 135)) == (135, b"pfs")
    assert ike.esp_in.open(new[3].seal(b"back", 135)) == (135, b"back")
    assert len(seeds) == 2 and seeds[0] == seeds[1] and len(seeds[0]) == 32 + 32 + 32
    assert seeds[0][32:64] == ike._rekey_ni and seeds[0][:32] != bytes(32)


def test_pfs_refused_without_a_ke():
    # a CREATE_CHILD_SA whose proposal names group 31 but carries no KE: N(NO_PROPOSAL_CHOSEN), no SA
    r = Responder({NAI: "psk-1"}, "ha.example.test", 0, local_ip="10.0.0.1")
    ike = initiator(pfs=True)
    pump(ike, r)
    drain(ike)
    drain(r)
    ike.pfs = False                              # sends no KE ...
    ike._rekey_items = lambda: ike._esp_items() + [(4, 31, b"")]     # ... yet offers the group
    ike.rekey_child(0)
    pump(ike, r)
    assert [e[0] for e in drain(ike)] == ["child_failed"] and r.pfs_exchanges == 0
    assert not [e for e in drain(r) if e[0] == "child_rekeyed"]
