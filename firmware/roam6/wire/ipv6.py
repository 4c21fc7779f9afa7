"""IPv6 header, Destination Options (Home Address option) and type 2 Routing Header (RFC 8200,
RFC 6275 §6.3-6.4; docs/PROTOCOL-NOTES.md §1.7).

Decoding walks Hop-by-Hop, Routing and Destination Options headers and stops at the first other
header (the upper layer, or Fragment/ESP/AH). `pack_ipv6_header` writes into a caller's buffer
for the data path; `build_ipv6` makes a new packet.
"""
import struct
from .errors import DecodeError

_EXT = (0, 43, 60)


class IPv6Packet:
    """src/dst/hao/rh2: 16-byte bytes; payload: memoryview of the upper layer; ext: list of
    (header type, bytes) of the extension headers as they came, for exact re-encoding."""

    def __init__(self):
        self.tclass = self.flow = 0
        self.hop_limit = 64
        self.src = self.dst = None
        self.nh = 59
        self.hao = None
        self.rh2 = None
        self.final_dst = None  # last address of a routing header with segments left
        self.ext = []
        self.payload_offset = 40
        self.payload = b""
        self.length = 40  # 40 + Payload Length (bytes after it in the buffer are a link trailer)


def _tlvs(p, mv, s, e, dstopts):
    i = s + 2
    while i < e:
        t = mv[i]
        if t == 0:
            i += 1
            continue
        if i + 2 > e:
            raise DecodeError(i, "option type %d has no room for its length" % t)
        n = mv[i + 1]
        if i + 2 + n > e:
            raise DecodeError(i + 1, "option type %d: length %d runs past its header" % (t, n))
        if t == 0xC9 and dstopts:
            if n != 16:
                raise DecodeError(i + 1, "Home Address option length %d, want 16" % n)
            p.hao = bytes(mv[i + 2:i + 18])
        i += 2 + n


def decode_ipv6(buf):
    mv = memoryview(buf)
    n = len(mv)
    if n < 40:
        raise DecodeError(n, "an IPv6 header is 40 bytes, got %d" % n)
    b0, b1, fl, plen, nh, hlim = struct.unpack_from(">BBHHBB", mv, 0)
    if b0 >> 4 != 6:
        raise DecodeError(0, "IP version %d, want 6" % (b0 >> 4))
    end = 40 + plen
    if end > n:
        raise DecodeError(4, "Payload Length %d, but only %d bytes follow the header"
                          % (plen, n - 40))
    p = IPv6Packet()
    p.tclass = ((b0 & 15) << 4) | (b1 >> 4)
    p.flow = ((b1 & 15) << 16) | fl
    p.hop_limit = hlim
    p.src = bytes(mv[8:24])
    p.dst = bytes(mv[24:40])
    off = 40
    while nh in _EXT:
        if off + 8 > end:
            raise DecodeError(off, "extension header %d truncated" % nh)
        hl = (mv[off + 1] + 1) * 8
        if off + hl > end:
            raise DecodeError(off + 1, "extension header %d of %d bytes runs past the packet"
                              % (nh, hl))
        if nh == 43:
            rt, left = mv[off + 2], mv[off + 3]
            if rt == 2:
                if hl != 24:
                    raise DecodeError(off + 1, "type 2 routing header has Hdr Ext Len %d, want 2"
                                      % (hl // 8 - 1))
                p.rh2 = bytes(mv[off + 8:off + 24])
            if left and rt in (0, 2) and hl >= 24:
                p.final_dst = bytes(mv[off + hl - 16:off + hl])
        else:
            _tlvs(p, mv, off, off + hl, nh == 60)
        p.ext.append((nh, bytes(mv[off:off + hl])))
        nh = mv[off]
        off += hl
    p.nh = nh
    p.payload_offset = off
    p.payload = mv[off:end]
    p.length = end
    return p


def pseudo_src(p):
    """Checksum source per RFC 6275: the Home Address option's address when there is one."""
    return p.hao if p.hao is not None else p.src


def pseudo_dst(p):
    """Checksum destination: the type 2 routing header's address (the final destination)."""
    if p.rh2 is not None:
        return p.rh2
    return p.final_dst if p.final_dst is not None else p.dst


def pack_ipv6_header(buf, off, src, dst, nh, plen, hop_limit=64, tclass=0, flow=0):
    """Write a 40-byte IPv6 header into buf at off (no allocation)."""
    struct.pack_into(">BBHHBB16s16s", buf, off, 0x60 | (tclass >> 4),
                     ((tclass & 15) << 4) | (flow >> 16), flow & 0xFFFF, plen, nh, hop_limit,
                     src, dst)


def hao_header(hoa, nh=59):
    """Destination Options header with PadN + Home Address option (24 bytes, HAO at 8n+6)."""
    return bytes((nh, 2, 1, 2, 0, 0, 0xC9, 16)) + bytes(hoa)


def rh2_header(hoa, nh=59, left=1):
    """Type 2 routing header carrying the home address (24 bytes)."""
    return bytes((nh, 2, 2, left, 0, 0, 0, 0)) + bytes(hoa)


def build_ipv6(src, dst, nh, payload, hao=None, rh2=None, hop_limit=64, tclass=0, flow=0, ext=None):
    """A whole packet. ext: list of (type, bytes) extension headers used as given (their Next
    Header bytes are rechained); without it, a type 2 RH (rh2) then a HAO header (hao) are made."""
    if ext is None:
        ext = []
        if rh2 is not None:
            ext.append((43, rh2_header(rh2)))
        if hao is not None:
            ext.append((60, hao_header(hao)))
    plen = len(payload)
    for t, h in ext:
        plen += len(h)
    if plen > 0xFFFF:
        raise ValueError("IPv6 payload of %d bytes is too long" % plen)
    out = bytearray(40 + plen)
    pack_ipv6_header(out, 0, src, dst, ext[0][0] if ext else nh, plen, hop_limit, tclass, flow)
    off = 40
    for i in range(len(ext)):
        h = ext[i][1]
        out[off:off + len(h)] = h
        out[off] = ext[i + 1][0] if i + 1 < len(ext) else nh
        off += len(h)
    out[off:] = payload
    return bytes(out)
