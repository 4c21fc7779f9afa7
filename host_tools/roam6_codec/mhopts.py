"""Mobility options (RFC 6275 §6.2 and extensions; docs/PROTOCOL-NOTES.md §1.6, §3-6).

Each option class describes its body declaratively (struct format `fmt` of the fixed part, the
attribute `names` it packs, an optional variable-length `tail` attribute, alignment `al` = (x, y)
for "xn+y"); `Option` does the rest. Decoding checks every length against the option's layout and
the end of the Mobility Header; anything wrong raises DecodeError.
"""
import struct
from roam6.wire.binding import pad
from roam6.wire.errors import DecodeError
from .record import Record


class Option(Record):
    otype = None
    al = None  # alignment (x, y): the Type byte sits at an MH offset o with o % x == y
    fmt = ""
    fl = 0  # bytes packed by fmt
    names = ()
    tail = None

    def vals(self):
        return [getattr(self, n) for n in self.names]

    def load(self, vals):
        for i in range(len(self.names)):
            setattr(self, self.names[i], vals[i])

    def body(self):
        b = struct.pack(">" + self.fmt, *self.vals()) if self.fmt else b""
        if self.tail:
            t = getattr(self, self.tail)
            b += bytes(12) if t is None else bytes(t)  # None: an authenticator still to compute
        return b

    @classmethod
    def parse(cls, buf, s, e):
        n = e - s
        if n < cls.fl or (n != cls.fl and not cls.tail):
            raise DecodeError(s - 1, "%s option has Length %d, want %s%d"
                              % (cls.__name__, n, "at least " if cls.tail else "", cls.fl))
        o = cls()
        if cls.fmt:
            o.load(struct.unpack_from(">" + cls.fmt, buf, s))
        if cls.tail:
            setattr(o, cls.tail, bytes(buf[s + cls.fl:e]))
        return o


class Pad1(Option):
    otype = 0


class PadN(Option):
    """Inserts n >= 2 bytes in all; `data` is the option data (zeros when sent)."""
    otype = 1
    tail = "data"

    def __init__(self, n=2, data=None):
        self.data = bytes(n - 2) if data is None else data


class BindingRefreshAdvice(Option):
    otype = 2
    al = (2, 0)
    fmt, fl, names = "H", 2, ("interval",)

    def __init__(self, interval=0):
        self.interval = interval


class AlternateCoA(Option):
    otype = 3
    al = (8, 6)
    fmt, fl, names = "16s", 16, ("address",)

    def __init__(self, address=bytes(16)):
        self.address = address


class NonceIndices(Option):
    otype = 4
    al = (2, 0)
    fmt, fl, names = "HH", 4, ("home", "careof")

    def __init__(self, home=0, careof=0):
        self.home = home
        self.careof = careof


class BindingAuthData(Option):
    """authenticator None: computed by the `mac` function given to Message.encode."""
    otype = 5
    al = (8, 2)
    tail = "authenticator"

    def __init__(self, authenticator=None):
        self.authenticator = authenticator


class MobileNetworkPrefix(Option):
    otype = 6
    al = (8, 4)
    fmt, fl, names = "BB16s", 18, ("reserved", "prefix_len", "prefix")

    def __init__(self, prefix_len=64, prefix=bytes(16), reserved=0):
        self.reserved = reserved
        self.prefix_len = prefix_len
        self.prefix = prefix


class MNIdentifier(Option):
    otype = 8
    fmt, fl, names = "B", 1, ("subtype",)
    tail = "identifier"

    def __init__(self, subtype=1, identifier=b""):
        self.subtype = subtype
        self.identifier = identifier


class MobilityAuth(Option):
    """auth_data None: computed by the `mac` function given to Message.encode."""
    otype = 9
    al = (4, 1)
    fmt, fl, names = "BI", 5, ("subtype", "spi")
    tail = "auth_data"

    def __init__(self, subtype=1, spi=0, auth_data=None):
        self.subtype = subtype
        self.spi = spi
        self.auth_data = auth_data


class ReplayProtection(Option):
    otype = 10
    al = (8, 2)
    fmt, fl, names = "Q", 8, ("timestamp",)

    def __init__(self, timestamp=0):
        self.timestamp = timestamp


class DNSUpdate(Option):
    otype = 17
    fmt, fl, names = "BB", 2, ("status", "flags")
    tail = "fqdn"

    def __init__(self, status=0, flags=0, fqdn=b""):
        self.status = status
        self.flags = flags
        self.fqdn = fqdn


class ExperimentalOption(Option):
    otype = 18
    tail = "data"

    def __init__(self, data=b""):
        self.data = data


class VendorSpecific(Option):
    otype = 19
    al = (4, 2)
    fmt, fl, names = "IB", 5, ("vendor_id", "subtype")
    tail = "data"

    def __init__(self, vendor_id=0, subtype=0, data=b""):
        self.vendor_id = vendor_id
        self.subtype = subtype
        self.data = data


class RestartCounter(Option):
    otype = 28
    al = (4, 2)
    fmt, fl, names = "I", 4, ("counter",)

    def __init__(self, counter=0):
        self.counter = counter


