"""Correspondent node, sans-IO (RFC 6275 §5.2, §9.3-9.5): return routability answers, the binding
cache with BU verification, BAs, Binding Errors, and the route-optimised data path decisions.

Fed whole IPv6 packets, `now` always last (int ms, monotonic): `receive(packet, now)` returns the
upper-layer packet the application should see, if any; `send_data(hoa, nh, payload, now)` queues
the application's packet to a MN; `datagrams_to_send(now)` hands back what to send, a list of
`(whole IPv6 packet, destination address text)`; `get_timer()` / `handle_timer(now)` end
bindings whose lifetime is over; `binding(hoa, now)` / `bindings(now)` are what it holds. Uses the
firmware's codec and crypto (one codec for MN, HA and CN).

Events (`next_event()`), each a tuple whose first item is its kind; the driver logs them as they
are (field names are the log line's keys, addresses are text):

    kind             fields after kind
    hot, cot         to, index                 a Home / Care-of Test sent (nonce index)
    binding          hoa, coa, seq, lifetime   a BU accepted: binding made or moved (lifetime s)
    binding_deleted  hoa, seq                  a deregistration accepted
    binding_expired  hoa                       handle_timer ended it
    bu_refused       src, hoa, reason          a BU dropped without an answer (e.g. forged)
    ba               hoa, coa, status, seq     a BA sent
    be               to, hoa, status           a Binding Error sent
    mh_dropped       src, reason               a malformed Mobility Header

`ignored` counts packets that change nothing and get no answer (not for this CN, malformed,
or a message only a mobile node takes: HoT, CoT, BA, BRR, BE).

Rules kept here:
- Kcn is 20 random bytes; a new nonce every `nonce_period_ms` under the next 16-bit index; an
  index is honoured for MAX_NONCE_LIFETIME (240 s) after its nonce was made, then forgotten.
- BU checks, in order (§9.5.1): a Home Address option or the at-home form (src = HoA); Nonce
  Indices and Binding Authorization Data (last) present, else drop; H bit -> BA 131; nonce
  indices still valid, else BA 136/137/138 (no authenticator: there is no Kbm); checksum and
  authenticator (Kbm from the tokens, CoA | CN | MH data), else drop silently (a forged BU);
  sequence number greater than the last accepted, else BA 135 carrying the last accepted one;
  then accept: lifetime 0 or CoA == HoA deletes the entry, else it is created or updated with
  the lifetime capped at MAX_RR_BINDING_LIFETIME. A BA goes back when A is set or on error.
- A packet with a Home Address option is accepted only if the binding cache maps that HoA to
  the packet's source; otherwise it is dropped and a Binding Error 1 goes to the source (at most
  one per second per source). An MH type the CN does not know gets a Binding Error 2.
"""
import os
from typing import NamedTuple

from roam6 import rrcrypto
from roam6_host import mhcheck
from roam6_host.ratelimit import SourceLimit, TokenBucket
from roam6_codec import consts as C
from roam6_codec import mh as M
from roam6_codec import mhopts as O
from roam6.wire.addr import ip6_to_text
from roam6.wire.errors import DecodeError
from roam6.wire.ipv6 import build_ipv6, decode_ipv6, pseudo_dst, pseudo_src

MAX_NONCE_LIFETIME_MS = 240000
MAX_RR_BINDING_LIFETIME_UNITS = 105  # 420 s in 4 s units
BE_INTERVAL_MS = 1000
MAX_BINDINGS = 4096  # beyond this, new bindings get BA 130 (insufficient resources)


class TokenSent(NamedTuple):
    kind: str  # "hot" | "cot"
    to: str
    index: int


class BindingMade(NamedTuple):
    kind: str  # "binding"
    hoa: str
    coa: str
    seq: int
    lifetime: int


class BindingDeleted(NamedTuple):
    kind: str  # "binding_deleted"
    hoa: str
    seq: int


class BindingExpired(NamedTuple):
    kind: str  # "binding_expired"
    hoa: str


class BURefused(NamedTuple):
    kind: str  # "bu_refused"
    src: str
    hoa: str
    reason: str


