"""roam6.ipsec.esp against scapy's ESP (scapy.layers.ipsec.SecurityAssociation), an independent
implementation, with known keys, both directions: transport mode (an MH message, Next Header 135)
and tunnel mode (an inner IPv6 packet, 41), HMAC-SHA1-96 and HMAC-SHA2-256-128."""
import os

import pytest
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.packet import Raw

from roam6.ipsec.esp import SA

EK = bytes.fromhex("00112233445566778899aabbccddeeff")
MN, HA = "2001:db8:1::10", "2001:db8:1::1"
MH = bytes.fromhex("3b01050000001234000300000000")   # some MH bytes (a BU-like body)
ALGS = [(2, "HMAC-SHA1-96", 20), (12, "SHA2-256-128", 32)]


def scapy_sa(integ_name, ak, tunnel):
    return SecurityAssociation(ESP, spi=0x2001, crypt_algo="AES-CBC", crypt_key=EK, auth_algo=integ_name,
                               auth_key=ak, tunnel_header=IPv6(src=MN, dst=HA) if tunnel else None)


@pytest.mark.parametrize("integ,name,klen", ALGS)
def test_transport_mode_roam6_to_scapy_and_back(integ, name, klen):
    ak = os.urandom(klen)
    ours = SA(0x2001, EK, ak, integ)
    theirs = scapy_sa(name, ak, False)
    pkt = IPv6(bytes(IPv6(src=MN, dst=HA, nh=50)) [:40] + ours.seal(MH, 135))
    pkt[IPv6].plen = len(pkt) - 40
    clear = theirs.decrypt(IPv6(bytes(pkt)))
    assert clear[IPv6].nh == 135 and bytes(clear[IPv6].payload) == MH
    enc = theirs.encrypt(IPv6(src=HA, dst=MN, nh=135) / Raw(MH))
    esp = bytes(enc[ESP])
    assert esp[:4] == b"\x00\x00\x20\x01"
    assert SA(0x2001, EK, ak, integ).open(esp) == (135, MH)


@pytest.mark.parametrize("integ,name,klen", ALGS)
def test_tunnel_mode_roam6_to_scapy_and_back(integ, name, klen):
    ak = os.urandom(klen)
    inner = bytes(IPv6(src=MN, dst="2001:db8:99::5", nh=59))
    ours = SA(0x2001, EK, ak, integ)
    outer = bytes(IPv6(src=MN, dst=HA, nh=50))[:40]
    esp = ours.seal(inner, 41)
    pkt = bytearray(outer + esp)
    pkt[4:6] = len(esp).to_bytes(2, "big")
    theirs = scapy_sa(name, ak, True)
    clear = theirs.decrypt(IPv6(bytes(pkt)))
    assert bytes(clear) == inner
    enc = theirs.encrypt(IPv6(inner))
    assert SA(0x2001, EK, ak, integ).open(bytes(enc[ESP])) == (41, inner)


def test_scapy_refuses_our_packet_with_a_flipped_bit_and_we_refuse_theirs():
    ak = os.urandom(20)
    theirs = scapy_sa("HMAC-SHA1-96", ak, False)
    enc = bytearray(bytes(theirs.encrypt(IPv6(src=HA, dst=MN, nh=135) / Raw(MH))[ESP]))
    enc[-1] ^= 0x80
    sa = SA(0x2001, EK, ak, 2)
    assert sa.open(bytes(enc)) is None and sa.bad_icv == 1
