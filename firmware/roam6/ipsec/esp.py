"""ESP (RFC 4303) with AES-CBC and HMAC-SHA1-96 / HMAC-SHA2-256-128, sans-IO.

One `SA` object per direction. `seal` makes an ESP packet (SPI | Seq | IV | ciphertext | ICV) from
a payload and its Next Header: 41 (IPv6) or 4 (IPv4) in tunnel mode, the upper-layer protocol
(135 MH, 58 ICMPv6, 17 UDP) in transport mode; the caller puts it after the outer IP header
(protocol 50) or in UDP 4500 (RFC 3948: ESP needs no marker, its SPI is never 0). `open` checks,
in RFC 4303 §3.4 order, the SPI, the replay window, the ICV (before decrypting), then decrypts and
moves the window; it returns (next_header, payload) or None and counts the reason. Anti-replay:
a 64-packet window (§3.4.3), 32-bit sequence numbers (no ESN); a sender stops at 2**32 - 1
(`seal` returns None: the SA must be rekeyed). Layout: docs/PROTOCOL-NOTES.md §9.4.
"""
import os

from roam6.compat import const
from roam6.ipsec.prims import INTEGS, aes_cbc, ct_equal

_WINDOW = const(64)
_SEQ_MAX = 0xFFFFFFFF


class SA:
    def __init__(self, spi, enc_key, integ_key, integ=2, rng=os.urandom):
        fn, klen, icv = INTEGS[integ]
        if len(enc_key) not in (16, 24, 32) or len(integ_key) != klen:
            raise ValueError("ESP key lengths")
        self.spi = spi
        self.spi_bytes = spi.to_bytes(4, "big")
        self.enc_key = bytes(enc_key)
        self.integ_key = bytes(integ_key)
        self._mac = fn
        self.icv_len = icv
        self.rng = rng
        self.seq = 0          # outbound: last sequence number sent
        self.top = 0          # inbound: highest sequence number accepted
        self.bitmap = 0       # inbound: bit i set = top - i seen
        self.sealed = self.opened = 0
        self.bad_spi = self.bad_icv = self.replayed = self.malformed = 0

    def seal(self, payload, next_header):
        if self.seq >= _SEQ_MAX:
            return None
        self.seq += 1
        n = len(payload) + 2
        pad = (16 - n % 16) % 16
        plain = bytearray(payload)
        plain += bytes(range(1, pad + 1))
        plain.append(pad)
        plain.append(next_header)
        iv = self.rng(16)
        out = bytearray(self.spi_bytes)
        out += self.seq.to_bytes(4, "big")
        out += iv
        out += self._encrypt(iv, plain)
        out += self._mac(self.integ_key, out)[:self.icv_len]
        self.sealed += 1
        return bytes(out)

    # the cipher and the ICV comparison, apart so the HA can give its SAs faster ones (ha/espfast.py)
    def _encrypt(self, iv, plain):
        return aes_cbc(self.enc_key, iv, plain, True)

    def _decrypt(self, iv, data):
        return aes_cbc(self.enc_key, iv, data, False)

    _equal = staticmethod(ct_equal)

    def _replay_ok(self, seq):
        if seq == 0:
            return False
        if seq > self.top:
            return True
        d = self.top - seq
        return d < _WINDOW and not (self.bitmap >> d) & 1

    def _mark(self, seq):
        if seq > self.top:
            shift = seq - self.top
            self.bitmap = ((self.bitmap << shift) | 1) & ((1 << _WINDOW) - 1) if shift < _WINDOW else 1
            self.top = seq
        else:
            self.bitmap |= 1 << (self.top - seq)

    def _fits(self, n):
        # SPI, sequence, IV, at least one block, ICV; whole blocks between
        icv = self.icv_len
        return n >= 8 + 16 + 16 + icv and (n - 8 - 16 - icv) % 16 == 0

    def _unseal(self, packet):
        # the ICV checked before decrypting (RFC 4303 §3.4.4); the plaintext, or None
        end = len(packet) - self.icv_len
        if not self._equal(self._mac(self.integ_key, packet[:end])[:self.icv_len], packet[end:]):
            return None
        return self._decrypt(packet[8:24], packet[24:end])

    def open(self, packet):
        # (AES-GCM, gcm.GcmSA and the HA's FastGcmSA, differ only in _fits and _unseal)
        if not self._fits(len(packet)):
            self.malformed += 1
            return None
        if packet[:4] != self.spi_bytes:
            self.bad_spi += 1
            return None
        seq = int.from_bytes(packet[4:8], "big")
        if not self._replay_ok(seq):
            self.replayed += 1
            return None
        plain = self._unseal(packet)
        if plain is None:
            self.bad_icv += 1
            return None
        pad = plain[-2]
        if pad + 2 > len(plain):
            self.malformed += 1
            return None
        self._mark(seq)
        self.opened += 1
        return plain[-1], plain[:len(plain) - 2 - pad]
