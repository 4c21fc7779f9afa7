"""`@micropython.viper` versions of roam6's hot paths: the middle tier of `roam6.accel`.

MicroPython only (viper is a MicroPython code emitter; `accel` never imports this on CPython, and
a port built without viper fails the import, which `accel` treats as "no viper"). On a board this
file must be compiled with `mpy-cross -march=<arch>` like any native code. Buffers are read byte
by byte (ptr8): a memoryview slice can start at any address and Cortex-M0 faults on unaligned
16/32-bit loads.
"""
import micropython
from hashlib import sha1


@micropython.viper
def _sum16(data, n: int) -> int:
    p = ptr8(data)  # noqa: F821  (viper built-in)
    hi = 0
    lo = 0
    i = 0
    last = n - 1
    while i < last:
        hi += p[i]
        lo += p[i + 1]
        i += 2
    if i < n:
        hi += p[i]
    return (hi << 8) + lo


def inet_sum(data, acc=0):
    # at most 64 KB per viper call: keeps (hi << 8) + lo below 2^31 on 32-bit ports
    n = len(data)
    if n <= 65536:
        return acc + _sum16(data, n)
    mv = memoryview(data)
    for off in range(0, n, 65536):
        part = mv[off:off + 65536]
        acc += _sum16(part, len(part))
    return acc


@micropython.viper
def _pads(key, n: int, ipad, opad):
    k = ptr8(key)  # noqa: F821
    i = ptr8(ipad)  # noqa: F821
    o = ptr8(opad)  # noqa: F821
    j = 0
    while j < n:
        b = k[j]
        i[j] = b ^ 0x36
        o[j] = b ^ 0x5C
        j += 1
    while j < 64:
        i[j] = 0x36
        o[j] = 0x5C
        j += 1


def hmac_sha1(key, data):
    """RFC 2104 HMAC-SHA1: the pads in viper, the hashing in the built-in hashlib."""
    if len(key) > 64:
        key = sha1(key).digest()
    ipad = bytearray(64)
    opad = bytearray(64)
    _pads(key, len(key), ipad, opad)
    h = sha1(ipad)
    h.update(data)
    inner = h.digest()
    h = sha1(opad)
    h.update(inner)
    return h.digest()
