"""IPsec devices whose IKEv2 pre-shared key comes from the AAA server (issue #19 with ha.json
"aaa"; docs/ARCHITECTURE.md "IPsec with AAA", docs/PROTOCOL-NOTES.md §12).

The responder (roam6_host/ipsec/responder.py) calls `lookup(nai, request, peer, port)` when an
IKE_AUTH's IDi (the NAI) has no PSK here. Then:

    IKE_AUTH from NAI n, no PSK  --Access-Request(User-Name=n)-->  held (the newest request per NAI;
                                                                   the MN's retransmissions land here)
    Access-Accept with Roam6-IKE-PSK and Roam6-Home-Address
                     -> the device is added to the HA's IPsec table (IpsecHA.peers, a pseudo SA in
                        the binding cache, the responder's PSKs) and the held IKE_AUTH is fed again:
                        its AUTH payload decides (a wrong PSK gets AUTHENTICATION_FAILED)
    Access-Reject    -> the held IKE_AUTH is answered AUTHENTICATION_FAILED (RFC 7296 §2.21.2);
                        n remembered aaa.reject_s (its next IKE_AUTHs are refused without asking)
    no answer / an Accept without a usable PSK or HoA
                     -> AUTHENTICATION_FAILED (the MN retries on its own back-off)
    too many held (aaa.max_pending, shared with the held BUs) or aaa.requests_per_s reached
                     -> no answer now (dropped, counted "busy"): the MN retransmits

The PSK is a distinct attribute (Roam6-IKE-PSK in aaa/data/dictionary.roam6), never the RFC 4285
Roam6-MN-HA-Key: one key must not serve HMAC-SHA1 and IKEv2 both. A granted device stays (SIGHUP
keeps it: `keep` adds the granted devices to the keys file's); every aaa.cache_s it is asked for
again in the background (as the agent refreshes its RFC 4285 SAs): an Accept with the same PSK and
HoA changes nothing, one with another PSK/HoA drops its SAs (as a SIGHUP with a changed keys-file
entry does: the MN re-authenticates with the new PSK), a Reject drops it and its binding ("revoked"),
no answer keeps it and asks again later; a device with neither binding nor IKE SA is forgotten
then (its next IKE_AUTH asks). An RFC 5176 Disconnect-Request (`forget`) drops it at once.
"""
import heapq
import ipaddress

from pyrad import packet as rp

from .ipsecconf import IpsecPeer
from .ipsecmh import PSEUDO_SPI_BASE, CacheSA

PSK_ATTR = "Roam6-IKE-PSK"
HOA_ATTR = "Roam6-Home-Address"


