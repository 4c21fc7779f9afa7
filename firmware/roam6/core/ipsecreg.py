"""The home registration protected by IPsec ESP instead of RFC 4285 (RFC 3776 §3.2, RFC 4877), sans-IO.

Loaded only by a node whose config says `"security": "ipsec"` (docs/ARCHITECTURE.md "IPsec",
docs/PROTOCOL-NOTES.md §9): the RFC 4285 node never imports it.

`SaRegistration` is a `Registration` (the same HomeBinding rules, timers, events and verbs) whose
messages change shape:
- BU: no MN-ID and no MN-HA auth option (the SA authenticates), no Replay Protection option (ESP's
  sequence number and replay window are the replay protection); flags A|H|K (+F over UDP): the K
  bit (RFC 6275 §9.5.1) says the IKE SA follows the MN's moves. IPv4 CoA / IPv4 HoA options as
  ever. Where the Mobility Header was, an ESP header in transport mode (IPv6 Next Header 50, after
  the Home Address option on ip6), ESP Next Header 135, its payload the MH (checksum as ever).
- In: only MH that comes out of the CHILD_SA's inbound ESP SA (replay window, ICV) counts; a
  Mobility Header in clear from the HA is refused and counted in `rejected` (`clear`), as is ESP
  that does not open.
The ESP SAs come from the IKEv2 initiator: `sa` is an object with `esp_out`, `esp_in` and
`esp_in_old` (roam6.ipsec.ikev2.Initiator once its CHILD_SA is up; None before). While there is
none, the BUs the rules ask for are held (the latest ones) and leave when it comes
(`datagrams_to_send` after `sa` is set). `on_ba(now)`, when set, is called after each BA taken
(the node's IPsec glue then tells the IKE SA the new address, design 4). ESP on the SA's
`data_in` (the payload tunnel, when the glue made one) is opened and its inner packet (to the HoA)
handed to `on_data`. Any other MH type out of the CHILD_SA (the HA's Binding Revocation Indication,
Home Agent Switch, a type the MN does not know) goes to `on_mh` (the glue: revocation.py,
haswitch.py, a Binding Error), and what the MN answers leaves sealed too (`seal_mh`): under IPsec
every MN-HA Mobility Header travels in the CHILD_SA both ways (RFC 4877 §4).
"""
import struct

from roam6.compat import const
from roam6.wire.binding import decode_ba, ipv6_packet, pad
from roam6.wire.checksum import checksum6

from .registration import Registration

_NH_MH = const(135)
_NH_ESP = const(50)
_MH_BA = const(6)
_BU_FLAGS = const(0xD000)     # A | H | K
_BU_F = const(0x0100)
_BA_K = const(0x80)


def encode_bu_sa(seq, flags, lifetime_units, v4coa, v4hoa=None):
    """The BU's Mobility Header (checksum 0) for an ESP-protected registration: IPv4 HoA and IPv4
    CoA options when given, padded to 8 bytes (docs/PROTOCOL-NOTES.md §1.6, §4)."""
    out = bytearray(12)
    out[0] = 59
    out[2] = 5
    struct.pack_into(">HHH", out, 6, seq, flags, lifetime_units)
    if v4hoa is not None:                    # RFC 5555 §3.1.1: Prefix-len 32, P=0
        out.extend(b"\x1d\x06\x80\x00")
        out.extend(v4hoa)
    if v4coa is not None:
        pad(out, (-len(out)) % 4)
        out.extend(b"\x20\x06\x00\x00")
        out.extend(v4coa)
    pad(out, (-len(out)) % 8)
    out[1] = len(out) // 8 - 1
    return out


