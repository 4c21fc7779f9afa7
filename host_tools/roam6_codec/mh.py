"""Mobility Header messages (RFC 6275 §6.1 and extensions; docs/PROTOCOL-NOTES.md §1.1-1.2, §5-6).

One class per MH type; its fixed fields are declared like the options' (`fmt`, `names`), options
follow in `options`. `decode_mh` validates Header Len and every length and never reads past the
buffer; `Message.encode` lays out options with padding, fills in an authenticator through a
`mac` callback and the checksum when the pseudo-header addresses are given.
"""
import struct
from roam6.wire.errors import DecodeError
from .record import Record
from roam6.wire.checksum import checksum6
from .mhopts import (decode_options, encode_options, IPv4CareofAddress, IPv4HomeAddress, MNIdentifier, MobilityAuth,
                     ReplayProtection)
from roam6.wire.binding import encode_bu
from .consts import (BU_A, BU_H, BU_L, BU_K, BU_M, BU_R, BU_P, BU_F, BU_T, BU_B,  # noqa: F401
                     BA_K, BA_R, BA_P, BA_T, BA_B, HB_U, HB_R, BR_P, BR_G, BR_V)


class Message(Record):
    mh_type = None
    fmt = ""
    fl = 0
    names = ()
    has_options = True

    def _init(self, options):
        self.payload_proto = 59
        self.mh_reserved = 0
        self.options = list(options) if options else []
        self.checksum = 0
        self.raw = None
        self.auto_pad = True  # decoded messages: False, their options list is exact

    def find(self, cls):
        for o in self.options:
            if isinstance(o, cls):
                return o
        return None

    def fixed(self):
        return struct.pack(">" + self.fmt, *[getattr(self, n) for n in self.names])

    def load(self, buf, off, end):
        """Read the fixed fields at buf[off:end]; return the offset where options start."""
        if off + self.fl > end:
            raise DecodeError(1, "%s needs %d bytes of message data, Header Len leaves %d"
                              % (type(self).__name__, self.fl, end - off))
        v = struct.unpack_from(">" + self.fmt, buf, off)
        for i in range(len(self.names)):
            setattr(self, self.names[i], v[i])
        return off + self.fl

    def encode(self, src=None, dst=None, mac=None, checksum=None):
        """The MH bytes. src/dst: pseudo-header addresses for the checksum (else it stays 0, or
        `checksum` is written as given); mac(prefix) -> authenticator when the last option's is None."""
        out = bytearray((self.payload_proto, 0, self.mh_type, self.mh_reserved, 0, 0))
        out.extend(self.fixed())
        if self.has_options:
            pos = encode_options(out, self.options, self.auto_pad)
        else:
            pos = -1
            out.extend(bytes(-len(out) % 8))
        n = len(out) // 8 - 1
        if n > 255:
            raise ValueError("Mobility Header of %d bytes is too long" % len(out))
        out[1] = n
        if pos >= 0:
            if mac is None:
                raise ValueError("the authenticator is None: give encode() a mac function")
            out[pos:pos + 12] = _mac12(mac, out[:pos])
        return _checksummed(out, src, dst, checksum)


def _mac12(mac, prefix):
    """mac(the message up to the authenticator), which must be 12 bytes."""
    a = mac(bytes(prefix))
    if len(a) != 12:
        raise ValueError("mac() returned %d bytes, want 12" % len(a))
    return a


def _checksummed(out, src, dst, checksum):
    """The MH bytes with `checksum` written as given, or computed for src -> dst, or left 0."""
    if checksum is not None:
        struct.pack_into(">H", out, 4, checksum)
    elif src is not None and dst is not None:
        struct.pack_into(">H", out, 4, checksum6(src, dst, 135, out))
    return bytes(out)


class BindingRefreshRequest(Message):
    mh_type = 0
    fmt, fl, names = "H", 2, ("reserved",)

    def __init__(self, options=None, reserved=0):
        self._init(options)
        self.reserved = reserved


