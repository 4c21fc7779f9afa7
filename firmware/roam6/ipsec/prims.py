"""Keyed hashes, prf+ and AES-CBC for IKEv2 (RFC 7296 §2.13, §2.14) and ESP (RFC 4303).

Algorithms by their IANA numbers (IKEv2 transform IDs) so the wire code and these tables agree:
PRF 2 = HMAC-SHA1, 5 = HMAC-SHA2-256; INTEG 2 = HMAC-SHA1-96, 12 = HMAC-SHA2-256-128;
ENCR 12 = AES-CBC. MicroPython has no `hmac` module: RFC 2104 on hashlib (HMAC-SHA1 is
`roam6.crypto`'s, which the native module may accelerate). AES comes from MicroPython's
`cryptolib` (ECB/CBC; no CTR, hence no cheap AES-GCM), on CPython from the `cryptography` package.
"""
import hashlib

from roam6.crypto import hmac_sha1

try:
    import cryptolib

    def aes_cbc(key, iv, data, encrypt):
        c = cryptolib.aes(bytes(key), 2, bytes(iv))
        return c.encrypt(data) if encrypt else c.decrypt(data)

except ImportError:  # CPython (host tools and tests): in a module of its own, so that its names
    from roam6.ipsec.aes_cpython import aes_cbc  # noqa: F401  (cryptography's) are not interned on the MN


def hmac_sha256(key, data):
    key = bytes(key)
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    k = bytearray(64)
    k[:len(key)] = key
    for i in range(64):
        k[i] ^= 0x36
    inner = hashlib.sha256(k)
    inner.update(data)
    for i in range(64):
        k[i] ^= 0x36 ^ 0x5C
    outer = hashlib.sha256(k)
    outer.update(inner.digest())
    return outer.digest()


# PRF id -> (function, output length); INTEG id -> (function, key length, ICV length); ENCR 12
# (AES-CBC) is roam6.ipsec.ikenames.ENCR_AES_CBC
PRFS = {2: (hmac_sha1, 20), 5: (hmac_sha256, 32)}
INTEGS = {2: (hmac_sha1, 20, 12), 12: (hmac_sha256, 32, 16)}


def prf_plus(prf, key, seed, n):
    """RFC 7296 §2.13: T1 | T2 | ... first n bytes, Tk = prf(K, Tk-1 | S | k)."""
    out = bytearray()
    t = b""
    i = 1
    while len(out) < n:
        t = prf(key, t + seed + bytes((i,)))
        out += t
        i += 1
    return bytes(out[:n])


def ct_equal(a, b):
    """Compare MACs without an early exit."""
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0
