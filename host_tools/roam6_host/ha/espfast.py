"""The HA's ESP SAs: roam6.ipsec.esp.SA (the firmware's, RFC 4303 rules and counters unchanged)
with CPython-side crypto that does not rebuild its state per packet (docs/ARCHITECTURE.md "IPsec").

- HMAC: the keyed inner/outer hash states made once (`keyed_mac`, as ha/sa.py for RFC 4285).
- AES-CBC decrypt: one ECB pass over all blocks, then P = D(C) xor (IV | C[:-16]) as one integer.
- AES-CBC encrypt: one long-lived CBC context per SA; its chaining value is the last ciphertext
  block it produced, so a packet's first block is fed as P1 xor IV xor that block and the context
  then chains the rest itself: E(P1 xor IV), E(P2 xor C1), ... - the packet's own CBC, one call.
- AES-GCM (RFC 4106): `FastGcmSA`, cryptography's AESGCM; `fast_sa` picks the class.
The bytes are the firmware SA's exactly (tests/ha/test_ipsec_ha.py compares them).
"""
import hashlib
from hmac import compare_digest

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from roam6.ipsec.esp import SA as EspSA
from roam6.ipsec.gcm import GcmSA
from roam6.ipsec.prims import INTEGS

_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def keyed_mac(sa):
    """Give an esp.SA the HA's HMAC: the keyed SHA states made once (as ha/sa.py does for RFC
    4285), not the firmware's RFC 2104 on every packet; the same bytes (tests/ha/test_ipsec_ha.py)."""
    for iid, (fn, _klen, _icv) in INTEGS.items():
        if sa._mac is fn:
            break
    else:
        return sa
    h = hashlib.sha1 if iid == 2 else hashlib.sha256
    key = sa.integ_key.ljust(64, b"\0")
    inner, outer = h(key.translate(_IPAD)), h(key.translate(_OPAD))

    def mac(_key, data):
        i = inner.copy()
        i.update(data)
        o = outer.copy()
        o.update(i.digest())
        return o.digest()
    sa._mac = mac
    return sa


class _Cbc:
    __slots__ = ("_enc", "_dec", "_last")

    def __init__(self, key):
        z = bytes(16)
        self._enc = Cipher(algorithms.AES(bytes(key)), modes.CBC(z)).encryptor()
        self._dec = Cipher(algorithms.AES(bytes(key)), modes.ECB()).decryptor()
        self._last = z

    def encrypt(self, iv, data):
        first = (int.from_bytes(data[:16], "big") ^ int.from_bytes(iv, "big")
                 ^ int.from_bytes(self._last, "big")).to_bytes(16, "big")
        out = self._enc.update(first + bytes(data[16:]))
        self._last = out[-16:]
        return out

    def decrypt(self, iv, data):
        data = bytes(data)
        d = self._dec.update(data)
        return (int.from_bytes(d, "big") ^ int.from_bytes(bytes(iv) + data[:-16], "big")).to_bytes(len(data), "big")


class FastSA(EspSA):
    """Takes over an esp.SA (keys, SPI, sequence and replay state) with the HA's crypto."""

    def __init__(self, sa):                     # (no super().__init__: the state is sa's)
        self.__dict__.update(sa.__dict__)
        keyed_mac(self)
        self._cbc = _Cbc(self.enc_key)

    def _encrypt(self, iv, plain):
        return self._cbc.encrypt(iv, plain)

    def _decrypt(self, iv, data):
        return self._cbc.decrypt(iv, data)

    @staticmethod
    def _equal(a, b):
        return compare_digest(bytes(a), bytes(b))


class FastGcmSA(GcmSA):
    """An AES-GCM (RFC 4106) roam6.ipsec.gcm.GcmSA with `cryptography`'s AESGCM (one call per
    packet, no Python GHASH); the same bytes, the same window and counters."""

    def __init__(self, sa):
        self.__dict__.update(sa.__dict__)
        self._gcm = AESGCM(self.enc_key)

    def seal(self, payload, next_header):
        if self.seq >= 0xFFFFFFFF:
            return None
        self.seq += 1
        n = len(payload) + 2
        pad = -n % 4
        iv = self.seq.to_bytes(8, "big")
        head = self.spi_bytes + self.seq.to_bytes(4, "big")
        plain = bytes(payload) + bytes(range(1, pad + 1)) + bytes((pad, next_header))
        self.sealed += 1
        return head + iv + self._gcm.encrypt(self.salt + iv, plain, head)

    def _unseal(self, packet):                  # (open and _fits are GcmSA's: the same checks, in order)
        try:
            return self._gcm.decrypt(self.salt + bytes(packet[8:16]), bytes(packet[16:]), bytes(packet[:8]))
        except InvalidTag:
            return None


def fast_sa(sa):
    """The HA's SA for a firmware ESP SA: AES-GCM or AES-CBC + HMAC."""
    return FastGcmSA(sa) if isinstance(sa, GcmSA) else FastSA(sa)