class BASent(NamedTuple):
    kind: str  # "ba"
    hoa: str
    coa: str
    status: int
    seq: int


class BESent(NamedTuple):
    kind: str  # "be"
    to: str
    hoa: str
    status: int


class MHDropped(NamedTuple):
    kind: str  # "mh_dropped"
    src: str
    reason: str


def seq_greater(new, last):
    """RFC 6275 §9.5.1: new is 'greater' than last modulo 2**16."""
    return 0 < ((new - last) & 0xFFFF) < 0x8000


class Binding:
    def __init__(self, hoa, coa, seq, expires, created):
        self.hoa = hoa
        self.coa = coa
        self.seq = seq
        self.expires = expires
        self.created = created

    def as_dict(self, now):
        return {"hoa": ip6_to_text(self.hoa), "coa": ip6_to_text(self.coa), "seq": self.seq,
                "remaining_s": max(0, self.expires - now) // 1000}


class Correspondent:
    def __init__(self, address, kcn=None, rand=os.urandom, nonce_period_ms=30000,
                 max_lifetime_units=MAX_RR_BINDING_LIFETIME_UNITS):
        self.address = bytes(address)
        self.rand = rand
        self.kcn = bytes(kcn) if kcn is not None else rand(20)
        self.nonce_period_ms = nonce_period_ms
        self.max_units = min(max_lifetime_units, MAX_RR_BINDING_LIFETIME_UNITS)
        self.nonces = {}  # index -> (nonce, made at)
        self.index = int.from_bytes(rand(2), "big")
        self.current = None  # index of the nonce handed out now
        self.cache = {}  # HoA -> Binding
        self._be_sent = {}  # source -> time of the last Binding Error
        self._errors = SourceLimit(1, 1, 100, 100)  # ICMPv6 errors and BE 2: 1/s per source, 100/s in all
        self._be_all = TokenBucket(100, 100)  # every Binding Error: 100/s in all (rotating sources)
        self._out = []  # [(packet, destination text)]
        self._dst_text = {}  # {destination address: its text}
        self._events = []
        self.ignored = 0
        self.stats = {"hot": 0, "cot": 0, "bu_ok": 0, "bu_refused": 0, "ba_error": 0, "be": 0,
                      "data_in_ro": 0}

    # ---- nonces ---------------------------------------------------------------------------
    def _nonce_index(self, now):
        cur = self.nonces.get(self.current)
        if cur is None or now - cur[1] >= self.nonce_period_ms:
            self.index = (self.index + 1) & 0xFFFF
            self.current = self.index
            self.nonces[self.current] = (self.rand(8), now)
            for i in [i for i, (_, t) in self.nonces.items() if now - t > MAX_NONCE_LIFETIME_MS]:
                del self.nonces[i]
        return self.current

    def _nonce(self, index, now):
        n = self.nonces.get(index)
        if n is None or now - n[1] > MAX_NONCE_LIFETIME_MS:
            return None
        return n[0]

    # ---- sans-IO surface -------------------------------------------------------------------
    def datagrams_to_send(self, now):
        out, self._out = self._out, []
        return out

    def next_event(self):
        return self._events.pop(0) if self._events else None

    def _send(self, pkt):
        dst = bytes(pkt[24:40])
        text = self._dst_text.get(dst)
        if text is None:  # (few destinations; remembered: this is the data path too)
            if len(self._dst_text) > 4096:
                self._dst_text.clear()
            text = self._dst_text[dst] = ip6_to_text(dst)
        self._out.append((pkt, text))

    def get_timer(self):
        return min((b.expires for b in self.cache.values()), default=None)

    def handle_timer(self, now):
        for hoa in [h for h, b in self.cache.items() if now >= b.expires]:
            del self.cache[hoa]
            self._events.append(BindingExpired("binding_expired", ip6_to_text(hoa)))

    def binding(self, hoa, now):
        b = self.cache.get(bytes(hoa))
        if b is None or now >= b.expires:
            return None
        return b

    def bindings(self, now):
        return [b.as_dict(now) for b in self.cache.values() if now < b.expires]

    def receive(self, packet, now):
        """A whole IPv6 packet addressed to this CN. Returns ("data", hoa, nh, payload) for an
        upper-layer packet the application should see (HoA = source as the MN means it), None
        otherwise. Never raises on malformed input."""
        try:
            p = decode_ipv6(packet)
        except (DecodeError, ValueError):
            self.ignored += 1
            return None
        if p.dst != self.address or p.rh2 is not None:
            self.ignored += 1
            return None
        if p.nh == C.NH_MH:
            try:
                self._mh(p, now, packet)
            except (DecodeError, ValueError) as exc:
                self.ignored += 1
                self._events.append(MHDropped("mh_dropped", ip6_to_text(p.src), str(exc)))
            return None
        if p.hao is None:
            return ("data", p.src, p.nh, p.payload)
        b = self.binding(p.hao, now)
        if b is None or b.coa != p.src:
            self._binding_error(p.src, p.hao, C.BE_UNKNOWN_BINDING, now)
            return None
        self.stats["data_in_ro"] += 1
        return ("data", p.hao, p.nh, p.payload)

    def send_data(self, hoa, nh, payload, now):
        """Queue the packet carrying payload (upper layer, its checksum made for CN -> HoA) to
        hoa: straight to the care-of address with a type 2 routing header when bound."""
        hoa = bytes(hoa)
        b = self.binding(hoa, now)
        if b is None:
            self._send(build_ipv6(self.address, hoa, nh, payload))
        else:
            self._send(build_ipv6(self.address, b.coa, nh, payload, rh2=hoa))

    # ---- mobility headers ----------------------------------------------------------------
    def _mh(self, p, now, packet=b""):
        v = mhcheck.check(p)  # RFC 6275 §9.2: Payload Proto, Header Len, unknown type
        if v.action != "ok":
            if v.action != "drop" and mhcheck.may_answer(p) and self._errors.take(p.src, now):
                if v.action == "param_problem":
                    self._send(mhcheck.param_problem(self.address, packet, v.arg))
                else:
                    self._binding_error(p.src, p.hao or p.src, C.BE_UNKNOWN_MH_TYPE, now)
            raise ValueError(v.reason)
        raw = bytes(p.payload)
        msg = M.decode_mh(raw)
        if not M.checksum_ok(raw, pseudo_src(p), pseudo_dst(p)):
            raise ValueError("bad Mobility Header checksum")
        if isinstance(msg, M.CareofTestInit):  # (a subclass of HomeTestInit)
            if p.hao is not None:
                raise ValueError("CoTI with a Home Address option")
            self._test(msg, p.src, False, now)
        elif isinstance(msg, M.HomeTestInit):
            if p.hao is not None:
                raise ValueError("HoTI with a Home Address option")
            self._test(msg, p.src, True, now)
        elif isinstance(msg, M.BindingUpdate):
            self._bu(p, msg, now)
        elif isinstance(msg, M.UnknownMH):
            self._binding_error(p.src, p.hao or p.src, C.BE_UNKNOWN_MH_TYPE, now)
        else:
            self.ignored += 1  # HoT, CoT, BA, BRR, BE are for mobile nodes: nothing to do here

    def _test(self, msg, peer, home, now):
        i = self._nonce_index(now)
        nonce = self.nonces[i][0]
        if home:
            tok = rrcrypto.home_keygen_token(self.kcn, peer, nonce)
            reply = M.HomeTest(i, msg.cookie, tok)
            self.stats["hot"] += 1
        else:
            tok = rrcrypto.careof_keygen_token(self.kcn, peer, nonce)
            reply = M.CareofTest(i, msg.cookie, tok)
            self.stats["cot"] += 1
        mh = reply.encode(src=self.address, dst=peer)
        self._send(build_ipv6(self.address, peer, C.NH_MH, mh))
        self._events.append(TokenSent("hot" if home else "cot", ip6_to_text(peer), i))

    def _bu(self, p, bu, now):
        hoa = p.hao if p.hao is not None else p.src
        alt = bu.find(O.AlternateCoA)
        coa = bytes(alt.address) if alt is not None else p.src
        ni = bu.find(O.NonceIndices)
        bad = bu.options[-1] if bu.options else None
        if ni is None or not isinstance(bad, O.BindingAuthData):
            return self._refuse(p, hoa, "BU without Nonce Indices and Binding Authorization Data")
        if bu.flags & C.BU_H:
            return self._ba(hoa, coa, None, C.BA_HOME_REG_NOT_SUPPORTED, bu.seq, 0)
        dereg = bu.lifetime == 0 or coa == hoa
        hn = self._nonce(ni.home, now)
        cn_ = None if dereg else self._nonce(ni.careof, now)
        if hn is None or (cn_ is None and not dereg):
            st = C.BA_EXPIRED_NONCES if hn is None and cn_ is None and not dereg else \
                (C.BA_EXPIRED_HOME_NONCE if hn is None else C.BA_EXPIRED_COA_NONCE)
            return self._ba(hoa, coa, None, st, bu.seq, 0)
        ht = rrcrypto.home_keygen_token(self.kcn, hoa, hn)
        kbm = rrcrypto.kbm(ht, None if dereg else rrcrypto.careof_keygen_token(self.kcn, coa, cn_))
        data = bytearray(bu.raw[:-12])
        data[4] = data[5] = 0
        if rrcrypto.rr_authenticator(kbm, coa, self.address, data) != bu.raw[-12:]:
            return self._refuse(p, hoa, "bad authenticator")
        b = self.cache.get(hoa)
        if b is not None and now < b.expires and not seq_greater(bu.seq, b.seq):
            return self._ba(hoa, coa, kbm, C.BA_SEQ_OUT_OF_WINDOW, b.seq, 0)
        if dereg:
            if b is not None:
                del self.cache[hoa]
            units = 0
            self._events.append(BindingDeleted("binding_deleted", ip6_to_text(hoa), bu.seq))
        else:
            if b is None and len(self.cache) >= MAX_BINDINGS:
                self.handle_timer(now)
                if len(self.cache) >= MAX_BINDINGS:
                    return self._ba(hoa, coa, kbm, C.BA_INSUFFICIENT, bu.seq, 0)
            units = min(bu.lifetime, self.max_units)
            self.cache[hoa] = Binding(hoa, coa, bu.seq, now + units * 4000, now)
            self._events.append(BindingMade("binding", ip6_to_text(hoa), ip6_to_text(coa), bu.seq,
                                             units * 4))
        self.stats["bu_ok"] += 1
        if bu.flags & C.BU_A:
            self._ba(hoa, coa, kbm, C.BA_ACCEPTED, bu.seq, units)

    def _refuse(self, p, hoa, reason):
        self.stats["bu_refused"] += 1
        self._events.append(BURefused("bu_refused", ip6_to_text(p.src), ip6_to_text(hoa), reason))

    def _ba(self, hoa, coa, kbm, status, seq, units):
        opts = []
        mac = None
        if kbm is not None:
            opts = [O.BindingAuthData(None)]
            cn = self.address

            def mac(d):
                return rrcrypto.rr_authenticator(kbm, coa, cn, d)
        mh = M.BindingAck(status, 0, seq, units, opts).encode(src=self.address, dst=hoa, mac=mac)
        if coa == hoa:
            pkt = build_ipv6(self.address, hoa, C.NH_MH, mh)
        else:
            pkt = build_ipv6(self.address, coa, C.NH_MH, mh, rh2=hoa)
        self._send(pkt)
        if status >= 128:
            self.stats["ba_error"] += 1
        self._events.append(BASent("ba", ip6_to_text(hoa), ip6_to_text(coa), status, seq))

    def _binding_error(self, dst, hoa, status, now):
        last = self._be_sent.get(dst)
        if last is not None and now - last < BE_INTERVAL_MS:
            return
        if not self._be_all.take(now):
            return
        self._be_sent[dst] = now
        if len(self._be_sent) > 1024:  # forget old sources rather than grow without bound
            self._be_sent = {dst: now}
        mh = M.BindingError(status, hoa).encode(src=self.address, dst=dst)
        self._send(build_ipv6(self.address, dst, C.NH_MH, mh))
        self.stats["be"] += 1
        self._events.append(BESent("be", ip6_to_text(dst), ip6_to_text(hoa), status))
