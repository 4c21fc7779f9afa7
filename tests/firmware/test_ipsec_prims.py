"""roam6.ipsec.x25519 and roam6.ipsec.prims: RFC 7748, RFC 4231, RFC 3602 vectors; prf+ by hand."""
from support import unhex

from roam6.crypto import hmac_sha1
from roam6.ipsec import prims
from roam6.ipsec.x25519 import public_key, x25519


def test_x25519_rfc7748_section_5_2_vectors():
    assert x25519(unhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                  unhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")) == unhex(
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    # the u coordinate's top bit is set in the RFC's text: X25519 masks it
    assert x25519(unhex("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d"),
                  unhex("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493")) == unhex(
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957")
    nine = b"\x09" + bytes(31)
    assert x25519(nine, nine) == unhex("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")


def test_x25519_rfc7748_section_6_1_diffie_hellman():
    a = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    b = unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    pa, pb = public_key(a), public_key(b)
    assert pa == unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert pb == unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert x25519(a, pb) == shared and x25519(b, pa) == shared


def test_x25519_refuses_wrong_lengths():
    try:
        x25519(bytes(31), bytes(32))
    except ValueError:
        return
    raise AssertionError("31-byte scalar accepted")


def test_hmac_sha256_rfc4231():
    assert prims.hmac_sha256(b"\x0b" * 20, b"Hi There") == unhex(
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    assert prims.hmac_sha256(b"Jefe", b"what do ya want for nothing?") == unhex(
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    assert prims.hmac_sha256(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First") == unhex(
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")


def test_prf_plus_is_the_chained_prf_of_rfc7296_2_13():
    k, s = b"K" * 20, b"seed"
    t1 = hmac_sha1(k, s + b"\x01")
    t2 = hmac_sha1(k, t1 + s + b"\x02")
    t3 = hmac_sha1(k, t2 + s + b"\x03")
    assert prims.prf_plus(hmac_sha1, k, s, 45) == (t1 + t2 + t3)[:45]
    assert prims.prf_plus(prims.hmac_sha256, k, s, 32) == prims.hmac_sha256(k, s + b"\x01")


def test_aes_cbc_rfc3602_case_1_and_2():
    key, iv = unhex("06a9214036b8a15b512e03d534120006"), unhex("3dafba429d9eb430b422da802c9fac41")
    ct = unhex("e353779c1079aeb82708942dbe77181a")
    assert prims.aes_cbc(key, iv, b"Single block msg", True) == ct
    assert prims.aes_cbc(key, iv, ct, False) == b"Single block msg"
    key, iv = unhex("c286696d887c9aa0611bbb3e2025a45a"), unhex("562e17996d093d28ddb3ba695a2e6f58")
    pt = bytes(range(32))
    assert prims.aes_cbc(key, iv, pt, True) == unhex(
        "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1")


def test_ct_equal():
    assert prims.ct_equal(b"abc", b"abc")
    assert not prims.ct_equal(b"abc", b"abd") and not prims.ct_equal(b"abc", b"ab")
