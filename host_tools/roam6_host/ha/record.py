"""One binding cache entry as a compact, versioned record: what the journal (ha/journal.py) writes
and the replication channel (ha/replica.py) carries. Sans-IO: bytes in, bytes out.

Layout v1 (big-endian, docs/PROTOCOL-NOTES.md §14.1):

    off  size  field
    0    1     version (1)
    1    1     kind: 1 bound, 2 removed
    2    1     flags: bit 0 NAT seen, bit 1 home registration (H)
    3    1     transport: 1 udp4, 2 udp6, 3 ip6
    4    2     sequence number of the last accepted BU
    6    4     granted lifetime, seconds
    10   4     remaining lifetime when written, ms (expiry as remaining time: clocks differ)
    14   8     written at, wall ms (Unix); the reader subtracts the time since then
    22   4     SPI (RFC 4285); 0 for an IPsec device (RFC 4877, ha/ipsecmh.py: found by its NAI)
    26   8     last accepted RFC 4285 timestamp (0: none)
    34   16    home address
    50   16    care-of address (v4-mapped for udp4)
    66   2     peer UDP port (NAT-mapped for udp4; 0 for ip6)
    68   1+n   peer host (text, as the socket reported it)
    ..   1+n   NAI

A removed record carries the same fields (only HoA and SPI matter). Anything else - another
version, a length that does not add up, an unknown transport - is a RecordError.
"""
import struct

VERSION = 1
BOUND, REMOVED = 1, 2
TRANSPORTS = ("udp4", "udp6", "ip6")
_HEAD = struct.Struct(">BBBBHIIQIQ16s16sH")


class RecordError(ValueError):
    pass


class BindingRecord:
    __slots__ = ("kind", "hoa", "coa", "transport", "peer", "nat", "home", "seq", "lifetime",
                 "remaining_ms", "written_ms", "spi", "last_ts", "nai")

    def __init__(self, kind, hoa, coa, transport, peer, nat, home, seq, lifetime, remaining_ms,
                 written_ms, spi, last_ts, nai):
        self.kind, self.hoa, self.coa, self.transport, self.peer = kind, hoa, coa, transport, peer
        self.nat, self.home, self.seq, self.lifetime = nat, home, seq, lifetime
        self.remaining_ms, self.written_ms = remaining_ms, written_ms
        self.spi, self.last_ts, self.nai = spi, last_ts, nai

    def __eq__(self, other):
        return isinstance(other, BindingRecord) and all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __repr__(self):
        return "BindingRecord(%s)" % ", ".join("%s=%r" % (f, getattr(self, f)) for f in self.__slots__)

    def encode(self):
        host = self.peer[0].encode()
        if len(host) > 255 or len(self.nai) > 255:
            raise RecordError("peer host or NAI longer than 255 bytes")
        flags = (1 if self.nat else 0) | (2 if self.home else 0)
        return (_HEAD.pack(VERSION, self.kind, flags, TRANSPORTS.index(self.transport) + 1, self.seq & 0xFFFF,
                           self.lifetime, max(0, min(self.remaining_ms, 0xFFFFFFFF)), self.written_ms, self.spi,
                           self.last_ts, self.hoa, self.coa, self.peer[1])
                + bytes((len(host),)) + host + bytes((len(self.nai),)) + self.nai)

    def remaining_at(self, wall):
        """Lifetime left at wall time `wall` (ms): the time since the record was written is
        subtracted (never less than 0, never added to)."""
        elapsed = wall - self.written_ms
        return self.remaining_ms - min(max(elapsed, 0), self.remaining_ms)


def decode(data):
    """A BindingRecord from bytes (memoryview/bytes); RecordError for anything malformed."""
    data = bytes(data)
    if len(data) < _HEAD.size + 2:
        raise RecordError("record of %d bytes is too short" % len(data))
    (version, kind, flags, transport, seq, lifetime, remaining, written, spi, last_ts, hoa, coa,
     port) = _HEAD.unpack_from(data)
    if version != VERSION:
        raise RecordError("record version %d (this HA reads %d)" % (version, VERSION))
    if kind not in (BOUND, REMOVED) or not 1 <= transport <= len(TRANSPORTS):
        raise RecordError("record kind %d / transport %d unknown" % (kind, transport))
    off = _HEAD.size
    n = data[off]
    host = data[off + 1:off + 1 + n]
    off += 1 + n
    if off >= len(data) or off + 1 + data[off] != len(data):
        raise RecordError("record lengths do not add up")
    nai = data[off + 1:]
    try:
        host = host.decode()
    except UnicodeDecodeError:
        raise RecordError("peer host is not text") from None
    return BindingRecord(kind, hoa, coa, TRANSPORTS[transport - 1], (host, port), bool(flags & 1), bool(flags & 2),
                         seq, lifetime, remaining, written, spi, last_ts, nai)


_TCODE = {"udp4": 1, "udp6": 2, "ip6": 3}
_pack_head = _HEAD.pack
_pack_head_n = struct.Struct(_HEAD.format + "B").pack      # the head and the peer host's length byte
_LEN = [bytes((i,)) for i in range(256)]
_ZERO16 = bytes(16)
_ESP_SPI = 1 << 32      # ha/ipsecmh.PSEUDO_SPI_BASE: an IPsec device's pseudo SPI, written as 0


def encode_binding(b, sa, now, wall, kind=BOUND):
    """record_of(...).encode() in one step (the per-BU path of the journal and the standby)."""
    peer = b.peer
    host = peer[0].encode() if peer else b""
    if sa is not None:
        nai, last_ts = sa.nai, sa.last_ts
    else:
        nai, last_ts = b"", 0
    remaining = b.expires - now
    if remaining < 0:
        remaining = 0
    elif remaining > 0xFFFFFFFF:
        remaining = 0xFFFFFFFF
    spi = b.spi
    if spi >= _ESP_SPI:
        spi = 0
    return b"".join((_pack_head_n(VERSION, kind, (1 if b.nat else 0) | (2 if b.home else 0), _TCODE.get(b.transport, 1),
                                  b.seq & 0xFFFF, b.lifetime, remaining, wall, spi, last_ts,
                                  b.hoa, b.coa or _ZERO16, peer[1] if peer else 0, len(host)),
                     host, _LEN[len(nai)], nai))


def record_of(binding, sa, now, wall, kind=BOUND):
    """The record of a cache Binding (its SA gives NAI and last timestamp) at `now`/`wall`."""
    return BindingRecord(kind, binding.hoa, binding.coa or bytes(16), binding.transport or "udp4",
                         binding.peer or ("", 0), binding.nat, binding.home, binding.seq, binding.lifetime,
                         max(0, binding.expires - now), wall, binding.spi if binding.spi < _ESP_SPI else 0,
                         sa.last_ts if sa is not None else 0, sa.nai if sa is not None else b"")
