"""The home agent's AAA side (docs/CONTRACTS.md §14): security associations from RADIUS, BUs
held while the server answers, accounting for every binding.

Theory of operation
-------------------
The binding cache asks `unknown_sa(c, now)` when a BU names an SPI it holds no SA for (rule
`spi`; the BU has been parsed and its MN-ID read, nothing else). Then:

    BU from NAI n, no SA  --Access-Request(User-Name=n)-->  held (the newest BU per NAI)
    Access-Accept         -> SA(n, SPI, key, HoA, max lifetime) cached cache_s, the held BU
                             goes through every rule again (so its MAC is checked with the key)
    Access-Reject         -> BA 129 (administratively prohibited); n remembered reject_s
    no answer from any server (timeouts x retries x servers)
                          -> BA 130 (insufficient resources): the MN keeps retrying on its
                             back-off (core/bul.py treats 128/130 as "retry"); 129 would make it
                             stop for good, although the device may be fine once the server is
    too many BUs held (max_pending), or no RADIUS id free -> BA 130 at once

The BAs 129/130 here carry no MN-HA option: without the key the HA cannot sign them. An MN
drops an unsigned BA (it cannot tell it from a forgery) and goes on retransmitting, which is the
retry-later these statuses mean; a sniffer or `roam6 mh` shows the status.

Bindings whose SA came from RADIUS keep working while every server is down: the SA stays in the
cache. When an SA is cache_s old and still has a binding, it is asked for again in the
background (no BU waits): Accept refreshes it, Reject ends the binding ("revoked"), no answer
keeps it and asks again later.

Accounting (RFC 2866): Start on binding_added, Interim-Update on binding_moved (new CoA or
transport), Stop on binding_removed (dereg, expired, revoked, shutdown), with the NAI as
User-Name, the HoA as Framed-IPv6-Address, the CoA/transport/NAT in Roam6-* attributes and
Calling-Station-Id, the session time.
"""
import heapq
import time

from pyrad import packet as rp

from roam6_codec import consts as C
from roam6_codec import mhopts as mo
from roam6_codec.mh import BindingAck
from roam6.wire.addr import ip6_to_text
from roam6.wire.ipv6 import build_ipv6

from ..ha.cache import BURejected
from ..ha.sa import SA
from .client import RadiusClient
from .revocation import Revocations

BA_INSUFFICIENT = 130
TERMINATE = {"dereg": "User-Request", "expired": "Session-Timeout", "revoked": "Admin-Reset",
             "shutdown": "NAS-Request", "disconnect": "Admin-Reset"}


class _Session:
    """One binding's accounting session. Its records go out one at a time, in order (the server
    runs requests in parallel threads: a Stop must not overtake the Interim-Update before it)."""
    __slots__ = ("sid", "nai", "start_ms", "queue", "busy")

    def __init__(self, sid, nai, start_ms):
        self.sid = sid
        self.nai = nai
        self.start_ms = start_ms
        self.queue = []         # [(status, attrs, ms queued)] not sent yet
        self.busy = False       # a record of this session is on the wire


