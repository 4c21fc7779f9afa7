"""HMAC-SHA1, return routability (RFC 6275 §5.2.5, §6.2.7) and the RFC 4285 MN-HA authenticator.

`hmac_sha1` is one of the hot paths `roam6.accel` may replace with a native one; the functions
below look it up by name at call time, so they follow the replacement. MicroPython has no `hmac`
module: this is RFC 2104 on hashlib.sha1.
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


def home_keygen_token(kcn, hoa, nonce):
    """First 8 bytes of HMAC_SHA1(Kcn, HoA | home nonce | 0)."""
    return hmac_sha1(kcn, bytes(hoa) + bytes(nonce) + b"\x00")[:8]


def careof_keygen_token(kcn, coa, nonce):
    """First 8 bytes of HMAC_SHA1(Kcn, CoA | care-of nonce | 1)."""
    return hmac_sha1(kcn, bytes(coa) + bytes(nonce) + b"\x01")[:8]


def kbm(home_token, careof_token=None):
    """SHA1(home token | care-of token); SHA1(home token) for a deregistration (careof_token None)."""
    h = hashlib.sha1(bytes(home_token))
    if careof_token is not None:
        h.update(bytes(careof_token))
    return h.digest()


def rr_authenticator(kbm_key, coa, cn, mh_data):
    """Binding Authorization Data: first 12 bytes of HMAC_SHA1(Kbm, CoA | CN | MH data)."""
    return hmac_sha1(kbm_key, bytes(coa) + bytes(cn) + bytes(mh_data))[:12]


def mnha_auth_data(key, coa, hoa, mh_data):
    """RFC 4285 MN-HA: first 12 bytes of HMAC_SHA1(key, CoA | HoA | MH data through the SPI)."""
    return hmac_sha1(key, bytes(coa) + bytes(hoa) + bytes(mh_data))[:12]


# The fastest implementations that load (native module -> viper -> the Python above): roam6.accel.
from roam6 import accel as _accel  # noqa: E402

hmac_sha1 = _accel.pick("hmac_sha1", hmac_sha1)
home_keygen_token = _accel.pick("home_keygen_token", home_keygen_token)
careof_keygen_token = _accel.pick("careof_keygen_token", careof_keygen_token)
kbm = _accel.pick("kbm", kbm)
rr_authenticator = _accel.pick("rr_authenticator", rr_authenticator)
mnha_auth_data = _accel.pick("mnha_auth_data", mnha_auth_data)
