"""Return routability (RFC 6275 §5.2.5, §6.2.7): keygen tokens, Kbm, Binding Authorization Data.

Only route optimisation (roam6.core.rr, "ro" in the config) and the host tools (the CN) load this:
the home registration needs roam6.crypto alone, and every name a module brings stays on a board's
heap for good. As fast as roam6.crypto: the HMACs are its `hmac_parts` (the tier roam6.accel
picked: native, or the Python one on the fastest hmac_sha1), and when that is the native module's,
Kbm is its SHA-1 in parts too.
"""
import hashlib
import sys

from roam6.crypto import hmac_parts


def home_keygen_token(kcn, hoa, nonce):
    """First 8 bytes of HMAC_SHA1(Kcn, HoA | home nonce | 0)."""
    return hmac_parts(kcn, 8, hoa, nonce, b"\x00")


def careof_keygen_token(kcn, coa, nonce):
    """First 8 bytes of HMAC_SHA1(Kcn, CoA | care-of nonce | 1)."""
    return hmac_parts(kcn, 8, coa, nonce, b"\x01")


def kbm(home_token, careof_token=None):
    """SHA1(home token | care-of token); SHA1(home token) for a deregistration (careof_token None)."""
    h = hashlib.sha1(bytes(home_token))
    if careof_token is not None:
        h.update(bytes(careof_token))
    return h.digest()


def rr_authenticator(kbm_key, coa, cn, mh_data):
    """Binding Authorization Data: first 12 bytes of HMAC_SHA1(Kbm, CoA | CN | MH data)."""
    return hmac_parts(kbm_key, 12, coa, cn, mh_data)


# the native module's sha1(a, b=None) is kbm itself, when roam6.accel picked that module
_native = sys.modules.get("roam6_native")
if _native is not None and hmac_parts is getattr(_native, "hmac_parts", None):
    kbm = _native.sha1
del _native
