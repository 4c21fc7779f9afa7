"""Test vectors for the hot paths, computed on CPython with hashlib/hmac (independent of roam6),
written in a tiny binary format that tests/natmod/mp_check_vectors.py reads on MicroPython.

Record: a kind byte, then fields, each a 2-byte big-endian length and that many bytes; integers
travel as decimal text (any size, any sign).
"""
import hashlib
import hmac
import random
import struct

SUM_KIND, RR_KIND = 1, 2


def ref_sum(data):
    padded = bytes(data) + (b"\x00" if len(data) % 2 else b"")
    return sum(struct.unpack(">%dH" % (len(padded) // 2), padded))


def ref_finish(acc):
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return ~acc & 0xFFFF


def ref_checksum6(src, dst, nh, payload):
    n = len(payload)
    return ref_finish(ref_sum(src) + ref_sum(dst) + (n >> 16) + (n & 0xFFFF) + nh + ref_sum(payload))


def _field(b):
    return struct.pack(">H", len(b)) + b


def _rand(rng, n):
    return rng.randbytes(n)


def sum_hmac_records(seed=1, max_len=2000, corrupt_hmac_at=None):
    """One record per data length 0..max_len: data, key, acc and the expected sum, HMAC, SHA-1,
    finish(acc + sum) and the checksum6 of the data under a random pseudo-header.
    corrupt_hmac_at: a length whose expected HMAC is made wrong (to show the checker fails)."""
    rng = random.Random(seed)
    pool = [_rand(rng, 16), _rand(rng, 20), _rand(rng, 16)]  # reused keys: the native key cache
    out = []
    for n in range(max_len + 1):
        data = _rand(rng, n)
        r = rng.random()
        if r < 0.5:
            key = pool[n % 3]
        else:
            key = _rand(rng, rng.choice([0, 1, 8, 16, 20, 32, 63, 64, 65, 100, 200]))
        a = rng.random()
        if a < 0.25:
            acc = 0
        elif a < 0.7:
            acc = rng.randrange(1 << 20)
        elif a < 0.85:
            acc = rng.randrange(1 << 30, 1 << 62)  # past the small-int fast path
        else:
            acc = -rng.randrange(1 << 40)
        src, dst, nh = _rand(rng, 16), _rand(rng, 16), rng.choice([6, 17, 58, 135])
        fin = ref_finish(acc + ref_sum(data)) if acc >= 0 else -1  # -1: no finish check (negative sum)
        mac = hmac.new(key, data, "sha1").digest()
        if n == corrupt_hmac_at:
            mac = mac[:-1] + bytes([mac[-1] ^ 1])
        rec = bytes([SUM_KIND]) + b"".join(_field(f) for f in (
            data, key, str(acc).encode(), str(acc + ref_sum(data)).encode(), mac, hashlib.sha1(data).digest(),
            src, dst, str(nh).encode(), str(ref_checksum6(src, dst, nh, data)).encode(), str(fin).encode()))
        out.append(rec)
    return out


def rr_records(seed=2, count=200):
    """Return routability and RFC 4285 inputs with their expected results (RFC 6275 §5.2.5)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        kcn, hoa, coa, cn = _rand(rng, 20), _rand(rng, 16), _rand(rng, 16), _rand(rng, 16)
        hn, cnonce = _rand(rng, 8), _rand(rng, 8)
        mh = _rand(rng, rng.randrange(0, 120))
        key = _rand(rng, 16)
        ht = hmac.new(kcn, hoa + hn + b"\x00", "sha1").digest()[:8]
        ct = hmac.new(kcn, coa + cnonce + b"\x01", "sha1").digest()[:8]
        kbm = hashlib.sha1(ht + ct).digest()
        kbm_dereg = hashlib.sha1(ht).digest()
        auth = hmac.new(kbm, coa + cn + mh, "sha1").digest()[:12]
        mnha = hmac.new(key, coa + hoa + mh, "sha1").digest()[:12]
        out.append(bytes([RR_KIND]) + b"".join(_field(f) for f in (
            kcn, hoa, hn, coa, cnonce, cn, mh, key, ht, ct, kbm, kbm_dereg, auth, mnha)))
    return out


def write(path, records):
    with open(path, "wb") as f:
        f.write(b"R6V1" + struct.pack(">I", len(records)))
        for r in records:
            f.write(r)