class IPv4HomeAddress(Option):
    """RFC 5555: Prefix-len(6 bits) P(1 bit) Reserved(9 bits), IPv4 home address."""
    otype = 29
    al = (4, 0)
    fmt, fl = "H4s", 6

    def __init__(self, prefix_len=32, p=0, address=bytes(4), reserved=0):
        self.prefix_len = prefix_len
        self.p = p
        self.address = address
        self.reserved = reserved

    def vals(self):
        return ((self.prefix_len << 10) | (self.p << 9) | self.reserved, self.address)

    def load(self, v):
        w = v[0]
        self.prefix_len, self.p, self.reserved, self.address = w >> 10, (w >> 9) & 1, w & 0x1FF, v[1]


class IPv4AddressAck(Option):
    """RFC 5555: Status(1), Pref-len(6 bits) Reserved(2 bits), IPv4 home address."""
    otype = 30
    al = (4, 0)
    fmt, fl = "BB4s", 6

    def __init__(self, status=0, prefix_len=32, address=bytes(4), reserved=0):
        self.status = status
        self.prefix_len = prefix_len
        self.address = address
        self.reserved = reserved

    def vals(self):
        return (self.status, (self.prefix_len << 2) | self.reserved, self.address)

    def load(self, v):
        self.status, self.prefix_len, self.reserved, self.address = v[0], v[1] >> 2, v[1] & 3, v[2]


class NATDetection(Option):
    """RFC 5555: F (force UDP) + Reserved(15 bits), Refresh time (s)."""
    otype = 31
    al = (4, 0)
    fmt, fl = "HI", 6

    def __init__(self, force=False, refresh=0, reserved=0):
        self.force = force
        self.refresh = refresh
        self.reserved = reserved

    def vals(self):
        return ((0x8000 if self.force else 0) | self.reserved, self.refresh)

    def load(self, v):
        self.force, self.reserved, self.refresh = bool(v[0] & 0x8000), v[0] & 0x7FFF, v[1]


class IPv4CareofAddress(Option):
    otype = 32
    al = (4, 0)
    fmt, fl, names = "H4s", 6, ("reserved", "address")

    def __init__(self, address=bytes(4), reserved=0):
        self.address = address
        self.reserved = reserved


class UnknownOption(Option):
    """An option type this codec does not know: kept and re-emitted as it came."""
    tail = "data"

    def __init__(self, otype=255, data=b""):
        self.otype = otype
        self.data = data


CLASSES = (PadN, BindingRefreshAdvice, AlternateCoA, NonceIndices, BindingAuthData,
           MobileNetworkPrefix, MNIdentifier, MobilityAuth, ReplayProtection, DNSUpdate,
           ExperimentalOption, VendorSpecific, RestartCounter, IPv4HomeAddress, IPv4AddressAck,
           NATDetection, IPv4CareofAddress)
_BY_TYPE = {}
for _c in CLASSES:
    _BY_TYPE[_c.otype] = _c


def decode_options(buf, off, end):
    """The options in buf[off:end] (end = end of the Mobility Header), padding included."""
    opts = []
    while off < end:
        t = buf[off]
        if t == 0:
            opts.append(Pad1())
            off += 1
            continue
        if off + 2 > end:
            raise DecodeError(off, "mobility option type %d has no room for its Length byte" % t)
        e = off + 2 + buf[off + 1]
        if e > end:
            raise DecodeError(off + 1, "mobility option type %d: Length %d runs %d bytes past the "
                              "end of the Mobility Header" % (t, buf[off + 1], e - end))
        cls = _BY_TYPE.get(t)
        opts.append(UnknownOption(t, bytes(buf[off + 2:e])) if cls is None else cls.parse(buf, off + 2, e))
        off = e
    return opts


_pad = pad      # one padding rule for the whole codec (roam6.wire.binding)


def _last(o):
    return isinstance(o, (BindingAuthData, MobilityAuth))


def encode_options(out, opts, auto=True):
    """Append opts to bytearray out (len(out) = their MH offset), then pad the MH to 8 bytes.

    auto: insert padding by each option's alignment rule and move Binding Authorization Data /
    Mobility Message Authentication to the end, placed to end on an 8-byte boundary (nothing may
    follow them). Not auto: emit the list exactly (a decoded message re-encodes to its bytes).
    Returns the MH offset of an authenticator still to compute (last option's tail None), or -1.
    """
    if auto:
        opts = [o for o in opts if not _last(o)] + [o for o in opts if _last(o)]
    pos = -1
    k = len(opts)
    for i in range(k):
        o = opts[i]
        if isinstance(o, Pad1):
            out.append(0)
            continue
        body = o.body()
        if len(body) > 255:
            raise ValueError("%s option is %d bytes long, the most is 255" % (type(o).__name__, len(body)))
        if auto and o.al:
            x, y = (8, -(len(body) + 2) % 8) if (i == k - 1 and _last(o)) else o.al
            _pad(out, (y - len(out)) % x)
        out.append(o.otype)
        out.append(len(body))
        out.extend(body)
        pos = len(out) - 12 if (o.tail and getattr(o, o.tail) is None) else -1
    _pad(out, -len(out) % 8)
    return pos
