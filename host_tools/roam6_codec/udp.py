"""UDP (RFC 768) over IPv6 or IPv4: checksums with the matching pseudo-header."""
import struct
from roam6.wire.errors import DecodeError
from roam6.wire.checksum import inet_sum, finish, pseudo_sum

# Sum of the IPv4 pseudo-header (RFC 768): the IPv6 one's sum, with 4-byte addresses and a 16-bit
# length (the firmware's checksum module keeps no name for it: a qstr on the MN's heap)
pseudo_sum4 = pseudo_sum


class UDPDatagram:
    def __init__(self, sport=0, dport=0, length=8, checksum=0, payload=b""):
        self.sport = sport
        self.dport = dport
        self.length = length
        self.checksum = checksum
        self.payload = payload


def decode_udp(buf):
    """buf: the UDP header and data (a link or IP trailer after Length is ignored)."""
    n = len(buf)
    if n < 8:
        raise DecodeError(n, "a UDP header is 8 bytes, got %d" % n)
    sp, dp, ln, ck = struct.unpack_from(">HHHH", buf, 0)
    if ln < 8 or ln > n:
        raise DecodeError(4, "UDP Length %d, but %d bytes are there" % (ln, n))
    return UDPDatagram(sp, dp, ln, ck, memoryview(buf)[8:ln])


def _sum(src, dst, length):
    if len(src) == 16:
        return pseudo_sum(src, dst, length, 17)
    return pseudo_sum4(src, dst, length, 17)


def pack_udp_header(buf, off, sport, dport, length, checksum=0):
    struct.pack_into(">HHHH", buf, off, sport, dport, length, checksum)


def fill_udp_checksum(buf, off, length, src, dst):
    """Compute and write the checksum of the datagram at buf[off:off+length] (field zeroed first)."""
    struct.pack_into(">H", buf, off + 6, 0)
    c = finish(inet_sum(memoryview(buf)[off:off + length], _sum(src, dst, length)))
    struct.pack_into(">H", buf, off + 6, c or 0xFFFF)


def build_udp(sport, dport, payload, src=None, dst=None):
    """The UDP datagram; with src/dst (16 or 4 bytes each) the checksum is filled in, else 0
    (allowed over IPv4 only)."""
    n = 8 + len(payload)
    if n > 0xFFFF:
        raise ValueError("UDP datagram of %d bytes is too long" % n)
    out = bytearray(n)
    pack_udp_header(out, 0, sport, dport, n)
    out[8:] = payload
    if src is not None:
        fill_udp_checksum(out, 0, n, src, dst)
    return bytes(out)


def udp_checksum_ok(src, dst, seg):
    """seg: the whole datagram as received. A zero checksum over IPv4 means "none" and passes."""
    if len(src) == 4 and seg[6] == 0 and seg[7] == 0:
        return True
    return finish(inet_sum(seg, _sum(src, dst, len(seg)))) == 0