class HomeTestInit(Message):
    mh_type = 1
    fmt, fl, names = "H8s", 10, ("reserved", "cookie")

    def __init__(self, cookie=bytes(8), options=None, reserved=0):
        self._init(options)
        self.reserved = reserved
        self.cookie = cookie


class CareofTestInit(HomeTestInit):
    mh_type = 2


class HomeTest(Message):
    mh_type = 3
    fmt, fl, names = "H8s8s", 18, ("nonce_index", "cookie", "token")

    def __init__(self, nonce_index=0, cookie=bytes(8), token=bytes(8), options=None):
        self._init(options)
        self.nonce_index = nonce_index
        self.cookie = cookie
        self.token = token


class CareofTest(HomeTest):
    mh_type = 4


class BindingUpdate(Message):
    mh_type = 5
    fmt, fl, names = "HHH", 6, ("seq", "flags", "lifetime")

    def __init__(self, seq=0, flags=0, lifetime=0, options=None):
        self._init(options)
        self.seq = seq
        self.flags = flags
        self.lifetime = lifetime  # 4-second units

    def encode(self, src=None, dst=None, mac=None, checksum=None):
        """A home registration (MN-ID, [IPv4 HoA], [IPv4 CoA], [Replay], MN-HA auth to compute) is laid out by
        roam6.wire.binding, the code the MN itself sends it with; any other BU by the general rules."""
        h = self._home_registration()
        if h is None or mac is None:
            return Message.encode(self, src, dst, mac, checksum)

        out = encode_bu(self.seq, self.flags, self.lifetime, h[0], h[1], h[2], h[3],
                        lambda prefix: _mac12(mac, prefix), h[4])
        return _checksummed(out, src, dst, checksum)

    def _home_registration(self):
        """(nai, spi, IPv4 CoA or None, timestamp or None, IPv4 HoA or None) when the BU has
        binding.encode_bu's shape."""
        if not self.auto_pad or self.payload_proto != 59 or self.mh_reserved:
            return None
        o = self.options
        if len(o) < 2 or type(o[0]) is not MNIdentifier or o[0].subtype != 1:
            return None
        auth = o[-1]
        if type(auth) is not MobilityAuth or auth.subtype != 1 or auth.auth_data is not None:
            return None
        v4 = ts = v4hoa = None
        i = 1
        if (i < len(o) - 1 and type(o[i]) is IPv4HomeAddress and o[i].prefix_len == 32 and not o[i].p
                and not o[i].reserved and len(o[i].address) == 4):
            v4hoa = bytes(o[i].address)
            i += 1
        if i < len(o) - 1 and type(o[i]) is IPv4CareofAddress and o[i].reserved == 0:
            v4 = bytes(o[i].address)
            i += 1
        if i < len(o) - 1 and type(o[i]) is ReplayProtection:
            ts = o[i].timestamp
            i += 1
        if i != len(o) - 1 or len(o[0].identifier) > 254 or (v4 is not None and len(v4) != 4):
            return None
        return bytes(o[0].identifier), auth.spi, v4, ts, v4hoa


class BindingAck(Message):
    mh_type = 6
    fmt, fl, names = "BBHH", 6, ("status", "flags", "seq", "lifetime")

    def __init__(self, status=0, flags=0, seq=0, lifetime=0, options=None):
        self._init(options)
        self.status = status
        self.flags = flags
        self.seq = seq
        self.lifetime = lifetime


class BindingError(Message):
    mh_type = 7
    fmt, fl, names = "BB16s", 18, ("status", "reserved", "home_address")

    def __init__(self, status=1, home_address=bytes(16), options=None, reserved=0):
        self._init(options)
        self.status = status
        self.reserved = reserved
        self.home_address = home_address


class ExperimentalMH(Message):
    """RFC 5096: Message Data only (decoded data includes any trailing padding)."""
    mh_type = 11
    has_options = False

    def __init__(self, data=b""):
        self._init(None)
        self.data = data

    def fixed(self):
        return bytes(self.data)

    def load(self, buf, off, end):
        self.data = bytes(buf[off:end])
        return end


