"""The home registration's messages in compact form: the BU the MN sends, the BA it reads
(RFC 6275 §6.1.7-6.1.8, RFC 4283/4285 options, RFC 5555 IPv4 CoA and IPv4 home address;
docs/PROTOCOL-NOTES.md §1.6, §3, §4, §11). The BA's IPv4 Address Acknowledgement is read by
roam6.core.v4ack (loaded only by a node with an IPv4 home address).

The codec's one layout for these two messages, for a small heap: plain functions on bytes, no
classes, no option objects. `roam6.core.registration` (the MN) uses it; `roam6.wire.mh`'s
general classes (route optimisation, the host tools, `roam6 mh`) share its padding rule
(`pad`), and tests/firmware/test_registration.py proves both give the same bytes.
"""
import struct

from roam6.compat import const

_MH_BA = const(6)
_MO_BRA = const(2)
_MO_MN_ID = const(8)
_MO_AUTH = const(9)
_MO_REPLAY = const(10)
_MO_NAT = const(31)
V4MAPPED = b"\0\0\0\0\0\0\0\0\0\0\xff\xff"


def mac_coa(coa):
    """The care-of address the RFC 4285 MAC covers (docs/PROTOCOL-NOTES.md §11.1)."""
    if len(coa) == 4:
        return V4MAPPED + bytes(coa)
    return bytes(coa)


def pad(buf, n):
    """Append Pad1 or PadN of n bytes to bytearray buf (RFC 6275 §6.2.2)."""
    if n == 1:
        buf.append(0)
    elif n:
        buf.append(1)
        buf.append(n - 2)
        buf.extend(bytes(n - 2))

# (argument and function names are qstrs on the MN's heap: names the firmware already has, and
# the option alignment `pad(out, (y - len(out)) % x)` written out where it is used)


def encode_bu(seq, flags, lifetime_units, nai, spi, v4coa, timestamp, mac, v4hoa=None):
    """The BU's Mobility Header (checksum 0): MN-ID, [IPv4 HoA], [IPv4 CoA], [Replay], MN-HA auth
    last, laid out by the alignment rules (docs/PROTOCOL-NOTES.md §1.6, §4). mac(prefix) -> 12
    bytes. v4hoa: 4 bytes (0.0.0.0 asks the HA for one) or None."""
    out = bytearray(12)
    out[0] = 59
    out[2] = 5
    struct.pack_into(">HHH", out, 6, seq, flags, lifetime_units)
    out.append(_MO_MN_ID)
    out.append(1 + len(nai))
    out.append(1)
    out.extend(nai)
    if v4hoa is not None:                    # RFC 5555 §3.1.1: Prefix-len 32, P=0
        pad(out, -len(out) % 4)              # at 4n
        out.extend(b"\x1d\x06\x80\x00")
        out.extend(v4hoa)
    if v4coa is not None:
        pad(out, -len(out) % 4)
        out.extend(b"\x20\x06\x00\x00")
        out.extend(v4coa)
    if timestamp is not None:
        pad(out, (2 - len(out)) % 8)         # at 8n+2
        out.append(_MO_REPLAY)
        out.append(8)
        out.extend(timestamp.to_bytes(8, "big"))
    pad(out, (5 - len(out)) % 8)             # 4n+1, and ending the message on 8 bytes
    out.append(_MO_AUTH)
    out.append(17)
    out.append(1)
    out.extend(spi.to_bytes(4, "big"))
    out[1] = (len(out) + 12) // 8 - 1
    out.extend(mac(out))
    return out


def ipv6_packet(src, dst, nh, payload, hao=None):
    """IPv6 header (+ Destination Options with the Home Address option) + payload."""
    ext = 24 if hao is not None else 0
    out = bytearray(40 + ext + len(payload))
    struct.pack_into(">IHBB16s16s", out, 0, 0x60000000, ext + len(payload), 60 if hao else nh, 64,
                     src, dst)
    if hao is not None:
        out[40:48] = bytes((nh, 2, 1, 2, 0, 0, 0xC9, 16))
        out[48:64] = hao
    out[40 + ext:] = payload
    return out


def options(raw, start, n):
    """[(type, start of its data, end)] of the mobility options in raw[start:n], Pad1 skipped; None
    when one does not fit (RFC 6275 §6.2.1). decode_ba and roam6.wire.rrmsg read with it."""
    i = start
    out = []
    while i < n:
        if raw[i] == 0:
            i += 1
            continue
        if i + 2 > n or i + 2 + raw[i + 1] > n:
            return None
        e = i + 2 + raw[i + 1]
        out.append((raw[i], i + 2, e))
        i = e
    return out


def decode_ba(raw):
    """[status, seq, lifetime, refresh advice, timestamp, NAT refresh, SPI, MH offset of the MN-HA
    option] of a BA (None for options absent, -1 offset), or None when a length is wrong."""
    n = len(raw)
    if n < 12 or (raw[1] + 1) * 8 != n or raw[2] != _MH_BA:
        return None
    opts = options(raw, 12, n)
    if opts is None:
        return None
    b = [raw[6], (raw[8] << 8) | raw[9], (raw[10] << 8) | raw[11], None, None, None, None, -1]
    for t, s, e in opts:
        ln = e - s
        if t == _MO_BRA and ln == 2:
            b[3] = (raw[s] << 8) | raw[s + 1]
        elif t == _MO_REPLAY and ln == 8:
            b[4] = int.from_bytes(raw[s:e], "big")
        elif t == _MO_NAT and ln == 6:
            b[5] = int.from_bytes(raw[s + 2:e], "big")
        elif t == _MO_AUTH and ln == 17 and raw[s] == 1:
            b[6] = int.from_bytes(raw[s + 1:s + 5], "big")
            b[7] = s - 2
    return b
