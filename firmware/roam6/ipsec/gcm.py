"""ESP with AES-GCM and a 16-byte ICV (RFC 4106; IKEv2 ENCR_AES_GCM_16 = 20), sans-IO. Loaded only
by an SA that negotiated it (roam6.ipsec.esp.make_sa): a CBC device pays nothing for it.

Layout (docs/PROTOCOL-NOTES.md §9.4): SPI(4) | Seq(4) | IV(8) | AES-CTR(payload | pad 1,2,.. | pad
length | next header) | ICV(16), padded to a 4-byte multiple. KEYMAT per direction: the AES key
(16) then the salt (4). Nonce = salt | IV; J0 = nonce | 00000001; the payload is encrypted from
inc32(J0) on; ICV = E(K, J0) xor GHASH(H = E(K, 0), AAD = SPI | Seq, ciphertext). The IV is the
64-bit sequence number (unique per key, RFC 4106 §3.1: never reused). The replay window and the
counters are esp.SA's (this class extends it: `open` checks SPI, window, ICV, then decrypts).

GHASH: Shoup's 4-bit tables on Python integers (a field element is the 16 bytes read big-endian,
GCM's x^0 the top bit): 16 multiples of H made per SA, 32 table steps per 16-byte block. AES:
MicroPython's cryptolib in ECB mode (every port that has cryptolib has ECB; CTR is a build option),
all counter blocks of a packet in one call; on CPython the `cryptography` package.
"""
from roam6.ipsec.esp import SA

try:
    import cryptolib

    def _ecb(key):
        return cryptolib.aes(bytes(key), 1).encrypt
except ImportError:  # CPython (host tools, tests)
    from roam6.ipsec.aes_cpython import ecb as _ecb

_R = 0xE1 << 120


def _mul(x, y):
    """x * y in GCM's GF(2^128), one bit at a time (table set-up only)."""
    z = 0
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= y
        y = (y >> 1) ^ _R if y & 1 else y >> 1
    return z


_RED = []
for _b in range(16):
    _z = _b
    for _ in range(4):
        _z = (_z >> 1) ^ _R if _z & 1 else _z >> 1
    _RED.append(_z)


class GcmSA(SA):
    def __init__(self, spi, keymat, rng=None):
        if len(keymat) != 20:
            raise ValueError("AES-GCM-128 keymat is 16 + 4 bytes")
        self.spi = spi
        self.spi_bytes = spi.to_bytes(4, "big")
        self.enc_key = bytes(keymat[:16])
        self.salt = bytes(keymat[16:])
        self.integ_key = b""
        self.icv_len = 16
        self.rng = rng
        self.seq = self.top = self.bitmap = 0
        self.sealed = self.opened = 0
        self.bad_spi = self.bad_icv = self.replayed = self.malformed = 0
        self._aes = _ecb(self.enc_key)
        h = int.from_bytes(self._aes(bytes(16)), "big")
        self._tab = [_mul(n << 124, h) for n in range(16)]

    def _ghash(self, aad, ct):
        tab, red = self._tab, _RED
        z = 0
        n = len(ct)
        data = bytes(aad) + bytes(-len(aad) % 16) + bytes(ct) + bytes(-n % 16)
        data += (len(aad) * 8).to_bytes(8, "big") + (n * 8).to_bytes(8, "big")
        for off in range(0, len(data), 16):
            x = z ^ int.from_bytes(data[off:off + 16], "big")
            z = 0
            for _ in range(32):
                z = (z >> 4) ^ red[z & 15] ^ tab[x & 15]
                x >>= 4
        return z

    def _ctr(self, nonce, data):
        n = len(data)
        blocks = bytearray()
        for i in range(2, 2 + (n + 15) // 16):
            blocks += nonce
            blocks += i.to_bytes(4, "big")
        ks = self._aes(bytes(blocks))
        return (int.from_bytes(data, "big") ^ (int.from_bytes(ks[:n], "big"))).to_bytes(n, "big") if n else b""

    def _tag(self, nonce, aad, ct):
        e0 = int.from_bytes(self._aes(nonce + b"\x00\x00\x00\x01"), "big")
        return (e0 ^ self._ghash(aad, ct)).to_bytes(16, "big")

    def seal(self, payload, next_header):
        if self.seq >= 0xFFFFFFFF:
            return None
        self.seq += 1
        n = len(payload) + 2
        pad = -n % 4
        plain = bytearray(payload)
        plain += bytes(range(1, pad + 1))
        plain.append(pad)
        plain.append(next_header)
        iv = self.seq.to_bytes(8, "big")
        nonce = self.salt + iv
        head = self.spi_bytes + self.seq.to_bytes(4, "big")
        ct = self._ctr(nonce, bytes(plain))
        self.sealed += 1
        return head + iv + ct + self._tag(nonce, head, ct)

    # open is esp.SA's (SPI, window, then these two, then the padding and the window moved)
    def _fits(self, n):
        # SPI, sequence, 8-byte IV, at least the pad length and next header (4-byte aligned), 16-byte ICV
        return n >= 8 + 8 + 4 + 16 and (n - 32) % 4 == 0

    def _unseal(self, packet):
        end = len(packet) - 16
        nonce = self.salt + bytes(packet[8:16])
        ct = bytes(packet[16:end])
        if not self._equal(self._tag(nonce, bytes(packet[:8]), ct), packet[end:]):
            return None
        return self._ctr(nonce, ct)
