"""roam6.ipsec.gcm: ESP with AES-GCM (RFC 4106): the GCM spec's test cases 3 and 4 (McGrew and
Viega, AES-128: no AAD / 20-byte AAD), the ESP layout (4-byte padding, IV = the sequence number),
the replay window and a forged ICV. Against an independent ESP: tests/ipsec/test_esp_scapy.py."""
from roam6.ipsec.gcm import GcmSA

KEY = bytes.fromhex("feffe9928665731c6d6a8f9467308308")
SALT, IV = bytes.fromhex("cafebabe"), bytes.fromhex("facedbaddecaf888")
P = bytes.fromhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                  "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255")
C = bytes.fromhex("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
                  "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985")
AAD = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")


def test_gcm_spec_test_cases_3_and_4():
    sa = GcmSA(0x100, KEY + SALT)
    nonce = SALT + IV
    assert sa._ctr(nonce, P) == C
    assert sa._tag(nonce, b"", C).hex() == "4d5c2af327cd64a62cf35abd2ba6fab4"
    assert sa._tag(nonce, AAD, C[:60]).hex() == "5bc94fbc3221a5db94fae95ae7121a47"


def test_esp_layout_round_trip_replay_and_forgery():
    out, inn = GcmSA(0x1234, KEY + SALT), GcmSA(0x1234, KEY + SALT)
    for n, nh in ((0, 135), (1, 135), (2, 58), (64, 41), (1200, 41)):
        payload = bytes((i * 7) & 255 for i in range(n))
        pkt = out.seal(payload, nh)
        assert pkt[:4] == b"\x00\x00\x12\x34" and pkt[4:8] == out.seq.to_bytes(4, "big")
        assert pkt[8:16] == out.seq.to_bytes(8, "big")              # IV = the sequence number
        body = len(pkt) - 16 - 16
        assert body % 4 == 0 and 0 <= body - (n + 2) < 4             # minimal padding to 4
        assert inn.open(pkt) == (nh, payload)
    assert inn.opened == 5 and inn.open(pkt) is None and inn.replayed == 1
    pkt = bytearray(out.seal(b"abc", 135))
    pkt[17] ^= 1
    assert inn.open(bytes(pkt)) is None and inn.bad_icv == 1
    assert inn.open(bytes(pkt[:20])) is None and inn.malformed == 1
