"""The HA's Binding Revocation (RFC 5846, MH 16; docs/CONTRACTS.md §14, PROTOCOL-NOTES.md §12.1):
the Indication it sends when an operator disconnects a device, repeated until the device's
Acknowledgement comes.

    Disconnect-Request for NAI n -> binding ended, SA forgotten (agent.disconnect), and
    BRI (trigger 1 administrative, seq s, MN-ID, Replay Protection = the HA's NTP time now,
    MN-HA option signed with n's key over the binding's CoA and HoA) to where the binding pointed;
    again after 1, 2, 4 s (a fresh timestamp each time) until
    BRA (type 2, seq s, MN-ID, MN-HA option with the same SPI, MAC over the same CoA/HoA) -> done
    (log "bra_received"); no BRA after the last try -> log "bri_unanswered".

The pending revocation keeps the SA and the binding's addresses the BRI was signed with (the
binding cache holds neither any more): the BRA is checked with them. A message of type 16 that
matches no pending BRI, or fails the check, is ignored and counted (`stats["bra_ignored"]`).
At most MAX_PENDING revocations wait at once (older ones are dropped first).
"""
import hmac
import time

from roam6_codec import consts as C
from roam6_codec import mhopts as mo
from roam6_codec.mh import BindingRevocation, checksum_ok, decode_mh
from roam6.wire.addr import ip6_to_text
from roam6.wire.ipv6 import build_ipv6, decode_ipv6

TRIES = 4               # BRIs sent per revocation
FIRST_MS = 1000         # then doubled
MAX_PENDING = 4096
NTP_UNIX_DELTA = 2208988800


def ntp_now():
    ms = time.time_ns() // 1_000_000
    return (((ms // 1000 + NTP_UNIX_DELTA) & 0xFFFFFFFF) << 32) | (((ms % 1000) << 32) // 1000)


class _Pending:
    __slots__ = ("sa", "hoa", "coa", "transport", "peer", "seq", "tries", "next_at", "wait_ms")


class Revocations:
    def __init__(self, cache, log):
        self.cache = cache
        self.log = log
        self.pending = {}       # {seq: _Pending}
        self._seq = 0
        self._ts = 0            # the last timestamp sent: every BRI's is newer (the MN refuses a repeat)
        self.stats = {"bri_sent": 0, "bra_received": 0, "bri_unanswered": 0, "bra_ignored": 0}

    def start(self, sa, b, now):
        """Revoke binding b (SA sa): the first BRI now."""
        self._seq = (self._seq + 1) & 0xFFFF
        if self._seq in self.pending or len(self.pending) >= MAX_PENDING:
            self.pending.pop(self._seq if self._seq in self.pending else next(iter(self.pending)))
        p = _Pending()
        p.sa, p.hoa, p.coa, p.transport, p.peer = sa, b.hoa, b.coa, b.transport, b.peer
        p.seq, p.tries, p.wait_ms = self._seq, 0, FIRST_MS
        self.pending[p.seq] = p
        self._send(p, now)

    def _send(self, p, now):
        sa, ha, hoa, coa = p.sa, self.cache.ha, p.hoa, p.coa
        self._ts = max(ntp_now(), self._ts + 1)
        opts = [mo.MNIdentifier(C.MNID_NAI, sa.nai), mo.ReplayProtection(self._ts),
                mo.MobilityAuth(C.AUTH_MN_HA, sa.spi, None)]
        mh = BindingRevocation(1, 1, p.seq, 0, opts).encode(
            src=ha, dst=hoa, mac=lambda prefix: sa.mnha_auth(coa, hoa, prefix))
        if p.transport == "ip6":
            out = (build_ipv6(ha, coa, C.NH_MH, mh, rh2=hoa), ("ip6", ip6_to_text(coa), 0))
        else:
            out = (build_ipv6(ha, hoa, C.NH_MH, mh), (p.transport, p.peer[0], p.peer[1]))
        self.cache._out.append(out)
        p.tries += 1
        p.next_at = now + p.wait_ms
        p.wait_ms *= 2
        self.stats["bri_sent"] += 1

    def get_timer(self):
        t = None
        for p in self.pending.values():
            if t is None or p.next_at < t:
                t = p.next_at
        return t

    def handle_timer(self, now):
        for p in [p for p in self.pending.values() if p.next_at <= now]:
            if p.tries >= TRIES:
                del self.pending[p.seq]
                self.stats["bri_unanswered"] += 1
                self.log("bri_unanswered", nai=p.sa.nai.decode("utf-8", "replace"), tries=p.tries,
                         reason="no Binding Revocation Acknowledgement: the device learns at its next BU")
            else:
                self._send(p, now)

    @staticmethod
    def is_revocation(packet):
        """True for an IPv6 packet (optionally with a Destination Options header: the Home
        Address option of ip6) holding a Mobility Header of type 16."""
        if len(packet) < 48:
            return False
        nh, off = packet[6], 40
        if nh == 60 and len(packet) >= 48:
            nh, off = packet[40], 40 + (packet[41] + 1) * 8
        return nh == C.NH_MH and len(packet) >= off + 8 and packet[off + 2] == 16

    def receive(self, packet, source, now):
        """A packet with MH type 16 from an MN: a BRA ends its pending BRI; else ignored, counted."""
        why = None
        msg = raw = None
        try:
            pkt = decode_ipv6(packet)
            raw = bytes(pkt.payload)
            if pkt.nh != C.NH_MH:
                why = "not a Mobility Header"
            elif not checksum_ok(raw, pkt.hao or pkt.src, pkt.dst):
                why = "bad Mobility Header checksum"
            else:
                msg = decode_mh(raw)
        except Exception as exc:        # a hostile packet is a count, never a crash
            why = "undecodable: %s" % exc
        p = None
        if msg is not None and why is None:
            if not isinstance(msg, BindingRevocation) or msg.br_type != 2:
                why = "not a Binding Revocation Acknowledgement"
            else:
                p = self.pending.get(msg.seq)
                if p is None:
                    why = "no BRI with sequence number %d is waiting" % msg.seq
                else:
                    why = self._check(p, msg, raw)
        if why is not None:
            self.stats["bra_ignored"] += 1
            self.log.once(("bra_ignored", why[:12]), "bra_ignored", source=source[1], reason=why)
            return True
        del self.pending[p.seq]
        self.stats["bra_received"] += 1
        self.log("bra_received", nai=p.sa.nai.decode("utf-8", "replace"), status=msg.trigger, tries=p.tries,
                 hoa=ip6_to_text(p.hoa))
        return True

    @staticmethod
    def _check(p, msg, raw):
        auth = msg.options[-1] if msg.options else None
        mnid = msg.find(mo.MNIdentifier)
        if not isinstance(auth, mo.MobilityAuth) or auth.spi != p.sa.spi:
            return "no MN-HA option with the SPI of the revoked SA last"
        if mnid is None or bytes(mnid.identifier) != p.sa.nai:
            return "no MN-ID with the revoked NAI"
        n = len(raw)
        prefix = raw[:4] + b"\0\0" + raw[6:n - 12]
        if not hmac.compare_digest(p.sa.mnha_auth(p.coa, p.hoa, prefix), raw[n - 12:n]):
            return "MN-HA authenticator does not verify"
        return None
