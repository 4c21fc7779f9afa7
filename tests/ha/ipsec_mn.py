"""An MN stand-in for the HA's IPsec tests, built from the firmware's own parts: roam6.ipsec.ikev2's
Initiator (the MN's IKEv2, runs on CPython), its esp.SA, and the codec for the Mobility Header.
It plays what the MN side (issue #19) puts on the wire (docs/PROTOCOL-NOTES.md §9.6): a BU with the
K bit and no RFC 4285 options inside transport-mode ESP, in the packet its transport carries."""
from roam6.ipsec import ikev2 as k
from roam6.ipsec.esp import SA as EspSA
from roam6.ipsec.prims import INTEGS, PRFS, prf_plus
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

    def data_child_request(self):
        """CREATE_CHILD_SA for the payload tunnel (§1.3.1; design 6): tunnel mode, TSi = HoA any,
        TSr = ::/0 (the firmware's Initiator has no verb for it: built from its parts here)."""
        ike = self.ike
        self._ni, self._spi = ike.rng(32), ike._new_spi()
        pls = [(k.PL_SA, k.sa_payload(3, self._spi, ike._esp_items())), (k.PL_NONCE, self._ni),
               (k.PL_TSI, k.ts_payload([k.ts_host(self.hoa)])),
               (k.PL_TSR, k.ts_payload([k.ts_range(bytes(16), b"\xff" * 16)]))]
        self._msgid = ike._msgid
        return k.MARKER + ike._encrypted(pls, k.CREATE_CHILD_SA, k.F_I, ike._msgid)

    def data_child_response(self, data):
        """The response's SAs: (esp_out, esp_in) of the tunnel CHILD_SA."""
        ike = self.ike
        msg = data[4:]
        inner = ike._decrypt(msg, k.parse_chain(msg, 28, len(msg), msg[16]))
        got = {t: b for t, _, b in inner}
        _proto, spi, _items = k.parse_sa(got[k.PL_SA])
        ilen = INTEGS[ike.integ_id][1]
        km = prf_plus(PRFS[ike.prf_id][0], ike.sk["d"], self._ni + bytes(got[k.PL_NONCE]), 2 * (16 + ilen))
        ike._msgid += 1
        out = EspSA(int.from_bytes(spi, "big"), km[:16], km[16:16 + ilen], ike.integ_id)
        inn = EspSA(int.from_bytes(self._spi, "big"), km[16 + ilen:32 + ilen], km[32 + ilen:], ike.integ_id)
        return out, inn

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





def tshark_view(path, packets, esp_sas):
    """Wireshark's reading of IPv6 packets (written to a pcap at `path`, linktype raw IPv6; those
    over UDP 4191 wrapped in an outer IPv6/UDP header, the RFC 5555 framing) with the ESP keys:
    esp_sas = [(src text, dst text, esp.SA)]. Returns tshark -V's text."""
    import shutil
    import struct
    import subprocess
    from roam6_codec.udp import build_udp
    if shutil.which("tshark") is None:
        raise AssertionError("tshark is missing: apt-get install tshark (deps/apt.txt)")
    outer_a, outer_b = bytes.fromhex("20010db800f1" + "00" * 9 + "10"), bytes.fromhex("20010db800f1" + "00" * 9 + "02")
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 229))
        for pkt, udp, up in packets:
            if udp:
                src, dst = (outer_a, outer_b) if up else (outer_b, outer_a)
                sp, dp = (40000, 4191) if up else (4191, 40000)
                pkt = build_ipv6(src, dst, 17, build_udp(sp, dp, pkt, src=src, dst=dst))
            f.write(struct.pack("<IIII", 0, 0, len(pkt), len(pkt)) + pkt)
    opts = ["-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE",
            "-d", "udp.port==4191,ipv6"]
    for src, dst, sa in esp_sas:
        opts += ["-o", 'uat:esp_sa:"IPv6","%s","%s","0x%08x","AES-CBC [RFC3602]","0x%s","HMAC-SHA-1-96 [RFC2404]",'
                 '"0x%s"' % (src, dst, sa.spi, sa.enc_key.hex(), sa.integ_key.hex())]
    p = subprocess.run(["tshark", "-r", path, "-V"] + opts, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout
