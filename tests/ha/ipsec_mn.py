"""An MN stand-in for the HA's IPsec tests, built from the firmware's own parts: roam6.ipsec.ikev2's
Initiator (the MN's IKEv2, runs on CPython), its esp.SA, and the codec for the Mobility Header.
It plays what the MN side (issue #19) puts on the wire (docs/PROTOCOL-NOTES.md §9.6): a BU with the
K bit and no RFC 4285 options inside transport-mode ESP, in the packet its transport carries."""
from roam6.ipsec import ikev2 as k
from roam6.wire.checksum import checksum6
from roam6.wire.ipv6 import build_ipv6, decode_ipv6, pseudo_dst
from roam6_codec import consts as C
from roam6_codec import mhopts as mo
from roam6_codec.mh import BindingAck, BindingUpdate, decode_mh


class EspMN:
    def __init__(self, psk, nai, hoa, ha, local, remote, now=0, **kw):
        self.hoa, self.ha = hoa, ha
        self.ike = k.Initiator(psk, nai, local, remote, [k.ts_host(hoa, 135)], [k.ts_host(ha, 135)], now,
                               transport=True, request_hoa=True, **kw)

    def events(self):
        out = []
        ev = self.ike.next_event()
        while ev:
            out.append(ev)
            ev = self.ike.next_event()
        return out

    def bu(self, seq, transport="udp6", lifetime=150, v4coa=None, coa=None, hoa=None, sa=None):
        """The IPv6 packet carrying the ESP-protected BU (hoa: claim another HoA; sa: another SA)."""
        hoa = hoa or self.hoa
        flags = C.BU_A | C.BU_H | C.BU_K | (C.BU_F if transport != "ip6" else 0)
        opts = [mo.IPv4CareofAddress(v4coa)] if transport == "udp4" else []
        mh = BindingUpdate(seq, flags, lifetime, opts).encode(src=hoa, dst=self.ha)
        esp = (sa or self.ike.esp_out).seal(mh, C.NH_MH)
        if transport == "ip6":
            return build_ipv6(coa, self.ha, 50, esp, hao=hoa)
        return build_ipv6(hoa, self.ha, 50, esp)

    def open_ba(self, packet):
        """(decoded outer packet, BindingAck) of an ESP-protected BA; asserts what the MN checks."""
        pkt = decode_ipv6(packet)
        assert pkt.nh == 50, pkt.nh
        got = self.ike.esp_in.open(bytes(pkt.payload))
        assert got is not None, "BA's ESP does not open"
        nh, mh = got
        assert nh == C.NH_MH
        ba = decode_mh(mh)
        assert isinstance(ba, BindingAck), ba
        assert checksum6(pkt.src, pseudo_dst(pkt), 135, mh) == 0, "bad BA checksum"
        assert not any(isinstance(o, (mo.MobilityAuth, mo.MNIdentifier)) for o in ba.options)
        return pkt, ba