class SaRegistration(Registration):
    sa = None
    on_ba = None
    on_data = None                # on_data(inner IPv6 packet): what the payload tunnel brought
    on_mh = None                  # on_mh(raw MH, src, now): another MN-HA message out of the CHILD_SA
    on_retry = None               # on_retry(now): a BU under the SA went unanswered (the HA lost its SAs?)
    esp = True                    # (revocation.py, haswitch.py: the SA authenticates, no RFC 4285 option)

    def __init__(self, nai, hoa, ha, lifetime_s=600, seq=None):
        Registration.__init__(self, nai, 0, bytes(16), hoa, ha, lifetime_s, False, seq, 0)
        self.held = ()
        self.k_echoed = None      # the HA's last BA echoed the K bit

    def datagrams_to_send(self, now):
        """[(IPv6 packet with the BU in ESP, HA address)]; () while no CHILD_SA (BUs held)."""
        reqs = self.bu_to_send()
        if reqs:
            self.held = reqs
            if self.tries == 2 and self.sa is not None and self.on_retry is not None:
                self.on_retry(now)    # this attempt's first BU under the SA went unanswered
        sa = self.sa
        if sa is None or sa.esp_out is None or not self.held:
            return ()
        reqs, self.held = self.held, ()
        out = []
        ha, hoa = self.ha, self.hoa
        for seq, lifetime_units, coa, _ts, dereg in reqs:
            udp = self.transport != "ip6" or dereg
            mh = encode_bu_sa(seq, _BU_FLAGS | (_BU_F if udp else 0), lifetime_units,
                              bytes(coa) if len(coa) == 4 else None, getattr(self, "v4hoa", None))
            struct.pack_into(">H", mh, 4, checksum6(hoa, ha, _NH_MH, mh))
            esp = sa.esp_out.seal(mh, _NH_MH)
            if esp is None:       # sequence numbers used up: the glue rekeys; the timer resends
                continue
            out.append((ipv6_packet(hoa, ha, _NH_ESP, esp) if udp
                        else ipv6_packet(bytes(coa), ha, _NH_ESP, esp, hao=hoa), ha))
        return out

    def receive(self, pkt, now):
        """An inner IPv6 packet from the HA: ESP (next header 50) holding a Mobility Header."""
        n = len(pkt) - 40
        if n < 8 or ((pkt[4] << 8) | pkt[5]) != n or pkt[6] != _NH_ESP:
            self.rejected += 1
            return None
        return self.receive_esp(memoryview(pkt)[40:], pkt[8:24], pkt[24:40], now)

    def receive_esp(self, esp, src, dst, now):
        """ESP from the HA (src/dst: the MH checksum's addresses; on ip6 dst is the HoA from the
        type 2 routing header). Same results as Registration.receive_mh."""
        src = bytes(src)
        sa = self.sa
        if sa is None or src != self.ha:
            self.rejected += 1
            return None
        d = sa.data_in
        if d is not None and bytes(esp[:4]) == d.spi_bytes:  # the payload tunnel (ipsec_data)
            got = d.open(esp)
            if got is not None and got[0] == 41 and len(got[1]) >= 40 and bytes(got[1][24:40]) == self.hoa \
                    and self.on_data is not None:
                self.on_data(got[1])
            return None
        got = sa.esp_in.open(esp)
        if got is None and sa.esp_in_old is not None:       # in flight during a CHILD_SA rekey
            got = sa.esp_in_old.open(esp)
        if got is None or got[0] != _NH_MH:
            self.rejected += 1
            return None
        raw = got[1]
        n = len(raw)
        if n >= 12 and raw[2] == _MH_BA:
            if raw[0] != 59 or (raw[1] + 1) * 8 != n or checksum6(src, dst, _NH_MH, raw) != 0:
                self.rejected += 1
                return None
            ba = decode_ba(raw)
            if ba is not None and self.coa is not None and ba[7] < 0 and \
                    self.receive_ba(ba[0], ba[1], ba[2], ba[3], ba[4], ba[5], now):
                self.k_echoed = bool(raw[5] & _BA_K)
                if self.on_ba is not None:
                    self.on_ba(now)
                return "ba"
            self.rejected += 1
            return None
        k = Registration.receive_mh(self, raw, src, dst, now)      # BRR, BE
        if k == "unknown":        # the HA's sealed BRI, Home Agent Switch, ...: the glue's mh_in acts
            if self.on_mh is not None:
                self.on_mh(raw, src, now)
            return None
        return k

    def seal_mh(self, mh, coa, ip6, ha=None):
        """The IPv6 packet carrying the MN's own Mobility Header `mh` (checksummed HoA -> HA) in the
        CHILD_SA (a BRA, a Binding Error, a deregistration): HoA -> HA (NH 50), on ip6 from `coa`
        with the Home Address option (RFC 3776 §3.2); None while there is no CHILD_SA."""
        sa = self.sa
        esp = sa.esp_out.seal(mh, _NH_MH) if sa is not None and sa.esp_out is not None else None
        if esp is None:
            return None
        ha = self.ha if ha is None else ha
        if ip6 and coa is not None and bytes(coa) != self.hoa:
            return ipv6_packet(bytes(coa), ha, _NH_ESP, esp, hao=self.hoa)
        return ipv6_packet(self.hoa, ha, _NH_ESP, esp)

    def receive_mh(self, raw, src, dst, now):
        """A Mobility Header in clear: not from the HA under IPsec (RFC 4877 §4.1), refused."""
        self.rejected += 1
        return None
