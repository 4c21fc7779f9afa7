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

from roam6.crypto import mnha_auth_data
from roam6.wire import consts as C
from roam6.wire import mhopts as mo
from roam6.wire.checksum import checksum6
from roam6.wire.errors import DecodeError
from roam6.wire.ipv6 import build_ipv6
from roam6.wire.mh import BindingAck, BindingUpdate, decode_mh

from .bul import HomeBinding

V4MAPPED = b"\0\0\0\0\0\0\0\0\0\0\xff\xff"


def mac_coa(coa):
    """The care-of address the RFC 4285 MAC covers (PROTOCOLS.md §11.1)."""
    if len(coa) == 4:
        return V4MAPPED + bytes(coa)
    return bytes(coa)


def _auth_offset(raw, start):
    """Offset of the MN-HA option's Type byte in the MH bytes, or -1."""
    i = start
    n = len(raw)
    while i < n:
        t = raw[i]
        if t == 0:
            i += 1
            continue
        if i + 2 > n:
            return -1
        if t == C.MO_AUTH:
            return i
        i += 2 + raw[i + 1]
    return -1


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

    # ---- inputs (forwarded to the rules) -----------------------------------------------------
    def move(self, now, coa, transport):
        self.transport = transport
        self.auth_coa = mac_coa(coa)
        self.bul.move(now, bytes(coa))

    def home(self, now):
        self.auth_coa = self.hoa
        self.bul.home(now)

    def detach(self, now):
        self.bul.detach(now)

    def handle_timer(self, now):
        self.bul.handle_timer(now)

    def get_timer(self):
        return self.bul.get_timer()

    def next_event(self):
        return self.bul.next_event()

    def state_to_save(self):
        return self.bul.state_to_save()

    @property
    def bound(self):
        return self.bul.bound

    # ---- BUs out ------------------------------------------------------------------------------
    def packets_to_send(self):
        """[(inner IPv6 packet bytes, BURequest)] for the BUs the rules asked for."""
        out = []
        for req in self.bul.bu_to_send():
            out.append((self.build_bu(req), req))
        return out

    def build_bu(self, req):
        flags = C.BU_A | C.BU_H
        udp = self.transport != "ip6" or req.dereg
        if udp:
            flags |= C.BU_F
        opts = [mo.MNIdentifier(1, self.nai)]
        if len(req.coa) == 4:
            opts.append(mo.IPv4CareofAddress(bytes(req.coa)))
        if req.timestamp is not None:
            opts.append(mo.ReplayProtection(req.timestamp))
        opts.append(mo.MobilityAuth(1, self.spi, None))
        key, coa, hoa = self.key, mac_coa(req.coa), self.hoa
        bu = BindingUpdate(req.seq, flags, req.lifetime_units, opts)
        mh = bu.encode(src=hoa, dst=self.ha, mac=lambda prefix: mnha_auth_data(key, coa, hoa, prefix))
        if udp:
            return build_ipv6(hoa, self.ha, C.NH_MH, mh)
        return build_ipv6(bytes(req.coa), self.ha, C.NH_MH, mh, hao=hoa)

    # ---- what the HA sends ------------------------------------------------------------------
    def receive_mh(self, now, mh_bytes, src, dst):
        """A Mobility Header from the HA (src/dst: the pseudo-header addresses). Returns the kind
        handled ('ba', 'brr', 'be') or None when it was dropped. Never raises on bad input."""
        try:
            if bytes(src) != self.ha:
                self.rejected += 1
                return None
            if checksum6(src, dst, C.NH_MH, mh_bytes) != 0:
                self.rejected += 1
                return None
            m = decode_mh(mh_bytes)
        except (DecodeError, ValueError, IndexError, TypeError):
            self.rejected += 1
            return None
        t = mh_bytes[2]
        if t == C.MH_BA:
            return "ba" if self._ba(now, m) else None
        if t == C.MH_BRR:
            self.bul.lost(now)
            return "brr"
        if t == C.MH_BE:
            if bytes(m.home_address) == self.hoa:
                self.bul.lost(now)
                return "be"
        return None

    def _ba(self, now, ba):
        raw = ba.raw
        auth = ba.find(mo.MobilityAuth)
        if auth is None or auth.subtype != 1 or auth.spi != self.spi or len(auth.auth_data) != 12:
            self.rejected += 1
            return False
        off = _auth_offset(raw, 12)
        if off < 0 or off + 19 != len(raw):
            self.rejected += 1        # the MN-HA option must be last and end the message
            return False
        prefix = bytearray(raw[:off + 7])
        prefix[4] = prefix[5] = 0
        want = mnha_auth_data(self.key, self.auth_coa, self.hoa, prefix)
        if want != bytes(auth.auth_data):
            self.rejected += 1
            return False
        rp = ba.find(mo.ReplayProtection)
        bra = ba.find(mo.BindingRefreshAdvice)
        nat = ba.find(mo.NATDetection)
        ok = self.bul.receive_ba(now, ba.status, ba.seq, ba.lifetime,
                                 bra.interval if bra is not None else None,
                                 rp.timestamp if rp is not None else None,
                                 nat.refresh if nat is not None else None)
        if ok:
            self.last_ba = ba
        else:
            self.rejected += 1
        return ok

    def receive_packet(self, now, pkt):
        """An inner IPv6 packet (bytes) that holds a Mobility Header, no extension headers (the
        UDP transports). Returns what receive_mh returns."""
        if len(pkt) < 48 or pkt[6] != C.NH_MH:
            return None
        plen = struct.unpack_from(">H", pkt, 4)[0]
        if 40 + plen > len(pkt):
            return None
        return self.receive_mh(now, memoryview(pkt)[40:40 + plen], bytes(pkt[8:24]), bytes(pkt[24:40]))
