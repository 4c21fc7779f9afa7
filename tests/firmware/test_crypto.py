"""Return routability (roam6.rrcrypto) and RFC 4285 (roam6.crypto) vectors of
docs/PROTOCOL-NOTES.md §10.3 (computed from the RFC formulas with CPython's hmac; this runs them
again on MicroPython) and RFC 2202 HMAC-SHA1 vectors."""
from support import unhex
from roam6 import crypto, rrcrypto
from roam6.wire.addr import ip6_from_text

KCN = unhex("000102030405060708090a0b0c0d0e0f10111213")
HOA = ip6_from_text("2001:db8:1::100")
COA = ip6_from_text("2001:db8:2::200")
CN = ip6_from_text("2001:db8:3::300")


def test_hmac_sha1_rfc2202():
    assert crypto.hmac_sha1(b"\x0b" * 20, b"Hi There") == unhex("b617318655057264e28bc0b6fb378c8ef146be00")
    assert (crypto.hmac_sha1(b"Jefe", b"what do ya want for nothing?")
            == unhex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"))
    # key longer than the block size is hashed first
    assert crypto.hmac_sha1(b"\xaa" * 80, b"Test Using Larger Than Block-Size Key - Hash Key First") == \
        unhex("aa4ae5e15272d00e95705637ce8a3b55ed402112")


def test_hmac_takes_memoryview_and_bytearray():
    a = crypto.hmac_sha1(bytearray(b"Jefe"), memoryview(b"what do ya want for nothing?"))
    assert a == unhex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")


def test_keygen_tokens_and_kbm():
    ht = rrcrypto.home_keygen_token(KCN, HOA, unhex("1111111111111111"))
    ct = rrcrypto.careof_keygen_token(KCN, COA, unhex("2222222222222222"))
    assert ht == unhex("c71a754160cffb9a")
    assert ct == unhex("e24f4365fdaeafa7")
    assert rrcrypto.kbm(ht, ct) == unhex("80f42ffbdb0969b40a3a8c131b675650d340f1a4")
    assert rrcrypto.kbm(ht) == unhex("58d846675f1dfd21cce5949d3a1e1a0c2d888dfa")


def test_rr_authenticators():
    k = unhex("80f42ffbdb0969b40a3a8c131b675650d340f1a4")
    bu = unhex("3b0305000000000180000069040400050006050c")
    assert rrcrypto.rr_authenticator(k, COA, CN, bu) == unhex("1f546d90e3044a169eec9b03")
    ba = unhex("3b0306000000000000010069010400000000050c")
    assert rrcrypto.rr_authenticator(k, COA, CN, ba) == unhex("8448ed2faf4ad55158c5b229")


def test_mnha_auth_data():
    mh = unhex("3b05050000000007c0000096080f016d6e406578616d706c652e636f6d09110100000100")
    assert crypto.mnha_auth_data(b"\x0b" * 16, COA, HOA, mh) == unhex("d83b8d94266ac94371f6da76")


def test_hmac_parts_is_the_hmac_of_the_parts_joined():
    key = b"\x0b" * 16
    for parts in ((COA,), (COA, HOA), (COA, HOA, b"\x3b\x05"), (COA, None, memoryview(HOA)[3:]),
                  (COA, memoryview(b""), HOA)):
        joined = b"".join(bytes(p) for p in parts if p is not None)
        for n in (8, 12, 20):
            assert crypto.hmac_parts(key, n, *parts) == crypto.hmac_sha1(key, joined)[:n], (parts, n)