class IpsecAaa:
    def __init__(self, ha):
        self.ha = ha                # driver.HomeAgent (or a test's stand-in: cache, ipsec, aaa, ike, log)
        self.agent = ha.aaa
        self.ipsec = ha.ipsec
        self.held = {}              # {NAI bytes: [(request, peer, port), ms asked]}
        self.granted = {}           # {NAI bytes: IpsecPeer} the AAA server gave
        self._refuse = set()        # NAIs whose held request is being fed again to be refused
        self.stats = {"requests": 0, "accepts": 0, "rejects": 0, "unavailable": 0, "busy": 0,
                      "bad_attributes": 0}
        self.latency_ms = []        # first IKE_AUTH's wait for RADIUS (bounded), for the bench
        self.expires = {}           # {NAI bytes: ms when a granted device is asked for again}
        self._heap = []             # (ms, NAI); rows whose ms is not expires[NAI] are stale
        self.ipsec.responder.lookup = self.lookup
        self.agent.ipsec_aaa = self

    # ---- the responder's hook ------------------------------------------------------------------
    def lookup(self, nai, request, peer, port):
        """True: held (or dropped while busy), no answer now; False: refuse (AUTHENTICATION_FAILED)."""
        nai = bytes(nai)
        if nai in self._refuse:
            return False
        a = self.agent
        now = a._now()
        until = a.rejected.get(nai)
        if until is not None:
            if until > now:
                return False
            del a.rejected[nai]
        held = self.held.get(nai)
        if held is not None:
            held[0] = (request, peer, port)     # a retransmission: the answer serves the newest
            return True
        if len(self.held) + len(a.held) >= a.cfg.max_pending or a.tokens(now) < 1:    # (shared with BUs)
            return self._busy()
        self.held[nai] = [(request, peer, port), now]
        if not a.authorize(nai.decode("utf-8", "replace"), lambda reply: self._answer(nai, reply), now):
            del self.held[nai]
            return self._busy()
        self.stats["requests"] += 1
        a._tokens -= 1
        return True

    def _busy(self):
        self.stats["busy"] += 1
        self.ha.log.once(("aaa_ike_busy",), "aaa_busy", reason="aaa.max_pending requests wait, or "
                         "aaa.requests_per_s reached: new IPsec devices' IKE_AUTHs are dropped (they retransmit)")
        return True

    # ---- the server's answer -------------------------------------------------------------------
    def _answer(self, nai, reply):
        now = self.agent._now()
        held = self.held.pop(nai, None)
        if held is None:
            return
        (request, peer, port), t0 = held
        name = nai.decode("utf-8", "replace")
        log = self.ha.log
        if reply is None:
            self.stats["unavailable"] += 1
            log("aaa_unavailable", nai=name, reason="no RADIUS server answered: IKE_AUTH refused, the device retries")
            return self._feed(nai, request, peer, port, now, refuse=True)
        if reply.code == rp.AccessReject:
            self.stats["rejects"] += 1
            log("aaa_reject", nai=name, security="ipsec")
            if self.agent.cfg.reject_s:
                if len(self.agent.rejected) > 65536:
                    self.agent.rejected.clear()
                self.agent.rejected[nai] = now + self.agent.cfg.reject_s * 1000
            return self._feed(nai, request, peer, port, now, refuse=True)
        peer_dev, why = self._peer_from(nai, reply)
        if peer_dev is None:
            self.stats["bad_attributes"] += 1
            log("aaa_bad_attributes", nai=name, reason=why)
            return self._feed(nai, request, peer, port, now, refuse=True)
        self.stats["accepts"] += 1
        self.grant(peer_dev, now)
        if len(self.latency_ms) < 100000:
            self.latency_ms.append(now - t0)
        log("aaa_accept", nai=name, security="ipsec", hoa=str(ipaddress.IPv6Address(peer_dev.hoa)), ms=now - t0)
        self._feed(nai, request, peer, port, now)

    def _feed(self, nai, request, peer, port, now, refuse=False):
        """The held IKE_AUTH again, through the responder (now with the PSK, or to be refused)."""
        from roam6.ipsec import ikev2 as k
        if refuse:
            self._refuse.add(nai)
        try:
            self.ipsec.ike_receive((k.MARKER + request) if port == 4500 else request, peer, port, now)
        finally:
            self._refuse.discard(nai)
        ike = getattr(self.ha, "ike", None)
        if ike is not None:
            ike.send(now)

    def _peer_from(self, nai, reply):
        """(IpsecPeer, None) from an Access-Accept, or (None, why)."""
        try:
            psks = reply.get(PSK_ATTR) or []
            hoas = reply.get(HOA_ATTR) or []
        except Exception as exc:        # a value pyrad cannot decode
            return None, "undecodable attribute: %s: %s" % (type(exc).__name__, exc)
        if len(psks) != 1 or not isinstance(psks[0], bytes) or not 16 <= len(psks[0]) <= 128:
            return None, "%s missing or not 16 to 128 bytes (an IPsec device needs it)" % PSK_ATTR
        if len(hoas) != 1:
            return None, "%s missing (the HA hands it out through IKEv2's configuration payload)" % HOA_ATTR
        try:
            hoa = ipaddress.IPv6Address(hoas[0])
        except ValueError:
            return None, "%s is not an IPv6 address" % HOA_ATTR
        if hoa not in self.agent.home_prefix:
            return None, "%s %s is outside the home prefix %s" % (HOA_ATTR, hoa, self.agent.home_prefix)
        owner = self.ipsec.hoas.get(hoa.packed)
        spi = self.ha.cache._pinned.get(hoa.packed)
        if (owner is not None and owner != nai) or (spi is not None and self.ha.cache.sas[spi].nai != nai):
            return None, "%s %s belongs to another device here" % (HOA_ATTR, hoa)
        return IpsecPeer(nai, bytes(psks[0]), hoa.packed), None

    # ---- the IPsec table -----------------------------------------------------------------------
    def grant(self, p, now):
        """Device p in the HA's IPsec table: a pseudo SA in the binding cache, its PSK in the
        responder. The same PSK and HoA again: nothing changes (its SAs and binding stay)."""
        ipsec, cache = self.ipsec, self.ha.cache
        old = ipsec.peers.get(p.nai)
        self.granted[p.nai] = p
        self.expires[p.nai] = at = now + self.agent.cfg.cache_s * 1000
        heapq.heappush(self._heap, (at, p.nai))
        if old is not None and (old.psk, old.hoa) == (p.psk, p.hoa):
            return
        if old is not None:             # the server changed it: as a SIGHUP would (its SAs go)
            self._reload()
            return
        spi = max([sa.spi for sa in list(ipsec.cache_sas.values()) + list(ipsec.more_sas.values())]
                  + [PSEUDO_SPI_BASE - 1]) + 1
        sa = CacheSA(p.nai, spi, p.hoa)
        ipsec.peers[p.nai] = p
        ipsec.cache_sas[p.nai] = sa
        ipsec.hoas[p.hoa] = p.nai
        ipsec.responder.psks[p.nai] = p.psk
        cache.add_sa(sa)

    def forget(self, nai):
        """The server no longer grants `nai` (Disconnect-Request): its SAs and binding go."""
        nai = bytes(nai)
        if nai not in self.granted:
            return False
        self._reload(drop=nai)
        return True

    def keep(self, peers):
        """SIGHUP: the keys file's IPsec devices plus the granted ones (a keys-file entry wins)."""
        have = {p.nai for p in peers}
        return list(peers) + [p for n, p in self.granted.items() if n not in have]

    def _reload(self, drop=None):
        ipsec, cache = self.ipsec, self.ha.cache
        keys_file = [p for n, p in ipsec.peers.items() if n not in self.granted]
        self.granted.pop(drop, None)
        self.expires.pop(drop, None)
        by_spi = {spi: sa for spi, sa in cache.sas.items() if spi < PSEUDO_SPI_BASE}
        by_spi.update(ipsec.reload(self.keep(keys_file)))
        cache.replace_sas(by_spi)

    # ---- refresh (the agent's get_timer/handle_timer call these) -------------------------------
    def get_timer(self):
        heap = self._heap
        while heap and self.expires.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)             # refreshed, forgotten or being asked: stale
        return heap[0][0] if heap else None

    def handle_timer(self, now):
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, nai = heapq.heappop(heap)
            if self.expires.get(nai) == at:
                self.expires[nai] = None    # being asked again (no timer until it answers)
                self._refresh(nai, now)

    def _in_use(self, nai):
        sa = self.ipsec.cache_sas.get(nai)
        b = self.ha.cache.bindings.get(sa.hoa) if sa is not None else None
        text = nai.decode("utf-8", "replace")
        return ((b is not None and b.spi == sa.spi)
                or any(x.up and x.peer_id == text for x in self.ipsec.responder.sas.values()))

    def _refresh(self, nai, now):
        if nai not in self.granted:
            return
        if not self._in_use(nai):
            self._reload(drop=nai)          # unused: its next IKE_AUTH asks the server again
            return
        a, text, log = self.agent, nai.decode("utf-8", "replace"), self.ha.log

        def again(t, ms):
            self.expires[nai] = t + ms
            heapq.heappush(self._heap, (t + ms, nai))

        def done(reply):
            t = a._now()
            if nai not in self.granted:
                return                      # forgotten meanwhile
            if reply is None:
                again(t, max(1000, a.cfg.cache_s * 100))
                log("aaa_refresh_failed", nai=text, security="ipsec", reason="no RADIUS server answered: it stays")
                return
            if reply.code == rp.AccessReject:
                log("aaa_revoked", nai=text, security="ipsec")
                self._reload(drop=nai)
                return
            p, why = self._peer_from(nai, reply)
            if p is None:
                log("aaa_bad_attributes", nai=text, reason=why + ": the device stays until asked again")
                again(t, a.cfg.cache_s * 1000)
                return
            self.grant(p, t)
            log("aaa_refreshed", nai=text, security="ipsec")

        if not a.authorize(text, done, now):
            again(now, 1000)


def attach(ha):
    """ha.json has "aaa" and "security" lists "ipsec": IKE_AUTHs of unknown NAIs ask the server."""
    return IpsecAaa(ha)