class UnknownMH(ExperimentalMH):
    """An MH type this codec does not know: the bytes after the checksum, kept as they came."""

    def __init__(self, mh_type=255, data=b""):
        self._init(None)
        self.mh_type = mh_type
        self.data = data


class HomeAgentSwitch(Message):
    """RFC 5142: # of Addresses(1), Reserved(1), addresses (16 each), options."""
    mh_type = 12

    def __init__(self, addresses=(), options=None, reserved=0):
        self._init(options)
        self.reserved = reserved
        self.addresses = list(addresses)

    def fixed(self):
        return bytes((len(self.addresses), self.reserved)) + b"".join(bytes(a) for a in self.addresses)

    def load(self, buf, off, end):
        if off + 2 > end:
            raise DecodeError(1, "HomeAgentSwitch needs 2 bytes of message data")
        n = buf[off]
        self.reserved = buf[off + 1]
        e = off + 2 + 16 * n
        if e > end:
            raise DecodeError(off, "# of Addresses %d needs %d bytes, Header Len leaves %d"
                              % (n, 16 * n, end - off - 2))
        self.addresses = [bytes(buf[i:i + 16]) for i in range(off + 2, e, 16)]
        return e


class Heartbeat(Message):
    """RFC 5847: Reserved(1), flags U=0x02 R=0x01 (1), Sequence Number (32 bits)."""
    mh_type = 13
    fmt, fl, names = "BBI", 6, ("reserved", "flags", "seq")

    def __init__(self, flags=0, seq=0, options=None, reserved=0):
        self._init(options)
        self.reserved = reserved
        self.flags = flags
        self.seq = seq


class BindingRevocation(Message):
    """RFC 5846: B.R. Type (1 indication, 2 acknowledgement), Revocation Trigger (indication) or
    Status (acknowledgement), Sequence #, flags word P G V + reserved."""
    mh_type = 16
    fmt, fl, names = "BBHH", 6, ("br_type", "trigger", "seq", "flags")

    def __init__(self, br_type=1, trigger=0, seq=0, flags=0, options=None):
        self._init(options)
        self.br_type = br_type
        self.trigger = trigger
        self.seq = seq
        self.flags = flags


CLASSES = (BindingRefreshRequest, HomeTestInit, CareofTestInit, HomeTest, CareofTest,
           BindingUpdate, BindingAck, BindingError, ExperimentalMH, HomeAgentSwitch, Heartbeat,
           BindingRevocation)
_BY_TYPE = {}
for _c in CLASSES:
    _BY_TYPE[_c.mh_type] = _c


def decode_mh(buf):
    """The message in buf, which must hold exactly one Mobility Header (Header Len says how long)."""
    n = len(buf)
    if n < 8:
        raise DecodeError(n, "a Mobility Header is at least 8 bytes, got %d" % n)
    total = (buf[1] + 1) * 8
    if total > n:
        raise DecodeError(1, "Header Len %d means %d bytes, only %d are there" % (buf[1], total, n))
    if total < n:
        raise DecodeError(total, "%d bytes follow the Mobility Header (Header Len %d)" % (n - total, buf[1]))
    t = buf[2]
    cls = _BY_TYPE.get(t)
    m = UnknownMH(t) if cls is None else cls()
    m.payload_proto = buf[0]
    m.mh_reserved = buf[3]
    m.checksum = (buf[4] << 8) | buf[5]
    off = m.load(buf, 6, total)
    if m.has_options:
        m.options = decode_options(buf, off, total)
    m.auto_pad = False
    m.raw = bytes(buf[:total])
    return m


def checksum_ok(raw, src, dst):
    """Whether the MH bytes `raw` carry the right checksum for pseudo-header src -> dst."""
    return checksum6(src, dst, 135, raw) == 0
