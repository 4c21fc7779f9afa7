"""ICMPv6 messages of Mobile IPv6 (RFC 6275 §6.5-6.8, docs/PROTOCOL-NOTES.md §1.8) and echo (RFC 4443).

`decode_icmp6(buf)` returns one of the classes here or in `nd` (RA/RS), or UnknownICMPv6.
"""
from roam6.wire.errors import DecodeError
from roam6.wire.checksum import checksum6
from .nd import ICMPv6Message, RouterSolicitation, RouterAdvertisement, decode_nd_options  # noqa: F401

DHAAD_R = 0x8000  # NEMO mobile router support (top bit of Reserved in 144/145)
MPA_M = 0x8000
MPA_O = 0x4000


class EchoRequest(ICMPv6Message):
    icmp_type = 128
    fmt, fl, names = "HH", 4, ("ident", "seq")
    tail = "data"

    def __init__(self, ident=0, seq=0, data=b""):
        self._init()
        self.ident = ident
        self.seq = seq
        self.data = data


class EchoReply(EchoRequest):
    icmp_type = 129


class DHAADRequest(ICMPv6Message):
    icmp_type = 144
    fmt, fl, names = "HH", 4, ("ident", "reserved")

    def __init__(self, ident=0, reserved=0):
        self._init()
        self.ident = ident
        self.reserved = reserved


class DHAADReply(ICMPv6Message):
    icmp_type = 145
    fmt, fl, names = "HH", 4, ("ident", "reserved")

    def __init__(self, ident=0, addresses=(), reserved=0):
        self._init()
        self.ident = ident
        self.reserved = reserved
        self.addresses = list(addresses)

    def fixed(self):
        return ICMPv6Message.fixed(self) + b"".join(bytes(a) for a in self.addresses)

    def load(self, buf, off, end):
        off = ICMPv6Message.load(self, buf, off, end)
        if (end - off) % 16:
            raise DecodeError(off, "DHAAD Reply: %d bytes of addresses is not a multiple of 16" % (end - off))
        self.addresses = [bytes(buf[i:i + 16]) for i in range(off, end, 16)]
        return end


class MobilePrefixSolicitation(ICMPv6Message):
    icmp_type = 146
    fmt, fl, names = "HH", 4, ("ident", "reserved")
    has_options = True

    def __init__(self, ident=0, options=None, reserved=0):
        self._init(options)
        self.ident = ident
        self.reserved = reserved


class MobilePrefixAdvertisement(ICMPv6Message):
    """flags: M 0x8000, O 0x4000 in the 16-bit word after the Identifier."""
    icmp_type = 147
    fmt, fl, names = "HH", 4, ("ident", "flags")
    has_options = True

    def __init__(self, ident=0, flags=0, options=None):
        self._init(options)
        self.ident = ident
        self.flags = flags


class UnknownICMPv6(ICMPv6Message):
    tail = "data"

    def __init__(self, icmp_type=255, data=b""):
        self._init()
        self.icmp_type = icmp_type
        self.data = data


CLASSES = (EchoRequest, EchoReply, DHAADRequest, DHAADReply, MobilePrefixSolicitation,
           MobilePrefixAdvertisement, RouterSolicitation, RouterAdvertisement)
_BY_TYPE = {}
for _c in CLASSES:
    _BY_TYPE[_c.icmp_type] = _c


def decode_icmp6(buf):
    n = len(buf)
    if n < 4:
        raise DecodeError(n, "an ICMPv6 message is at least 4 bytes, got %d" % n)
    t = buf[0]
    cls = _BY_TYPE.get(t)
    m = UnknownICMPv6(t) if cls is None else cls()
    m.code = buf[1]
    m.checksum = (buf[2] << 8) | buf[3]
    off = m.load(buf, 4, n)
    if m.has_options:
        m.options = decode_nd_options(buf, off, n)
    m.raw = bytes(buf)
    return m


def checksum_ok(raw, src, dst):
    return checksum6(src, dst, 58, raw) == 0
