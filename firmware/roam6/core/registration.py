"""Home registration on the wire: BU bytes out, BA/BRR/BE bytes in (sans-IO glue around bul).

`bul.HomeBinding` holds the rules; this module only turns its BU requests into Mobility Header
packets (CONTRACTS.md §11, PROTOCOLS.md §3/§4/§11) and checks what the HA answers before the
rules see it: MH checksum, the RFC 4285 MN-HA authenticator, the SPI. It is fed the inner IPv6
packets the transport received (`receive_packet`) and hands back inner IPv6 packets to send.

What the MN sends (udp4/udp6): IPv6(src HoA, dst HA) | MH BU, flags A|H|F, options MN-ID,
IPv4 CoA (udp4), Replay Protection (timestamps on), MN-HA auth (last), laid out by the codec's
compact form for these messages (roam6.wire.binding). The MAC's CoA is the
IPv4-mapped IPv4 CoA for udp4 and the IPv6 CoA itself otherwise (the HoA for deregistration).
ip6: IPv6(src CoA, dst HA) + Home Address option | MH BU, flags A|H.
"""
import struct

from roam6.compat import const
from roam6.crypto import mnha_auth_data
from roam6.wire.binding import decode_ba, encode_bu, ipv6_packet, mac_coa  # noqa: F401
from roam6.wire.checksum import checksum6

from .bul import HomeBinding

# The MN's BU and BA in the codec's compact form (roam6.wire.binding): the general classes of
# wire.mh/mhopts would cost ~30 KB of heap on a 64 KB device.
_NH_MH = const(135)
_MH_BRR = const(0)
_MH_BA = const(6)
_MH_BE = const(7)
_BU_A = const(0x8000)
_BU_H = const(0x4000)
_BU_F = const(0x0100)


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
