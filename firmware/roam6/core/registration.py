"""Home registration on the wire: BU bytes out, BA/BRR/BE bytes in (sans-IO glue around bul).

`bul.HomeBinding` holds the rules; this module only turns its BU requests into Mobility Header
packets (CONTRACTS.md §11, PROTOCOLS.md §3/§4/§11) and checks what the HA answers before the
rules see it: MH checksum, the RFC 4285 MN-HA authenticator, the SPI. It is fed the inner IPv6
packets the transport received (`receive_packet`) and hands back inner IPv6 packets to send.

What the MN sends (udp4/udp6): IPv6(src HoA, dst HA) | MH BU, flags A|H|F, options MN-ID,
IPv4 CoA (udp4), Replay Protection (timestamps on), MN-HA auth (last). The MAC's CoA is the
IPv4-mapped IPv4 CoA for udp4 and the IPv6 CoA itself otherwise (the HoA for deregistration).
ip6: IPv6(src CoA, dst HA) + Home Address option | MH BU, flags A|H.
"""
import struct

from roam6.compat import const
from roam6.crypto import mnha_auth_data
from roam6.wire.checksum import checksum6

from .bul import HomeBinding

# The MN sends one message type and reads three, so it packs and walks them with struct right
# here instead of importing the whole codec (wire.mh/mhopts: ~30 KB of heap on a 64 KB device).
# tests/firmware/test_registration.py proves the bytes identical to roam6.wire's encoder and
# checks the decoder against it.
_NH_MH = const(135)
_MH_BRR = const(0)
_MH_BA = const(6)
_MH_BE = const(7)
_BU_A = const(0x8000)
_BU_H = const(0x4000)
_BU_F = const(0x0100)
_MO_BRA = const(2)
_MO_MN_ID = const(8)
_MO_AUTH = const(9)
_MO_REPLAY = const(10)
_MO_NAT = const(31)
_MO_V4COA = const(32)
V4MAPPED = b"\0\0\0\0\0\0\0\0\0\0\xff\xff"


def mac_coa(coa):
    """The care-of address the RFC 4285 MAC covers (PROTOCOLS.md §11.1)."""
    if len(coa) == 4:
        return V4MAPPED + bytes(coa)
    return bytes(coa)


def _pad(out, n):
    """Pad1 or PadN of n bytes (RFC 6275 §6.2.2)."""
    if n == 1:
        out.append(0)
    elif n:
        out.append(1)
        out.append(n - 2)
        out.extend(bytes(n - 2))


def _align(out, x, y):
    """Pad so the next option's Type byte sits at an offset o with o % x == y."""
    _pad(out, (y - len(out)) % x)


def encode_bu(seq, flags, lifetime_units, nai, spi, v4coa, timestamp, mac):
    """The BU's Mobility Header (checksum 0): MN-ID, [IPv4 CoA], [Replay], MN-HA auth last,
    laid out by the alignment rules (PROTOCOLS.md §1.6). mac(prefix) -> 12 bytes."""
    out = bytearray(12)
    out[0] = 59
    out[2] = 5
    struct.pack_into(">HHH", out, 6, seq, flags, lifetime_units)
    out.append(_MO_MN_ID)
    out.append(1 + len(nai))
    out.append(1)
    out.extend(nai)
    if v4coa is not None:
        _align(out, 4, 0)
        out.extend(b"\x20\x06\x00\x00")
        out.extend(v4coa)
    if timestamp is not None:
        _align(out, 8, 2)
        out.append(_MO_REPLAY)
        out.append(8)
        out.extend(struct.pack(">Q", timestamp))
    _align(out, 8, 5)                        # 4n+1, and ending the message on 8 bytes
    out.append(_MO_AUTH)
    out.append(17)
    out.append(1)
    out.extend(struct.pack(">I", spi))
    out[1] = (len(out) + 12) // 8 - 1
    out.extend(mac(out))
    return out


def ipv6_packet(src, dst, nh, payload, hao=None):
    """IPv6 header (+ Destination Options with the Home Address option) + payload."""
    ext = 24 if hao is not None else 0
    out = bytearray(40 + ext + len(payload))
    struct.pack_into(">IHBB16s16s", out, 0, 0x60000000, ext + len(payload), 60 if hao else nh, 64, src, dst)
    if hao is not None:
        out[40:48] = bytes((nh, 2, 1, 2, 0, 0, 0xC9, 16))
        out[48:64] = hao
    out[40 + ext:] = payload
    return out


