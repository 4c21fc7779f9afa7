"""MN-HA mobility security associations (RFC 4285) with the HMAC work done once per SA.

HMAC-SHA1(key, m) = SHA1(K^opad | SHA1(K^ipad | m)). The two keyed SHA-1 states are computed when
the SA is loaded; each authenticator then costs two `copy()`s and two short updates instead of
re-deriving the pads per BU (the HA's hot path, `roam6 bench ha`). Results equal
`roam6.crypto.mnha_auth_data` byte for byte (tests/ha/test_sa.py checks that).
"""
import hashlib

_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class SA:
    __slots__ = ("nai", "spi", "key", "hoa", "last_ts", "max_units", "_inner", "_outer")

    def __init__(self, nai, spi, key, hoa=None):
        self.nai = bytes(nai)
        self.spi = spi
        self.key = bytes(key)
        self.hoa = hoa            # 16 bytes, or None: any HoA inside the home prefix
        self.last_ts = 0          # RFC 4285: timestamp of the last accepted BU
        self.max_units = None     # lifetime cap in 4 s units from the AAA server; None: the HA's
        k = self.key.ljust(64, b"\0")   # keys are 16 bytes, never longer than the block
        self._inner = hashlib.sha1(k.translate(_IPAD))
        self._outer = hashlib.sha1(k.translate(_OPAD))

    def mnha_auth(self, coa, hoa, mh_data):
        """First 96 bits of HMAC-SHA1(key, CoA | HoA | MH data) (RFC 4285 §5)."""
        h = self._inner.copy()
        h.update(b"".join((coa, hoa, mh_data)))     # one update, not three (any bytes-like parts)
        o = self._outer.copy()
        o.update(h.digest())
        return o.digest()[:12]


def sas_by_spi(sa_configs):
    """{spi: SA} from config.SAConfig entries."""
    return {c.spi: SA(c.nai, c.spi, c.key, c.hoa) for c in sa_configs}
