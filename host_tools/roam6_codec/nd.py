"""Neighbor Discovery parts Mobile IPv6 uses (RFC 4861, RFC 6275 §7; docs/PROTOCOL-NOTES.md §1.9): the
ICMPv6 message base class, Router Advertisement (H flag) / Solicitation, and the ND options:
Prefix Information (R flag), MTU, Advertisement Interval, Home Agent Information, link-layer
addresses; unknown ones kept. ND option Length counts 8-octet units and is never 0."""
import struct
from roam6.wire.errors import DecodeError
from roam6.wire.checksum import checksum6
from .mhopts import Option, UnknownOption
from .record import Record

RA_M = 0x80
RA_O = 0x40
RA_H = 0x20  # the router is a home agent
PIO_L = 0x80
PIO_A = 0x40
PIO_R = 0x20  # Prefix holds the router's whole address


class LinkLayerAddress(Option):
    """Source (1) or Target (2) link-layer address."""
    tail = "address"

    def __init__(self, otype=1, address=b""):
        self.otype = otype
        self.address = address


class PrefixInformation(Option):
    otype = 3
    fmt, fl = "BBIII16s", 30
    names = ("prefix_len", "flags", "valid_lifetime", "preferred_lifetime", "reserved", "prefix")

    def __init__(self, prefix_len=64, flags=PIO_L | PIO_A, valid_lifetime=86400, preferred_lifetime=14400,
                 prefix=bytes(16), reserved=0):
        self.prefix_len = prefix_len
        self.flags = flags
        self.valid_lifetime = valid_lifetime
        self.preferred_lifetime = preferred_lifetime
        self.reserved = reserved
        self.prefix = prefix


class MTUOption(Option):
    otype = 5
    fmt, fl, names = "HI", 6, ("reserved", "mtu")

    def __init__(self, mtu=1500, reserved=0):
        self.reserved = reserved
        self.mtu = mtu


class AdvInterval(Option):
    """Advertisement Interval (ms)."""
    otype = 7
    fmt, fl, names = "HI", 6, ("reserved", "interval")

    def __init__(self, interval=0, reserved=0):
        self.reserved = reserved
        self.interval = interval


class HAInformation(Option):
    """Home Agent Information: preference, lifetime (s)."""
    otype = 8
    fmt, fl, names = "HHH", 6, ("reserved", "preference", "lifetime")

    def __init__(self, preference=0, lifetime=1800, reserved=0):
        self.reserved = reserved
        self.preference = preference
        self.lifetime = lifetime


class UnknownNDOption(UnknownOption):
    """An ND option type this codec does not know: kept and re-emitted as it came (the mobility
    option's rule, its own class so JSON names which kind it was)."""


OPTION_CLASSES = (PrefixInformation, MTUOption, AdvInterval, HAInformation)
_BY_TYPE = {1: LinkLayerAddress, 2: LinkLayerAddress}
for _c in OPTION_CLASSES:
    _BY_TYPE[_c.otype] = _c


def decode_nd_options(buf, off, end):
    opts = []
    while off < end:
        if off + 2 > end:
            raise DecodeError(off, "ND option truncated")
        t, n = buf[off], buf[off + 1]
        if n == 0:
            raise DecodeError(off + 1, "ND option type %d has Length 0" % t)
        e = off + 8 * n
        if e > end:
            raise DecodeError(off + 1, "ND option type %d: Length %d runs past the message" % (t, n))
        cls = _BY_TYPE.get(t)
        if cls is None:
            o = UnknownNDOption(t, bytes(buf[off + 2:e]))
        else:
            o = cls.parse(buf, off + 2, e)
            if cls is LinkLayerAddress:
                o.otype = t
        opts.append(o)
        off = e
    return opts


def encode_nd_options(out, opts):
    for o in opts:
        body = o.body()
        body += bytes(-(len(body) + 2) % 8)
        out.append(o.otype)
        out.append((len(body) + 2) // 8)
        out.extend(body)


class ICMPv6Message(Record):
    """Base of ICMPv6 messages: Type, Code, Checksum, then `fmt`/`names` fields, then either ND
    options (has_options) or a `tail` of bytes."""
    icmp_type = None
    fmt = ""
    fl = 0
    names = ()
    tail = None
    has_options = False

    def _init(self, options=None):
        self.code = 0
        self.checksum = 0
        self.options = list(options) if options else []
        self.raw = None

    def fixed(self):
        b = struct.pack(">" + self.fmt, *[getattr(self, n) for n in self.names])
        return b + bytes(getattr(self, self.tail)) if self.tail else b

    def load(self, buf, off, end):
        if off + self.fl > end:
            raise DecodeError(end, "%s needs %d bytes after the checksum, got %d"
                              % (type(self).__name__, self.fl, end - off))
        v = struct.unpack_from(">" + self.fmt, buf, off)
        for i in range(len(self.names)):
            setattr(self, self.names[i], v[i])
        off += self.fl
        if self.tail:
            setattr(self, self.tail, bytes(buf[off:end]))
            return end
        return off

    def find(self, cls):
        for o in self.options:
            if isinstance(o, cls):
                return o
        return None

    def encode(self, src=None, dst=None, checksum=None):
        """The ICMPv6 bytes; checksum filled in when src/dst are given (or written as given)."""
        out = bytearray((self.icmp_type, self.code, 0, 0))
        out.extend(self.fixed())
        if self.has_options:
            encode_nd_options(out, self.options)
        if checksum is not None:
            struct.pack_into(">H", out, 2, checksum)
        elif src is not None and dst is not None:
            struct.pack_into(">H", out, 2, checksum6(src, dst, 58, out))
        return bytes(out)


class RouterSolicitation(ICMPv6Message):
    icmp_type = 133
    fmt, fl, names = "I", 4, ("reserved",)
    has_options = True

    def __init__(self, options=None, reserved=0):
        self._init(options)
        self.reserved = reserved


class RouterAdvertisement(ICMPv6Message):
    icmp_type = 134
    fmt, fl = "BBHII", 12
    names = ("cur_hop_limit", "flags", "router_lifetime", "reachable_time", "retrans_timer")
    has_options = True

    def __init__(self, cur_hop_limit=64, flags=0, router_lifetime=1800, reachable_time=0,
                 retrans_timer=0, options=None):
        self._init(options)
        self.cur_hop_limit = cur_hop_limit
        self.flags = flags
        self.router_lifetime = router_lifetime
        self.reachable_time = reachable_time
        self.retrans_timer = retrans_timer