def decode_ba(raw):
    """[status, seq, lifetime, refresh advice, timestamp, NAT refresh, SPI, MH offset of the MN-HA
    option] of a BA (None for options absent, -1 offset), or None when a length is wrong."""
    n = len(raw)
    if n < 12 or (raw[1] + 1) * 8 != n or raw[2] != _MH_BA:
        return None
    b = [raw[6], (raw[8] << 8) | raw[9], (raw[10] << 8) | raw[11], None, None, None, None, -1]
    i = 12
    while i < n:
        t = raw[i]
        if t == 0:
            i += 1
            continue
        if i + 2 > n:
            return None
        ln = raw[i + 1]
        e = i + 2 + ln
        if e > n:
            return None
        if t == _MO_BRA and ln == 2:
            b[3] = (raw[i + 2] << 8) | raw[i + 3]
        elif t == _MO_REPLAY and ln == 8:
            b[4] = struct.unpack_from(">Q", raw, i + 2)[0]
        elif t == _MO_NAT and ln == 6:
            b[5] = struct.unpack_from(">I", raw, i + 4)[0]
        elif t == _MO_AUTH and ln == 17 and raw[i + 2] == 1:
            b[6] = struct.unpack_from(">I", raw, i + 3)[0]
            b[7] = i
        i = e
    return b


class Registration:
    """The MN's home registration: a HomeBinding plus its BU/BA wire format and MN-HA security."""

    def __init__(self, nai, spi, key, hoa, ha, lifetime_s=600, timestamps=True, seq=None,
                 ntp_offset_ms=0):
        self.nai = bytes(nai)
        self.spi = spi
        self.key = bytes(key)
        self.hoa = bytes(hoa)
        self.ha = bytes(ha)
        self.bul = HomeBinding(lifetime_s, timestamps, seq, ntp_offset_ms, self.hoa)
        self.transport = None
        self.auth_coa = None          # the MAC's CoA for the current attempt
        self.rejected = 0             # BAs dropped: bad checksum, MAC, SPI, unexpected
        self.last_ba = None           # the last BA message accepted (for the event log)

    # ---- inputs (the rest -- detach, timers, events, state -- go to self.bul directly) ---------
    def move(self, now, coa, transport):
        self.transport = transport
        self.auth_coa = mac_coa(coa)
        self.bul.move(now, bytes(coa))

    def home(self, now):
        self.auth_coa = self.hoa
        self.bul.home(now)

    # ---- BUs out ------------------------------------------------------------------------------
    def packets_to_send(self):
        """[(inner IPv6 packet bytes, BURequest)] for the BUs the rules asked for."""
        out = []
        for req in self.bul.bu_to_send():
            out.append((self.build_bu(req), req))
        return out

    def build_bu(self, req):
        flags = _BU_A | _BU_H
        udp = self.transport != "ip6" or req.dereg
        if udp:
            flags |= _BU_F
        key, coa, hoa = self.key, mac_coa(req.coa), self.hoa
        mh = encode_bu(req.seq, flags, req.lifetime_units, self.nai, self.spi,
                       bytes(req.coa) if len(req.coa) == 4 else None, req.timestamp,
                       lambda prefix: mnha_auth_data(key, coa, hoa, prefix))
        struct.pack_into(">H", mh, 4, checksum6(hoa, self.ha, _NH_MH, mh))
        if udp:
            return ipv6_packet(hoa, self.ha, _NH_MH, mh)
        return ipv6_packet(bytes(req.coa), self.ha, _NH_MH, mh, hao=hoa)

    # ---- what the HA sends ------------------------------------------------------------------
    def receive_packet(self, now, pkt):
        """An inner IPv6 packet from the HA holding a Mobility Header (no extension headers: the
        UDP transports). Returns the kind handled ('ba', 'brr', 'be') or None when it was
        dropped. Never raises on bad input."""
        n = len(pkt) - 40
        if n < 8 or pkt[6] != _NH_MH or ((pkt[4] << 8) | pkt[5]) != n:
            return None
        return self.receive_mh(now, memoryview(pkt)[40:], pkt[8:24], pkt[24:40])

    def receive_mh(self, now, raw, src, dst):
        """A Mobility Header; src/dst: its checksum's pseudo-header addresses (for a BA with a type
        2 routing header, dst is the HoA from it). Same results as receive_packet."""
        n = len(raw)
        if (n < 8 or bytes(src) != self.ha or (raw[1] + 1) * 8 != n
                or checksum6(self.ha, dst, _NH_MH, raw) != 0):
            self.rejected += 1
            return None
        t = raw[2]
        if t == _MH_BA:
            return "ba" if self._ba(now, raw) else None
        if t == _MH_BRR or (t == _MH_BE and n >= 24 and bytes(raw[8:24]) == self.hoa):
            self.bul.lost(now)
            return "brr" if t == _MH_BRR else "be"
        return None

    def _ba(self, now, raw):
        ba = decode_ba(raw)
        off = ba[7] if ba is not None else -1
        if off < 0 or ba[6] != self.spi or off + 19 != len(raw):
            self.rejected += 1        # no MN-HA option of ours, or not last and ending the message
            return False
        prefix = bytearray(raw[:off + 7])
        prefix[4] = prefix[5] = 0
        if mnha_auth_data(self.key, self.auth_coa, self.hoa, prefix) != bytes(raw[off + 7:off + 19]):
            self.rejected += 1
            return False
        if self.bul.receive_ba(now, ba[0], ba[1], ba[2], ba[3], ba[4], ba[5]):
            self.last_ba = ba
            return True
        self.rejected += 1
        return False