class AaaAgent:
    def __init__(self, cache, aaa_cfg, log, home_prefix, max_lifetime):
        self.cache = cache
        self.cfg = aaa_cfg
        self.log = log
        self.home_prefix = home_prefix          # ipaddress.IPv6Network
        self.max_lifetime = max_lifetime
        self.client = RadiusClient(aaa_cfg.servers, aaa_cfg.secret, aaa_cfg.timeout_ms, aaa_cfg.retries, log)
        self.held = {}          # {NAI bytes: [held BU context, ms it arrived]}
        self.rejected = {}      # {NAI bytes: ms until which a Reject holds}
        self.sa_expires = {}    # {SPI: ms when the SA from RADIUS is asked for again}
        self.by_nai = {}        # {NAI bytes: SPI} of the SAs from RADIUS
        self.dae = None         # dae.DisconnectListener when aaa.dae_port is set
        self.ipsec_aaa = None   # ha/ipsecaaa.IpsecAaa: IPsec devices' PSKs from the server
        self._tokens = aaa_cfg.requests_per_s
        self._tokens_at = 0
        self.revocations = Revocations(cache, log)     # BRIs waiting for their BRA
        self._exp_heap = []     # (ms, SPI); rows whose ms is not sa_expires[SPI] are stale
        self.sessions = {}      # {HoA bytes: _Session}
        self._sid = 0
        self.stats = {"requests": 0, "accepts": 0, "rejects": 0, "unavailable": 0, "busy": 0, "bad_attributes": 0}
        self.latency_ms = []    # first-registration delay through RADIUS (bounded), for the bench

    def open(self):
        self.client.open()
        if self.cfg.dae_port:
            from .dae import DisconnectListener
            clients = [s.host for s in self.cfg.servers] + list(self.cfg.dae_clients)
            self.dae = DisconnectListener(self, self.cfg.dae_port, clients, self.cfg.secret, self.log, self.client.dict)
            self.dae.open()
        self.cache.aaa = self

    def close(self):
        self.client.close()
        if self.dae is not None:
            self.dae.close()

    def fds(self):
        fds = self.client.fds()
        if self.dae is not None:
            fds.update(self.dae.fds())
        return fds

    def _expire_at(self, spi, at):
        self.sa_expires[spi] = at
        heapq.heappush(self._exp_heap, (at, spi))

    def get_timer(self):
        t = self.client.get_timer()
        heap = self._exp_heap
        while heap and self.sa_expires.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)             # refreshed, removed or being asked: stale
        if heap and (t is None or heap[0][0] < t):
            t = heap[0][0]
        r = self.revocations.get_timer() if self.revocations.pending else None
        if r is not None and (t is None or r < t):
            t = r
        r = self.ipsec_aaa.get_timer() if self.ipsec_aaa is not None else None
        if r is not None and (t is None or r < t):
            t = r
        return t

    def handle_timer(self, now):
        self.client.handle_timer(now)
        if self.revocations.pending:
            self.revocations.handle_timer(now)
        if self.ipsec_aaa is not None:
            self.ipsec_aaa.handle_timer(now)    # the granted PSKs' refresh (ha/ipsecaaa.py)
        heap = self._exp_heap
        while heap and heap[0][0] <= now:
            at, spi = heapq.heappop(heap)
            if self.sa_expires.get(spi) == at:
                self.sa_expires[spi] = None     # being asked again (no timer until it answers)
                self._refresh(spi, now)

    # ---- the cache's hook -----------------------------------------------------------------------
    def unknown_sa(self, c, now):
        """Rule spi failed for BU context c: hold it and ask the server. True: held or answered
        here (the cache does nothing more); False: drop as before (no MN-ID to ask about)."""
        nai = c.nai
        if not nai:
            return False
        until = self.rejected.get(nai)
        if until is not None:
            if until > now:
                self._refuse(c, C.BA_PROHIBITED, "aaa_reject")
                return True
            del self.rejected[nai]
        held = self.held.get(nai)
        if held is not None:
            held[0] = c             # a retransmission: the answer will serve the newest BU
            return True
        if len(self.held) >= self.cfg.max_pending or self.tokens(now) < 1:
            self.stats["busy"] += 1
            self.log.once(("aaa_busy",), "aaa_busy", pending=len(self.held),
                          reason="max_pending BUs wait, or requests_per_s reached: new devices get BA 130")
            self._refuse(c, BA_INSUFFICIENT, "aaa_busy")
            return True
        self.held[nai] = [c, now]
        if not self.authorize(nai.decode("utf-8", "replace"), lambda reply: self._answer(nai, reply), now):
            del self.held[nai]
            self.stats["busy"] += 1
            self._refuse(c, BA_INSUFFICIENT, "aaa_busy")
            return True
        self.stats["requests"] += 1
        self._tokens -= 1
        return True

    # ---- answers --------------------------------------------------------------------------------
    def tokens(self, now):
        """The requests_per_s token bucket (new devices' BUs and IPsec IKE_AUTHs share it: made-up
        NAIs cost the server), refilled to now."""
        rate = self.cfg.requests_per_s
        self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate / 1000)
        self._tokens_at = now
        return self._tokens

    def authorize(self, nai_text, callback, now):
        """An Authorize-Only Access-Request for nai_text; callback(reply, or None if no server
        answered). False: the client has no room for it now."""
        def fill(p):
            p["User-Name"] = nai_text
            p["Service-Type"] = "Authorize-Only"
            p["NAS-Identifier"] = self.cfg.nas_identifier

        return self.client.request("auth", fill, callback, now)

    def _now(self):
        """Answers come from the client's socket handler, which has no `now`: the HA's monotonic
        ms clock (the cache's `now`); tests on a virtual clock replace `clock`."""
        return self.clock()

    @staticmethod
    def clock():
        return time.monotonic_ns() // 1_000_000

    def _answer(self, nai, reply):
        now = self._now()
        held = self.held.pop(nai, None)
        if held is None:
            return
        c, t0 = held
        name = nai.decode("utf-8", "replace")
        if reply is None:
            self.stats["unavailable"] += 1
            self.log("aaa_unavailable", nai=name, reason="no RADIUS server answered: BA 130, the device retries")
            self._refuse(c, BA_INSUFFICIENT, "aaa_unavailable")
            return
        if reply.code == rp.AccessReject:
            self.stats["rejects"] += 1
            self.log("aaa_reject", nai=name)
            if self.cfg.reject_s:
                if len(self.rejected) > 65536:
                    self.rejected.clear()
                self.rejected[nai] = now + self.cfg.reject_s * 1000
            self._refuse(c, C.BA_PROHIBITED, "aaa_reject")
            return
        sa, why = self._sa_from(nai, reply)
        if sa is None:
            self.stats["bad_attributes"] += 1
            self.log("aaa_bad_attributes", nai=name, reason=why)
            self._refuse(c, BA_INSUFFICIENT, "aaa_bad_attributes")
            return
        if sa.spi != c.auth_spi:
            self.log("aaa_spi_mismatch", nai=name, spi=c.auth_spi, aaa_spi=sa.spi,
                     reason="the BU's SPI is not the one the AAA server holds for this NAI")
            self._refuse(c, C.BA_PROHIBITED, "aaa_spi_mismatch")
            return
        other = self.cache.sas.get(sa.spi)
        if other is not None and other.nai != nai:
            self.log("aaa_spi_conflict", nai=name, spi=sa.spi, reason="SPI already belongs to another NAI here")
            self._refuse(c, C.BA_PROHIBITED, "aaa_spi_conflict")
            return
        self.stats["accepts"] += 1
        self._install(sa, now)
        from .ipv4 import grant           # RFC 5555: Framed-IP-Address, the NAI's IPv4 HoA (aaa/ipv4.py)
        hoa4 = grant(self, nai, reply)
        self.log("aaa_accept", nai=name, spi=sa.spi, hoa=ip6_to_text(sa.hoa) if sa.hoa else None,
                 max_lifetime=sa.max_units * 4 if sa.max_units is not None else None, ms=now - t0,
                 **({"hoa4": hoa4} if hoa4 else {}))
        if len(self.latency_ms) < 100000:
            self.latency_ms.append(now - t0)
        # the held BU goes through every rule again, now with its SA (the MAC decides); its wall
        # clock moved on by the time it waited
        self.cache.receive(c.pkt, c.source, now, wall=c.wall + (now - t0))

    def _sa_from(self, nai, reply):
        """(SA, None) from an Access-Accept, or (None, why) when an attribute is missing or bad."""
        try:
            keys = reply.get("Roam6-MN-HA-Key") or []
            spis = reply.get("Roam6-MN-HA-SPI") or []
            hoas = reply.get("Roam6-Home-Address") or []
            lifes = reply.get("Roam6-Max-Lifetime") or []
        except Exception as exc:        # a value pyrad cannot decode (wrong size for its type)
            return None, "undecodable attribute: %s: %s" % (type(exc).__name__, exc)
        if len(keys) != 1 or not isinstance(keys[0], bytes) or len(keys[0]) != 16:
            return None, "Roam6-MN-HA-Key missing or not 16 bytes"
        if len(spis) != 1 or not isinstance(spis[0], int) or not 256 <= spis[0] <= 0xFFFFFFFF:
            return None, "Roam6-MN-HA-SPI missing or outside 256..2^32-1"
        hoa = None
        if hoas:
            try:
                import ipaddress
                a = ipaddress.IPv6Address(hoas[0])
            except ValueError:
                return None, "Roam6-Home-Address is not an IPv6 address"
            if a not in self.home_prefix:
                return None, "Roam6-Home-Address %s is outside the home prefix %s" % (a, self.home_prefix)
            hoa = a.packed
        sa = SA(nai, spis[0], keys[0], hoa)
        if lifes:
            life = lifes[0]
            if not isinstance(life, int) or not 4 <= life <= 0xFFFF * 4:
                return None, "Roam6-Max-Lifetime outside 4..262140"
            sa.max_units = life // 4
        return sa, None

    def _install(self, sa, now):
        prev = self.cache.sas.get(sa.spi)
        old_spi = self.by_nai.get(sa.nai)
        if prev is not None and (prev.nai, prev.key, prev.hoa) == (sa.nai, sa.key, sa.hoa):
            prev.max_units = sa.max_units           # same SA: keep its replay state
        elif prev is None and (old_spi is None or old_spi not in self.cache.sas):
            self.cache.add_sa(sa)                   # the common case: O(1)
        else:                                       # the server changed this NAI's SA
            sas = dict(self.cache.sas)
            if old_spi is not None:
                sas.pop(old_spi, None)
                self.sa_expires.pop(old_spi, None)
            sas[sa.spi] = sa
            self.cache.replace_sas(sas)
        self.by_nai[sa.nai] = sa.spi
        self._expire_at(sa.spi, now + self.cfg.cache_s * 1000)

    def _refuse(self, c, status, reason):
        """A BA the HA cannot sign (it holds no key for this MN): status and the MN-ID only."""
        opts = [mo.MNIdentifier(C.MNID_NAI, bytes(c.nai))]
        if c.ts is not None:
            opts.append(mo.ReplayProtection(c.ts))
        ha = self.cache.ha
        hoa = bytes(c.hoa)
        mh = BindingAck(status, 0, c.seq, 0, opts).encode(src=ha, dst=hoa)
        if c.source[0] == "ip6":
            out = (build_ipv6(ha, c.coa, C.NH_MH, mh, rh2=hoa), ("ip6", ip6_to_text(c.coa), 0))
        else:
            out = (build_ipv6(ha, hoa, C.NH_MH, mh), c.source)
        self.cache._out.append(out)
        self.cache._events.append(BURejected("bu_rejected", status, reason, c.source))

    def _forget(self, spi, reason="revoked"):
        sa = self.cache.sas.get(spi)
        self.sa_expires.pop(spi, None)
        if sa is not None and self.by_nai.get(sa.nai) == spi:
            del self.by_nai[sa.nai]
        self.cache.remove_sa(spi, reason)
        if sa is not None and self.cache.v4homes is not None:
            from .ipv4 import forget
            forget(self, sa.nai)

    def disconnect(self, nai):
        """RFC 5176 Disconnect-Request for `nai` (dae.py): its binding ends now and its SA from
        RADIUS is forgotten (the next BU asks the server again). False: no such session here."""
        spi = self.by_nai.get(nai)
        sa = self.cache.sas.get(spi) if spi is not None else None
        if sa is None:          # an IPsec device whose PSK came from the server (ha/ipsecaaa.py)?
            return self.ipsec_aaa is not None and self.ipsec_aaa.forget(nai)
        b = self.cache.bindings.get(sa.hoa) if sa.hoa is not None else None
        if b is None:
            b = next((x for x in self.cache.bindings.values() if x.spi == spi), None)
        if b is not None and b.spi == spi:
            self._revocation_indication(sa, b)
        self._forget(spi, "disconnect")
        return True

    def _revocation_indication(self, sa, b):
        """RFC 5846 Binding Revocation Indication to where the binding points, repeated until the
        MN's Acknowledgement comes (aaa/revocation.py)."""
        self.revocations.start(sa, b, self._now())

    def revocation_in(self, packet, source, now):
        """The driver's hook for every Mobility Header to the HA: True when it was MH type 16
        (a BRA, or something posing as one: handled here), False for the binding cache."""
        if not self.revocations.is_revocation(packet):
            return False
        self.revocations.receive(packet, source, now)
        return True

    def _refresh(self, spi, now):
        sa = self.cache.sas.get(spi)
        if sa is None:
            self.sa_expires.pop(spi, None)
            return
        b = self.cache.bindings.get(sa.hoa) if sa.hoa is not None else None
        if b is None or b.spi != spi:
            if sa.hoa is not None or not any(x.spi == spi for x in self.cache.bindings.values()):
                self._forget(spi)           # unused: the next BU asks again
                return
        nai_text = sa.nai.decode("utf-8", "replace")

        def done(reply):
            t = self._now()
            if spi not in self.sa_expires:
                return                      # forgotten meanwhile
            if reply is None:
                self._expire_at(spi, t + max(1000, self.cfg.cache_s * 100))     # ask again later
                self.log("aaa_refresh_failed", nai=nai_text, reason="no RADIUS server answered: the SA stays")
                return
            if reply.code == rp.AccessReject:
                self.log("aaa_revoked", nai=nai_text)
                self._forget(spi)
                return
            new, why = self._sa_from(sa.nai, reply)
            if new is None or new.spi != spi:
                self.log("aaa_bad_attributes", nai=nai_text, reason=why or "SPI changed: the SA stays until it expires")
                self._expire_at(spi, t + self.cfg.cache_s * 1000)
                return
            self._install(new, t)
            from .ipv4 import grant
            grant(self, sa.nai, reply)
            self.log("aaa_refreshed", nai=nai_text, spi=spi)

        if not self.authorize(nai_text, done, now):
            self._expire_at(spi, now + 1000)

    # ---- accounting -----------------------------------------------------------------------------
    def on_event(self, ev, now):
        """Every cache event passes here (driver._apply_events): accounting for the binding ones."""
        if not self.cfg.accounting:
            return
        kind = ev.kind
        if kind == "binding_added":
            b = ev.binding
            sa = self.cache.sas.get(b.spi)
            self._sid += 1
            sess = _Session("%s-%x-%d" % (self.cfg.nas_identifier, time.time_ns() // 1_000_000, self._sid),
                            sa.nai.decode("utf-8", "replace") if sa else "", now)
            self.sessions[b.hoa] = sess
            self._acct("Start", b, sess, now)
        elif kind == "binding_moved":
            sess = self.sessions.get(ev.binding.hoa)
            if sess is not None:
                self._acct("Interim-Update", ev.binding, sess, now)
        elif kind == "binding_removed":
            sess = self.sessions.pop(ev.binding.hoa, None)
            if sess is not None:
                self._acct("Stop", ev.binding, sess, now, TERMINATE.get(ev.reason, "NAS-Request"))

    def _acct(self, status, b, sess, now, cause=None):
        peer = "%s port %d" % b.peer            # (FreeRADIUS's SQL escaping keeps [ ] out)
        coa = ip6_to_text(b.coa) if b.coa and b.coa[:12] != b"\0" * 10 + b"\xff\xff" else (
            "%d.%d.%d.%d" % tuple(b.coa[12:16]) if b.coa else "")
        attrs = [("User-Name", sess.nai), ("Acct-Status-Type", status), ("Acct-Session-Id", sess.sid),
                 ("NAS-Identifier", self.cfg.nas_identifier), ("Framed-IPv6-Address", ip6_to_text(b.hoa)),
                 ("Calling-Station-Id", coa), ("Roam6-Care-of-Address", "%s via %s" % (coa, peer)),
                 ("Roam6-Transport", b.transport), ("Roam6-NAT", 1 if b.nat else 0),
                 ("Event-Timestamp", int(time.time())), ("Acct-Session-Time", (now - sess.start_ms) // 1000)]
        # RFC 2866: input = from the user (the MN, up the tunnel), output = to it
        attrs += [("Acct-Input-Packets", b.rx_packets & 0xFFFFFFFF), ("Acct-Input-Octets", b.rx_bytes & 0xFFFFFFFF),
                  ("Acct-Output-Packets", b.tx_packets & 0xFFFFFFFF), ("Acct-Output-Octets", b.tx_bytes & 0xFFFFFFFF)]
        if cause:
            attrs.append(("Acct-Terminate-Cause", cause))
        vendor = self.cache.vendor.get(b) if self.cache.vendor is not None else None
        if vendor:                              # RFC 5094/5096 data from the MN's BUs (ha/vendor.py)
            from ..ha.vendor import as_text
            attrs.append(("Roam6-Vendor-Data", as_text(vendor)))
        if len(sess.queue) < 64:
            sess.queue.append((status, attrs, now))
        self._acct_next(sess, now)

    def _acct_next(self, sess, now):
        if sess.busy or not sess.queue:
            return
        status, attrs, queued = sess.queue.pop(0)

        def fill(p):
            for k, v in attrs:
                p[k] = v
            if now > queued + 1000:
                p["Acct-Delay-Time"] = (now - queued) // 1000

        def done(reply):
            sess.busy = False
            if reply is None:
                self.log.once(("aaa_acct_lost", status), "aaa_acct_lost", status=status, nai=sess.nai,
                              reason="no accounting server answered")
            self._acct_next(sess, self._now())

        sess.busy = True
        if not self.client.request("acct", fill, done, now):
            sess.busy = False
            self.log.once(("aaa_acct_busy",), "aaa_acct_lost", status=status, nai=sess.nai,
                          reason="256 accounting requests outstanding")
