"""IPv4 header (RFC 791), for RFC 5555 UDP encapsulation of the MN's IPv6 traffic."""
import struct
from roam6.wire.errors import DecodeError
from roam6.wire.checksum import inet_sum, finish


class IPv4Packet:
    def __init__(self):
        self.tos = 0
        self.ident = 0
        self.flags_frag = 0  # flags (DF 0x4000, MF 0x2000) and fragment offset, as one word
        self.ttl = 64
        self.proto = 0
        self.checksum = 0
        self.checksum_ok = True
        self.src = self.dst = None
        self.options = b""
        self.payload_offset = 20
        self.payload = b""
        self.length = 20


def decode_ipv4(buf):
    mv = memoryview(buf)
    n = len(mv)
    if n < 20:
        raise DecodeError(n, "an IPv4 header is at least 20 bytes, got %d" % n)
    vi, tos, tl, ident, ff, ttl, proto, ck = struct.unpack_from(">BBHHHBBH", mv, 0)
    if vi >> 4 != 4:
        raise DecodeError(0, "IP version %d, want 4" % (vi >> 4))
    hl = (vi & 15) * 4
    if hl < 20 or hl > n:
        raise DecodeError(0, "IHL %d does not fit (%d bytes there)" % (vi & 15, n))
    if tl < hl or tl > n:
        raise DecodeError(2, "Total Length %d, but %d bytes are there (header %d)" % (tl, n, hl))
    p = IPv4Packet()
    p.tos, p.ident, p.flags_frag, p.ttl, p.proto, p.checksum = tos, ident, ff, ttl, proto, ck
    p.checksum_ok = finish(inet_sum(mv[:hl])) == 0
    p.src = bytes(mv[12:16])
    p.dst = bytes(mv[16:20])
    p.options = bytes(mv[20:hl])
    p.payload_offset = hl
    p.payload = mv[hl:tl]
    p.length = tl
    return p


def pack_ipv4_header(buf, off, src, dst, proto, total_length, ttl=64, ident=0, tos=0, flags_frag=0):
    """Write a 20-byte IPv4 header (no options) with its checksum into buf at off."""
    struct.pack_into(">BBHHHBBH4s4s", buf, off, 0x45, tos, total_length, ident, flags_frag, ttl, proto, 0, src, dst)
    struct.pack_into(">H", buf, off + 10, finish(inet_sum(memoryview(buf)[off:off + 20])))


def build_ipv4(src, dst, proto, payload, ttl=64, ident=0, tos=0, flags_frag=0):
    n = 20 + len(payload)
    if n > 0xFFFF:
        raise ValueError("IPv4 packet of %d bytes is too long" % n)
    out = bytearray(n)
    pack_ipv4_header(out, 0, src, dst, proto, n, ttl, ident, tos, flags_frag)
    out[20:] = payload
    return bytes(out)
