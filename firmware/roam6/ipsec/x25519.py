"""X25519 (RFC 7748 §5) on big ints: the IKEv2 Diffie-Hellman group 31 (RFC 8031).

Why Curve25519 over P-256: one Montgomery ladder of ~10 field products per bit, no point
validation, no y coordinate, 32-byte keys; P-256 needs Jacobian add/double formulas, point
validation and twice the code. Both are accepted by strongSwan (curve25519 plugin) and by the
other IKEv2 peers roam6 targets. Not constant-time (MicroPython big ints are not): acceptable for
ephemeral keys used once per IKE SA.
"""
from roam6.compat import const

_P = 2 ** 255 - 19
_A24 = const(121665)
_BASE = const(b"\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
               b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")    # u = 9


def x25519(k, u):
    """RFC 7748 X25519(k, u): 32-byte scalar, 32-byte u coordinate -> 32 bytes."""
    if len(k) != 32 or len(u) != 32:
        raise ValueError("x25519 needs 32-byte inputs")
    p = _P
    kb = bytearray(k)
    kb[0] &= 248
    kb[31] = (kb[31] & 127) | 64
    n = int.from_bytes(bytes(kb), "little")
    x1 = int.from_bytes(bytes(u), "little") & ((1 << 255) - 1)
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in range(254, -1, -1):
        bit = (n >> t) & 1
        if swap ^ bit:
            x2, x3 = x3, x2
            z2, z3 = z3, z2
        swap = bit
        a = x2 + z2
        aa = a * a % p
        b = x2 - z2
        bb = b * b % p
        e = aa - bb
        da = (x3 - z3) * a % p
        cb = (x3 + z3) * b % p
        x3 = da + cb
        x3 = x3 * x3 % p
        z3 = da - cb
        z3 = x1 * (z3 * z3 % p) % p
        x2 = aa * bb % p
        z2 = e * (aa + _A24 * e) % p
    if swap:
        x2, x3 = x3, x2
        z2, z3 = z3, z2
    return (x2 * pow(z2, p - 2, p) % p).to_bytes(32, "little")


def public_key(k):
    return x25519(k, _BASE)
