"""Route optimisation's messages in compact form (RFC 6275 §6.1.1-6.1.9, §6.2.6-6.2.7;
docs/PROTOCOL-NOTES.md §1.1-1.2): the HoTI/CoTI and the BU a mobile node sends a correspondent, and
the HoT/CoT, BA, Binding Error and Binding Refresh Request it reads back.

What roam6.wire.binding is for the home registration: plain functions on bytes, no classes or
option objects, so the MN's route optimisation (`roam6.core.rr`) loads neither `roam6.wire.mh`
nor its options. Those general classes stay the codec of the host tools and `roam6 mh`, and
tests/firmware/test_rrmsg.py proves both write and read the same bytes.
"""
import struct

from roam6.compat import const

from .binding import options
from .checksum import checksum6

BRR = const(0)
HOTI = const(1)
COTI = const(2)
HOT = const(3)
COT = const(4)
BU = const(5)
BA = const(6)
BE = const(7)
_MO_NONCE = const(4)
_MO_BAD = const(5)
_BU_A = const(0x8000)
# the fixed part of each message read here (bytes after the checksum), by MH type 0-7
_FIXED = (2, -1, -1, 18, 18, -1, 6, 18)


def _finish(out, src, dst):
    """Header Len and the checksum for src -> dst (RFC 6275 §6.1.1)."""
    out[1] = len(out) // 8 - 1
    struct.pack_into(">H", out, 4, checksum6(src, dst, 135, out))
    return bytes(out)


def encode_init(kind, cookie, src, dst):
    """HoTI (HOTI) or CoTI (COTI): Reserved, the 8-byte init cookie."""
    out = bytearray(8)
    out[0] = 59
    out[2] = kind
    out.extend(cookie)
    return _finish(out, src, dst)


def encode_bu(seq, lifetime_units, home_index, careof_index, mac, src, dst):
    """A BU to a correspondent (A bit): Nonce Indices (2n), Binding Authorization Data (8n+2)
    whose authenticator is mac(the message up to it, checksum 0)."""
    out = bytearray(12)
    out[0] = 59
    out[2] = BU
    struct.pack_into(">HHH", out, 6, seq, _BU_A, lifetime_units)
    out.extend(struct.pack(">BBHH", _MO_NONCE, 4, home_index, careof_index))    # at 12: 2n
    out.append(_MO_BAD)               # at 18: 8n+2, so the message ends on 8 bytes (32)
    out.append(12)
    out[1] = (len(out) + 12) // 8 - 1
    out.extend(mac(bytes(out)))
    return _finish(out, src, dst)


def decode(raw):
    """The message a correspondent sent, as a tuple, or None when it is another type or any
    length is wrong: HoT/CoT (HOT|COT, nonce index, cookie, keygen token); BA (BA, status, seq,
    lifetime, authenticator of a last Binding Authorization Data option or None); Binding Error
    (BE, status, home address); BRR (BRR,). A Payload Proto other than 59 is refused (RFC 6275
    §9.2), as is a Header Len below the type's fixed part."""
    n = len(raw)
    if n < 8 or raw[0] != 59 or (raw[1] + 1) * 8 != n:
        return None
    t = raw[2]
    fl = _FIXED[t] if t < 8 else -1
    if fl < 0 or 6 + fl > n:
        return None
    opts = options(raw, 6 + fl, n)    # every option must fit
    if opts is None:
        return None
    if t == BA:
        auth = None
        last = opts[-1] if opts else None
        if last is not None and last[0] == _MO_BAD and last[2] - last[1] == 12 and last[2] == n:
            auth = bytes(raw[n - 12:])
        return BA, raw[6], (raw[8] << 8) | raw[9], (raw[10] << 8) | raw[11], auth
    if t == BE:
        return BE, raw[6], bytes(raw[8:24])
    if t == BRR:
        return (BRR,)
    return t, (raw[6] << 8) | raw[7], bytes(raw[8:16]), bytes(raw[16:24])


def checksum_ok(raw, src, dst):
    """Whether the MH bytes carry the right checksum for pseudo-header src -> dst."""
    return checksum6(src, dst, 135, raw) == 0
