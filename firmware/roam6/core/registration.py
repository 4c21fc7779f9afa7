"""Home registration on the wire: BU bytes out, BA/BRR/BE bytes in (sans-IO glue around bul).

`bul.HomeBinding` holds the rules; this module turns its BU requests into Mobility Header packets
(docs/CONTRACTS.md §11, docs/PROTOCOL-NOTES.md §3/§4/§11) and checks what the HA answers before the
rules see it: MH checksum, the RFC 4285 MN-HA authenticator, the SPI.

Registration is a HomeBinding (one object: a class of its own would cost a second instance and a
method per delegated call on a 32 KB heap), so the driver has one handle and never reaches past it.
Inputs (`now`: int ms, always last): `move(coa, transport, now)`, `home(now)`, `detach(now)`,
`receive(pkt, now)` (an inner IPv6 packet from the HA), `receive_mh(mh, src, dst, now)` (a
Mobility Header read elsewhere: ip6's BA with a type 2 routing header), `handle_timer(now)`.
Outputs: `state_to_save()` (write it before sending), `datagrams_to_send(now)` -> [(inner IPv6
packet, the HA's address)], `next_event()` (bul's event table, plus ("ipv4", status, address)
below), `get_timer()`; `bound` and `expiry()` answer whether and until when the HA holds our
binding.

IPv4 home address (RFC 5555 §3.1.1, §3.2.1): `roam6.core.v4ack.enable(reg, address)` (0.0.0.0
asks the HA for one) sets `v4hoa`, which every BU then carries (so both home addresses move
together; a deregistration ends both), and reads the BA's IPv4 Address Acknowledgement: event
("ipv4", status, address). All of that code is in v4ack, loaded only by such a node.

What the MN sends (udp4/udp6): IPv6(src HoA, dst HA) | MH BU, flags A|H|F, options MN-ID,
IPv4 CoA (udp4), Replay Protection (timestamps on), MN-HA auth (last), laid out by the codec's
compact form for these messages (roam6.wire.binding). The MAC's CoA is the
IPv4-mapped IPv4 CoA for udp4 and the IPv6 CoA itself otherwise (the HoA for deregistration).
ip6: IPv6(src CoA, dst HA) + Home Address option | MH BU, flags A|H.
"""

from roam6.compat import const
from roam6.crypto import mnha_auth_data
from roam6.wire.binding import decode_ba, encode_bu, ipv6_packet, mac_coa  # noqa: F401
from roam6.wire.checksum import checksum6

from .bul import HomeBinding

# The MN's BU and BA in the codec's compact form (roam6.wire.binding): the general classes of
# the host's codec would cost ~30 KB of heap on a 64 KB device.
_NH_MH = const(135)
_MH_BRR = const(0)
_MH_BA = const(6)
_MH_BE = const(7)
_BU_A = const(0x8000)
_BU_H = const(0x4000)
_BU_F = const(0x0100)


class Registration(HomeBinding):
    """The MN's home registration: the HomeBinding's rules (inherited: one object on the heap)
    plus its BU/BA wire format and MN-HA security."""

    def __init__(self, nai, spi, key, hoa, ha, lifetime_s=600, timestamps=True, seq=None,
                 ntp_offset_ms=0):
        hoa = bytes(hoa)
        HomeBinding.__init__(self, lifetime_s, timestamps, seq, ntp_offset_ms, hoa)
        self.nai = bytes(nai)
        self.spi = spi
        self.key = bytes(key)
        self.ha = bytes(ha)
        self.transport = None
        self.rejected = 0             # BAs dropped: bad checksum, MAC, SPI, unexpected

    # ---- decisions (the rest -- home, detach, handle_timer -- are HomeBinding's) ---------------
    def move(self, coa, transport, now):
        self.transport = transport
        HomeBinding.move(self, bytes(coa), now)

    # ---- BUs out (state_to_save, next_event, get_timer, bound, expiry: HomeBinding's) ----------
    def datagrams_to_send(self, now):
        """[(inner IPv6 packet, HA address)] for the BUs the rules asked for, in order."""
        reqs = self.bu_to_send()
        if not reqs:
            return ()
        out = []
        ha, hoa, key = self.ha, self.hoa, self.key
        for seq, lifetime_units, coa, timestamp, dereg in reqs:
            flags = _BU_A | _BU_H
            udp = self.transport != "ip6" or dereg
            if udp:
                flags |= _BU_F
            mc = mac_coa(coa)
            mh = encode_bu(seq, flags, lifetime_units, self.nai, self.spi,
                           bytes(coa) if len(coa) == 4 else None, timestamp,
                           lambda data: mnha_auth_data(key, mc, hoa, data),
                           # an instance attribute only with an IPv4 home address (core/v4ack.py):
                           # no class attribute (one more entry grows the class's dict: +100 B)
                           getattr(self, "v4hoa", None))
            c = checksum6(hoa, ha, _NH_MH, mh)
            mh[4] = c >> 8
            mh[5] = c & 0xFF
            if udp:
                out.append((ipv6_packet(hoa, ha, _NH_MH, mh), ha))
            else:
                out.append((ipv6_packet(bytes(coa), ha, _NH_MH, mh, hao=hoa), ha))
        return out

    # ---- what the HA sends ------------------------------------------------------------------
    def receive(self, pkt, now):
        """An inner IPv6 packet from the HA holding a Mobility Header (no extension headers: the
        UDP transports). Returns the kind handled ('ba', 'brr', 'be') or None when it was
        dropped. Never raises on bad input."""
        n = len(pkt) - 40
        if n < 8 or pkt[6] != _NH_MH or ((pkt[4] << 8) | pkt[5]) != n:
            return None
        return self.receive_mh(memoryview(pkt)[40:], pkt[8:24], pkt[24:40], now)

    def receive_mh(self, raw, src, dst, now):
        """A Mobility Header; src/dst: its checksum's pseudo-header addresses (for a BA with a type
        2 routing header, dst is the HoA from it). Same results as receive, and "unknown" for an
        MH type beyond RFC 6275's (> 7), from any source: the caller answers it with a Binding
        Error, status 2 (RFC 6275 §9.2). A Payload Proto other than 59 or a length below the
        type's fixed part is discarded (§9.2)."""
        n = len(raw)
        src = bytes(src)
        if n < 8 or raw[0] != 59 or (raw[1] + 1) * 8 != n or checksum6(src, dst, _NH_MH, raw) != 0:
            self.rejected += 1
            return None
        t = raw[2]
        if t > _MH_BE:
            return "unknown"
        if src != self.ha:
            self.rejected += 1
            return None
        if t == _MH_BA:
            ba = decode_ba(raw)
            off = ba[7] if ba is not None else -1
            if off >= 0 and ba[6] == self.spi and off + 19 == n:
                # the MN-HA option is ours, the last one, and ends the message; its MAC covers the
                # care-of address of the current attempt (the HoA for a deregistration)
                prefix = bytearray(raw[:off + 7])
                prefix[4] = prefix[5] = 0
                if (self.coa is not None
                        and mnha_auth_data(self.key, mac_coa(self.coa), self.hoa, prefix)
                        == bytes(raw[off + 7:off + 19])
                        and self.receive_ba(ba[0], ba[1], ba[2], ba[3], ba[4], ba[5], now)):
                    return "ba"
            self.rejected += 1
            return None
        if t == _MH_BRR or (t == _MH_BE and n >= 24 and bytes(raw[8:24]) == self.hoa):
            kind = "brr" if t == _MH_BRR else "be"
            self.lost(kind, now)
            return kind
        return None
