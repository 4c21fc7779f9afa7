"""HMAC-SHA1 and the RFC 4285 MN-HA authenticator: what the home registration needs.

`hmac_sha1` and `hmac_parts` are hot paths `roam6.accel` may replace with native (or viper)
ones; `mnha_auth_data` looks `hmac_parts` up by name at call time, so it follows the replacement.
The return routability functions (route optimisation only) are `roam6.rrcrypto`: a module's
names stay on a board's heap once loaded. MicroPython has no `hmac` module: this is RFC 2104 on
hashlib.sha1.
"""
import hashlib


def hmac_sha1(key, data):
    key = bytes(key)
    if len(key) > 64:
        key = hashlib.sha1(key).digest()
    k = bytearray(64)
    k[:len(key)] = key
    for i in range(64):
        k[i] ^= 0x36
    inner = hashlib.sha1(k)
    inner.update(data)
    for i in range(64):
        k[i] ^= 0x36 ^ 0x5C
    outer = hashlib.sha1(k)
    outer.update(inner.digest())
    return outer.digest()


def hmac_parts(key, n, a, b=None, c=None):
    """First n bytes of HMAC_SHA1(key, a | b | c) (b, c None: left out), without joining them
    when native."""
    return hmac_sha1(key, bytes(a) + bytes(b or b"") + bytes(c or b""))[:n]


def mnha_auth_data(key, coa, hoa, data):
    """RFC 4285 MN-HA: first 12 bytes of HMAC_SHA1(key, CoA | HoA | data: the MH through the SPI)."""
    return hmac_parts(key, 12, coa, hoa, data)


# The fastest implementations that load (native module -> viper -> the Python above): roam6.accel.
# (Its module is dropped on the MN once picked: nothing here keeps a reference to it.)
from roam6 import accel  # noqa: E402

hmac_sha1 = accel.pick("hmac_sha1", hmac_sha1)
hmac_parts = accel.pick("hmac_parts", hmac_parts)
del accel
