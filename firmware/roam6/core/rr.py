"""Return routability and correspondent registration, MN side (RFC 6275 §5.2, §11.6-11.8).
Sans-IO.

Rules
-----
Everything that moves a correspondent's entry goes through `CNEntry._go(event)`, checked against
TRANSITIONS below: one glance shows every state and what moves it (h11 `_state.py` style).
Times are `now`: int ms of the caller's monotonic clock, always the last positional argument;
addresses raw 16-byte values. An event the entry's state has no row for is an illegal step: it is
ignored and counted in `RouteOptimizer.ignored`, never an exception (a CN's message can cause one).

Events (`RouteOptimizer.next_event()`), kind first, then the fields in this order:
    ("ro_bound", cn, coa, seq, lifetime_s, rr_ms)   the CN accepted our BU for coa
    ("ro_dereg", cn, seq)                           the CN deleted our binding (BU lifetime 0)
    ("ro_failed", cn, reason)                       gave up: tunnel only for a hold-down
    ("ro_idle", cn, reason)                         RO not wanted or possible any more

Theory of operation
-------------------
A `CNEntry` is the binding update list entry for one CN. It holds two token halves:
- home half: HoTI from the HoA (through the HA tunnel when away, `via="home"`), HoT back to the
  HoA; the home keygen token does not depend on where the MN is, so it is reused after a move
  while younger than MAX_TOKEN_LIFETIME, and renewed in the background before it gets that old;
- care-of half: CoTI straight from the CoA (`via="direct"`), CoT back; good for that CoA only.
Every (re)transmission of a HoTI/CoTI carries a fresh random cookie; only a HoT/CoT echoing the
cookie of the latest one counts. With both tokens: Kbm = SHA1(home | care-of token), a BU (src
CoA, Home Address option, Nonce Indices, Binding Authorization Data, lifetime <= 420 s, A bit)
goes direct; the BA (RH2 = HoA) must carry an authenticator made with the same Kbm.
The BU's lifetime is also no longer than what the home registration has left (RFC 6275 §11.7.2),
in whole 4 s units: while the HA holds no binding for us (or less than 4 s of one) the BU waits,
re-checked at `home_changed` (the node calls it on a BA from the HA) or after INITIAL_TIMEOUT_MS.
Data may go direct (`route()`) only while the CN holds a binding for the current CoA. Back home,
on an IPv4-only network, or when policy turns RO off, a binding the CN may still hold is
deleted: BU lifetime 0 from the HoA (no HAO; through the tunnel when away), Kbm = SHA1(home
token), the HoA as "CoA" in the MAC. Retransmissions back off 1 s .. 32 s; MAX_RO_FAILURE
unanswered retries, or as many rejections (BA 136-138, Binding Error 1), give up: tunnel only
until the next move or HOLDDOWN_MS. A Binding Error 2 (the CN has no RO) gives up for longer.
No MH type goes to one CN more than MAX_UPDATE_RATE times a second: a send that would break the
rate waits (its deadline becomes the time it may go).
"""
import struct

from roam6 import rrcrypto as crypto  # kbm, rr_authenticator: route optimisation's own
from roam6.compat import const
from roam6.core import ro_policy
from roam6.wire import rrmsg as R
from roam6.wire.ipv6 import build_ipv6, decode_ipv6, hao_header

# protocol numbers (roam6_codec.consts has them all; folded here, so the MN does not load it)
_NH_MH = const(135)
_BA_SEQ_OUT_OF_WINDOW = const(135)
_BA_EXPIRED_HOME_NONCE = const(136)
_BA_EXPIRED_COA_NONCE = const(137)
_BA_EXPIRED_NONCES = const(138)
_BE_UNKNOWN_BINDING = const(1)
_BE_UNKNOWN_MH_TYPE = const(2)

MAX_RR_BINDING_LIFETIME_MS = const(420000)
MAX_TOKEN_LIFETIME_MS = const(210000)
MAX_UPDATE_RATE = const(3)  # messages of one MH type to one CN per second
MAX_RO_FAILURE = const(3)
INITIAL_TIMEOUT_MS = const(1000)  # INITIAL_BINDACK_TIMEOUT
MAX_TIMEOUT_MS = const(32000)  # MAX_BINDACK_TIMEOUT
REFRESH_MARGIN_MS = const(30000)  # re-run RR this long before the CN's binding ends
TOKEN_MARGIN_MS = const(20000)  # renew the home token this long before it is too old
HOLDDOWN_MS = const(60000)  # after giving up: tunnel only for this long (or until a move)
NO_RO_HOLDDOWN_MS = const(600000)  # after Binding Error 2: the CN does not do RO
MAX_CNS = const(8)

IDLE = "IDLE"  # no binding wanted or possible; data through the HA tunnel
RR = "RR"  # getting the tokens still missing (HoTI and/or CoTI outstanding)
BU_SENT = "BU_SENT"  # BU sent, waiting for the BA
BOUND = "BOUND"  # the CN accepted the BU; refresh before it ends
DEREG = "DEREG"  # deleting the CN's binding (home token, then BU lifetime 0)
FAILED = "FAILED"  # gave up: tunnel only until a move or the hold-down ends

# events: START/MOVE/DEREGISTER/DROP come from location and policy, TOKENS/RETRY/GIVE_UP/
# REFRESH/HOLD_OVER/TOKENS_OLD from timers, the rest from received messages. RFC 6275 references:
#   START, MOVE, TOKENS  §11.6.1 (HoTI via HA, CoTI direct), §11.7.2 (BU once both tokens held;
#                        after a move only a new care-of token while the home token is usable)
#   RETRY, GIVE_UP       §11.8 (back-off 1 s doubling to 32 s, fresh cookies; MAX_RO_FAILURE)
#   BA_OK, BA_SEQ        §11.7.3 (BA authenticated with Kbm; 135 carries the CN's last seq)
#   BA_NONCE             §11.7.3/§9.5.1 (136/137/138: new home/care-of/both tokens, then BU)
#   BE_UNKNOWN, BE_NO_RO §11.3.6 (Binding Error 1: CN lost the binding; 2: CN has no MIPv6 RO)
#   BRR, REFRESH         §11.7.4, §11.7.2 (refresh before MAX_RR_BINDING_LIFETIME runs out)
#   DEREGISTER, DROP     §11.5.5/§11.7.2 (returning home: BU lifetime 0 from the HoA, home
#                        token only), RFC 4882 (policy off: no RO, nothing leaks the CoA)
TRANSITIONS = {
    # state: {event: next state}
    IDLE: {"START": RR, "DEREGISTER": DEREG, "DROP": IDLE},
    RR: {"TOKENS": BU_SENT, "MOVE": RR, "RETRY": RR, "BE_UNKNOWN": RR, "GIVE_UP": FAILED,
         "BE_NO_RO": FAILED, "DEREGISTER": DEREG, "DROP": IDLE},
    BU_SENT: {"BA_OK": BOUND, "BA_SEQ": BU_SENT, "RETRY": BU_SENT, "BA_NONCE": RR,
              "TOKENS_OLD": RR, "MOVE": RR, "BE_UNKNOWN": RR, "BA_REJECT": FAILED,
              "GIVE_UP": FAILED, "BE_NO_RO": FAILED, "DEREGISTER": DEREG, "DROP": IDLE},
    BOUND: {"REFRESH": RR, "MOVE": RR, "BRR": RR, "BE_UNKNOWN": RR, "BE_NO_RO": FAILED,
            "DEREGISTER": DEREG, "DROP": IDLE},
    DEREG: {"TOKENS": DEREG, "RETRY": DEREG, "BA_SEQ": DEREG, "BA_NONCE": DEREG,
            "TOKENS_OLD": DEREG, "BA_OK": IDLE, "BA_REJECT": IDLE, "BE_UNKNOWN": IDLE,
            "GIVE_UP": IDLE, "BE_NO_RO": IDLE, "START": RR, "DROP": IDLE},
    FAILED: {"HOLD_OVER": RR, "MOVE": RR, "DEREGISTER": DEREG, "DROP": IDLE},
}


class _Half:
    """One half of return routability: the keygen token we hold and the test init in flight."""

    def __init__(self):
        self.token = None
        self.index = 0
        self.t = 0  # when the token arrived
        self.addr = None  # the address the token is for (HoA, or the CoA of the CoTI)
        self.cookie = None  # cookie of the latest init sent, None when none is in flight
        self.sent_addr = None
        self.next_tx = None
        self.tries = 0
        self.timeout = INITIAL_TIMEOUT_MS

    def valid(self, addr, now):
        return self.token is not None and self.addr == addr and now - self.t < MAX_TOKEN_LIFETIME_MS

    def reset_tx(self):
        self.cookie = None
        self.next_tx = None
        self.tries = 0
        self.timeout = INITIAL_TIMEOUT_MS


class CNEntry:
    """The binding update list entry for one correspondent node."""

    def __init__(self, mgr, cn, mode):
        self.mgr = mgr
        self.cn = cn
        self.mode = mode
        self.state = IDLE
        self.home = _Half()
        self.careof = _Half()
        self.seq = struct.unpack(">H", mgr.rand(2))[0]
        self.bu = None  # (seq, kbm, mac_coa, dereg, t_sent) of the BU waiting for its BA
        self.bu_next = None
        self.bu_tries = 0
        self.bu_timeout = INITIAL_TIMEOUT_MS
        self.bu_held = False  # a BU waits for the home registration (no lifetime left to give)
        self.bound_coa = None  # what the CN holds for us, as far as we know
        self.bound_until = 0
        self.maybe_bound_until = 0  # a binding may exist at the CN until then (BU sent, no BA seen)
        self.refresh_at = None
        self.failures = 0
        self.hold_until = None
        self.sent = {}  # MH type -> send times within the last second (MAX_UPDATE_RATE)
        self.traffic = []  # times of the last AUTO_PACKETS data packets
        self.last_traffic = None
        self.rr_started = None
        self.at_coa = None  # the CoA the current attempt is for

    # ---- the state machine -------------------------------------------------------------
    def _go(self, event):
        """Move by the table. False (and counted) when the state has no row for event."""
        nxt = TRANSITIONS[self.state].get(event)
        if nxt is None:
            self.mgr.ignored += 1
            return False
        self.state = nxt
        return True

    def _may(self, event):
        return event in TRANSITIONS[self.state]

    def wanted(self, now):
        if self.mode == "always":
            return True
        if self.mode != "auto":
            return False
        t = self.traffic
        if len(t) < ro_policy.AUTO_PACKETS or now - t[0] > ro_policy.AUTO_WINDOW_MS:
            # keep a binding we have while the CN is still in use
            return self.bound_coa is not None and self.last_traffic is not None and \
                now - self.last_traffic < ro_policy.AUTO_IDLE_MS
        return True

    def note_traffic(self, now):
        self.last_traffic = now
        self.traffic.append(now)
        if len(self.traffic) > ro_policy.AUTO_PACKETS:
            self.traffic.pop(0)

    def _begin(self, event, now):
        """START/MOVE/HOLD_OVER: a fresh attempt at the current CoA; the home token is kept."""
        if not self._go(event):
            return
        self.at_coa = self.mgr.coa
        self.failures = 0
        # a HoTI in flight is sent again too: its HoT may reach the HA before the HA has our
        # new care-of address and be tunnelled to the old one (the rate limit bounds repeats)
        self.home.reset_tx()
        self.careof.reset_tx()
        self._cancel_bu()
        self.rr_started = now

    def _cancel_bu(self):
        self.bu = None
        self.bu_held = False
        self.bu_next = None
        self.bu_tries = 0
        self.bu_timeout = INITIAL_TIMEOUT_MS

    def _unbind(self):
        self.bound_coa = None
        self.bound_until = 0
        self.refresh_at = None

    def _give_up(self, event, reason, now):
        if not self._go(event):
            return
        self._unbind()
        self._cancel_bu()
        self.home.reset_tx()
        self.careof.reset_tx()
        if self.state == FAILED:
            self.hold_until = now + (NO_RO_HOLDDOWN_MS if event == "BE_NO_RO" else HOLDDOWN_MS)
        kind = "ro_failed" if self.state == FAILED else "ro_idle"
        self.mgr._events.append((kind, self.cn, reason))

    def _failure(self, reason, now):
        """A rejection: count it; MAX_RO_FAILURE of them give up. Returns True if given up."""
        self.failures += 1
        if self.failures >= MAX_RO_FAILURE and self._may("GIVE_UP"):
            self._give_up("GIVE_UP", reason, now)
            return True
        return False

    def relocate(self, now):
        """The MN moved, came home, or lost IPv6: decide what this CN's binding needs."""
        m = self.mgr
        if not m.at_home and m.coa is not None and self.wanted(now):
            if self.state in (IDLE, DEREG):
                self._begin("START", now)
            elif self.at_coa != m.coa:
                self._begin("MOVE", now)
            return
        if self.state == IDLE and now >= self.maybe_bound_until:
            return
        if now < self.maybe_bound_until:
            if self.state != DEREG:
                if not self._go("DEREGISTER"):
                    return
                self._unbind()
                self._cancel_bu()
                self.home.reset_tx()
                self.careof.reset_tx()
            else:  # the path changed (e.g. detached -> home): what is outstanding goes again now
                if self.bu is not None:
                    self.bu_next = now
                if self.home.cookie is not None:
                    self.home.next_tx = now
        elif self.state != IDLE:
            self._give_up("DROP", "no route optimisation here", now)

    # ---- rate limit and sending ----------------------------------------------------------
    def _rate_wait(self, kind, now):
        """0 if a message of this MH type may go now, else the time it may go."""
        times = [t for t in self.sent.get(kind, ()) if now - t < 1000]
        self.sent[kind] = times
        if len(times) < MAX_UPDATE_RATE:
            return 0
        return times[0] + 1000

    def _emit(self, kind, via, pkt, now):
        self.sent[kind].append(now)
        m = self.mgr
        if not m._out:
            m._out_t = now
        m._out.append((via, pkt))

    def _send_init(self, half, kind, now):
        """Send (or resend) a HoTI/CoTI with a fresh cookie. False when retries are used up."""
        if half.next_tx is not None and now < half.next_tx:
            return True
        wait = self._rate_wait(kind, now)
        if wait:
            half.next_tx = wait
            return True
        if half.tries > MAX_RO_FAILURE:
            return False
        m = self.mgr
        cookie = bytes(m.rand(8))
        half.cookie = cookie
        half.tries += 1
        half.next_tx = now + half.timeout
        half.timeout = min(half.timeout * 2, MAX_TIMEOUT_MS)
        if kind == R.HOTI:
            half.sent_addr = m.hoa
            mh = R.encode_init(kind, cookie, m.hoa, self.cn)
            self._emit(kind, "home", build_ipv6(m.hoa, self.cn, _NH_MH, mh), now)
        else:
            half.sent_addr = m.coa
            mh = R.encode_init(kind, cookie, m.coa, self.cn)
            self._emit(kind, "direct", build_ipv6(m.coa, self.cn, _NH_MH, mh), now)
        return True

    def _send_bu(self, dereg, now):
        """Send a BU with the tokens held (the caller checked them). False when retries are used
        up."""
        if self.bu_next is not None and now < self.bu_next:
            return True
        m = self.mgr
        lifetime = 0 if dereg else m.bu_lifetime(now)
        if not dereg and lifetime == 0:  # the home registration is not bound: no BU yet
            self.bu_held = True
            self.bu_next = now + INITIAL_TIMEOUT_MS
            return True
        self.bu_held = False
        wait = self._rate_wait(R.BU, now)
        if wait:
            self.bu_next = wait
            return True
        if self.bu_tries > MAX_RO_FAILURE:
            return False
        self.seq = (self.seq + 1) & 0xFFFF
        if dereg:
            kbm = crypto.kbm(self.home.token, None)
            coa, coni = m.hoa, 0
        else:
            kbm = crypto.kbm(self.home.token, self.careof.token)
            coa, coni = self.careof.addr, self.careof.index
        cn = self.cn

        def mac(data):
            return crypto.rr_authenticator(kbm, coa, cn, data)

        mh = R.encode_bu(self.seq, lifetime, self.home.index, coni, mac, m.hoa, cn)
        if dereg:
            self._emit(R.BU, "home", build_ipv6(m.hoa, cn, _NH_MH, mh), now)
        else:
            if self.bound_coa is not None and self.bound_coa != coa:
                self._unbind()  # once the CN takes this BU, what it held is gone: no direct data
            self._emit(R.BU, "direct", build_ipv6(coa, cn, _NH_MH, mh, hao=m.hoa), now)
            self.maybe_bound_until = max(self.maybe_bound_until, now + lifetime * 4000)
        self.bu = (self.seq, kbm, coa, dereg, now)
        self.bu_tries += 1
        self.bu_next = now + self.bu_timeout
        self.bu_timeout = min(self.bu_timeout * 2, MAX_TIMEOUT_MS)
        return True

    # ---- timers ---------------------------------------------------------------------------
    def service(self, now):
        """Do whatever is due at `now`: (re)transmissions, refreshes, expiry, hold-down."""
        m = self.mgr
        s = self.state
        if self.bound_coa is not None and now >= self.bound_until:
            self._unbind()
        for h in (self.home, self.careof):  # a token too old is no token (and no deadline)
            if h.token is not None and now - h.t >= MAX_TOKEN_LIFETIME_MS:
                h.token = None
        if s == BOUND:
            if self.refresh_at is not None and now >= self.refresh_at:
                if self.wanted(now) and m.coa is not None and not m.at_home:
                    return self._refresh("REFRESH", now)
                # auto mode and the CN went quiet: let the binding lapse (a move deletes it)
                self._give_up("DROP", "idle", now)
                return
            # keep the home token fresh so that a move needs only the care-of half
            h = self.home
            if h.token is not None and now >= h.t + MAX_TOKEN_LIFETIME_MS - TOKEN_MARGIN_MS:
                if not self._send_init(h, R.HOTI, now):
                    h.reset_tx()
                    h.next_tx = self.refresh_at  # no more tries until the binding refresh
        elif s == RR:
            home_ok = self.home.valid(m.hoa, now)
            careof_ok = self.careof.valid(m.coa, now)
            if not home_ok and not self._send_init(self.home, R.HOTI, now):
                return self._give_up("GIVE_UP", "no HoT", now)
            if not careof_ok and not self._send_init(self.careof, R.COTI, now):
                return self._give_up("GIVE_UP", "no CoT", now)
            if home_ok and careof_ok:
                self._go("TOKENS")
                self.home.reset_tx()
                self.careof.reset_tx()
                self._send_bu(False, now)
        elif s == BU_SENT:
            if now >= self.bu_next:
                if not (self.home.valid(m.hoa, now) and self.careof.valid(m.coa, now)):
                    self._go("TOKENS_OLD")
                    self._cancel_bu()
                    return self.service(now)
                self._go("RETRY")
                if not self._send_bu(False, now):
                    return self._give_up("GIVE_UP", "no BA", now)
        elif s == DEREG:
            if now >= self.maybe_bound_until:  # whatever the CN held has ended by itself
                return self._give_up("DROP", "binding over", now)
            if self.bu is not None:
                if now >= self.bu_next:
                    if not self.home.valid(m.hoa, now):
                        self._go("TOKENS_OLD")
                        self._cancel_bu()
                        return self.service(now)
                    self._go("RETRY")
                    if not self._send_bu(True, now):
                        return self._give_up("GIVE_UP", "no BA to deregistration", now)
            elif self.home.valid(m.hoa, now):
                self._go("TOKENS")
                self.home.reset_tx()
                self._send_bu(True, now)
            elif not self._send_init(self.home, R.HOTI, now):
                return self._give_up("GIVE_UP", "no HoT", now)
        elif s == FAILED:
            if now >= self.hold_until:
                if self.wanted(now) and m.coa is not None and not m.at_home:
                    self._begin("HOLD_OVER", now)
                    return self.service(now)
                self._give_up("DROP", "hold-down over", now)

    def deadline(self):
        s = self.state
        ts = []
        if self.bound_coa is not None:
            ts.append(self.bound_until)
        if s == BOUND:
            ts.append(self.refresh_at)
            h = self.home
            if h.token is not None:
                ts.append(h.next_tx if h.next_tx is not None else
                          h.t + MAX_TOKEN_LIFETIME_MS - TOKEN_MARGIN_MS)
        elif s == RR:
            ts.append(self.home.next_tx)
            ts.append(self.careof.next_tx)
            for h in (self.home, self.careof):  # a token we hold ages out
                if h.token is not None:
                    ts.append(h.t + MAX_TOKEN_LIFETIME_MS)
        elif s == BU_SENT:
            ts.append(self.bu_next)
        elif s == DEREG:
            ts.append(self.bu_next)
            ts.append(self.home.next_tx)
            ts.append(self.maybe_bound_until)
        elif s == FAILED:
            ts.append(self.hold_until)
        ts = [t for t in ts if t is not None]
        return min(ts) if ts else None

    # ---- received messages -------------------------------------------------------------
    # msg: roam6.wire.rrmsg.decode's tuple; HoT/CoT (type, nonce index, cookie, token)
    def on_hot(self, msg, dst, rh2, now):
        h = self.home
        m = self.mgr
        if h.cookie is None or msg[2] != h.cookie or dst != m.hoa or rh2 is not None:
            return False
        h.token, h.index, h.t, h.addr = msg[3], msg[1], now, m.hoa
        h.reset_tx()
        self.service(now)
        return True

    def on_cot(self, msg, dst, rh2, now):
        c = self.careof
        m = self.mgr
        if c.cookie is None or msg[2] != c.cookie or rh2 is not None \
                or dst != c.sent_addr or dst != m.coa:
            return False
        c.token, c.index, c.t, c.addr = msg[3], msg[1], now, dst
        c.reset_tx()
        self.service(now)
        return True

    def on_ba(self, msg, raw, dst, rh2, now):
        # msg: (BA, status, seq, lifetime, authenticator); raw: its bytes.
        # A BA copies the BU's number, except status 135: it names the CN's last accepted one
        st = msg[1]
        if self.bu is None or (msg[2] != self.bu[0] and st != _BA_SEQ_OUT_OF_WINDOW):
            return False
        seq, kbm, coa, dereg, t_sent = self.bu
        m = self.mgr
        if dereg:
            if dst != m.hoa or rh2 is not None:
                return False
        elif rh2 != m.hoa or dst != coa:
            return False
        authed = _ba_auth_ok(raw, msg[4], kbm, coa, self.cn)
        if st < 128 or st == _BA_SEQ_OUT_OF_WINDOW:
            if not authed:
                return False  # forged or garbled: as if it never came
        if st < 128:
            if not self._go("BA_OK"):
                return False
            self._cancel_bu()
            self.failures = 0
            if dereg:
                self.maybe_bound_until = 0
                self._unbind()
                m._events.append(("ro_dereg", self.cn, seq))
                return True
            life = msg[3] * 4000
            self.bound_coa = coa
            self.bound_until = t_sent + life
            self.maybe_bound_until = max(self.maybe_bound_until, self.bound_until)
            self.refresh_at = t_sent + max(life - REFRESH_MARGIN_MS, life // 2)
            m._events.append(("ro_bound", self.cn, coa, seq, msg[3] * 4, now - self.rr_started))
            return True
        if st == _BA_SEQ_OUT_OF_WINDOW:
            if not self._go("BA_SEQ"):
                return False
            self.seq = msg[2]  # the CN's last accepted number; the resend goes one above
            self.bu_next = now
            self.service(now)
            return True
        if st in (_BA_EXPIRED_HOME_NONCE, _BA_EXPIRED_COA_NONCE, _BA_EXPIRED_NONCES):
            if st != _BA_EXPIRED_COA_NONCE:
                self.home.token = None
            if st != _BA_EXPIRED_HOME_NONCE and not dereg:
                self.careof.token = None
            self._cancel_bu()
            if not self._failure("BA %d" % st, now) and self._go("BA_NONCE"):
                self.service(now)
            return True
        self._give_up("BA_REJECT", "BA %d" % st, now)
        return True

    def on_be(self, msg, now):
        # msg: (BE, status, home address)
        if msg[1] == _BE_UNKNOWN_BINDING:
            if not self._may("BE_UNKNOWN"):
                return True
            self._unbind()
            self.maybe_bound_until = 0
            if self.state == DEREG:  # nothing left to delete
                self._give_up("BE_UNKNOWN", "no binding at CN", now)
                return True
            self._cancel_bu()
            if not self._failure("Binding Error 1", now) and self._go("BE_UNKNOWN"):
                self.rr_started = now
                self.service(now)
        elif msg[1] == _BE_UNKNOWN_MH_TYPE and self._may("BE_NO_RO"):
            self._give_up("BE_NO_RO", "CN does not support route optimisation", now)
        return True

    def on_brr(self, now):
        if self.state == BOUND:
            self._refresh("BRR", now)
        else:
            self.mgr.ignored += 1
        return True

    def _refresh(self, event, now):
        """New tokens and a new BU for the binding we hold (data stays direct meanwhile)."""
        if not self._go(event):
            return
        self.home.reset_tx()
        self.careof.reset_tx()
        self._cancel_bu()
        self.rr_started = now
        self.service(now)


def _ba_auth_ok(raw, auth, kbm, coa, cn):
    """Check the BA's Binding Authorization Data (its last option, `auth`) against Kbm."""
    if auth is None or len(raw) < 24:
        return False
    data = bytearray(raw[:len(raw) - 12])
    data[4] = data[5] = 0
    return _eq(crypto.rr_authenticator(kbm, coa, cn, data), auth)


def _eq(a, b):
    """Comparison that does not stop at the first differing byte."""
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0


class RouteOptimizer:
    """All CN entries of one home address, and the data-path decision.

    Driver loop: `move(coa, now)` / `home(now)` on every movement decision, `outbound(pkt, now)` /
    `inbound(pkt, now)` per data packet (or `note_traffic(cn, now)`), `receive(src, dst, mh, rh2,
    now)` for every MH packet from a CN, `handle_timer(now)` at `get_timer()`, and send what
    `datagrams_to_send` returns: ("home", ipv6) = from the HoA (through the HA tunnel when away,
    directly at home), ("direct", ipv6) = on the access network. `route(cn, now)` is the CoA to
    send data from (with a Home Address option; the CN answers with RH2) or None: the tunnel.
    `home_expiry()` (optional) answers when the home registration ends, in ms of the `now` clock,
    or None while it is not bound; `home_changed(now)` after each change of it (a BA from the HA).
    Without it BUs are limited by MAX_RR_BINDING_LIFETIME and lifetime_s only.
    """

    def __init__(self, hoa, policy=None, rand=None, lifetime_s=420, no_ro=(), home_expiry=None):
        if rand is None:
            import os
            rand = os.urandom
        self.hoa = bytes(hoa)
        self.no_ro = [bytes(a) for a in no_ro]  # peers never route-optimised (the HA)
        self.policy = policy or ro_policy.RoPolicy()
        self.rand = rand
        self.lifetime_units = min(lifetime_s, MAX_RR_BINDING_LIFETIME_MS // 1000) // 4
        self.home_expiry = home_expiry
        self.coa = None
        self.at_home = True
        self.entries = {}
        self._out = []
        self._out_t = 0
        self._events = []
        self.ignored = 0  # illegal steps: events an entry's state has no row for (see _go)

    def bu_lifetime(self, now):
        """Lifetime (4 s units) of a BU to a CN sent at `now`: MAX_RR_BINDING_LIFETIME (and
        lifetime_s) at most, and no more than the home registration has left (RFC 6275 §11.7.2),
        rounded down; 0 while the home registration is not bound: no BU then."""
        units = self.lifetime_units
        if self.home_expiry is not None:
            end = self.home_expiry()
            if end is None or end <= now:
                return 0
            units = min(units, (end - now) // 4000)
        return units

    def home_changed(self, now):
        """The home registration changed (bound, refreshed, lost): a BU waiting for it goes now."""
        for e in list(self.entries.values()):
            if e.bu_held:
                e.bu_next = now
                e.service(now)

    def move(self, coa, now):
        """Every movement decision away from home. coa: the IPv6 care-of address the direct path
        uses (16 bytes), or None (detached, an IPv4-only network, no direct path)."""
        self._locate(bytes(coa) if coa is not None and len(coa) == 16 else None, False, now)

    def home(self, now):
        """Back on the home link: bindings a CN may still hold are deleted."""
        self._locate(self.hoa, True, now)

    def _locate(self, coa, home, now):
        self.coa = coa
        self.at_home = home
        # a direct packet still queued from the address we just left must not go out
        self._out = [o for o in self._out
                     if o[0] == "home" or (not home and o[1][8:24] == self.coa)]
        for e in list(self.entries.values()):
            e.relocate(now)
            e.service(now)

    def note_traffic(self, cn, now):
        """A data packet to or from cn: creates its entry and starts RO when policy wants it."""
        cn = bytes(cn)
        e = self.entries.get(cn)
        if e is None:
            if cn in self.no_ro or cn[0] == 0xFF or cn[:2] == b"\xfe\x80":
                return  # the HA, multicast, link-local: never a correspondent
            mode = self.policy.mode(cn)
            if mode == "never":
                return
            if len(self.entries) >= MAX_CNS and not self._evict():
                return
            e = self.entries[cn] = CNEntry(self, cn, mode)
        e.note_traffic(now)
        if e.state == IDLE and not self.at_home and self.coa is not None and e.wanted(now):
            e.relocate(now)
            e.service(now)

    def _evict(self):
        for cn, e in self.entries.items():
            if e.state == IDLE and e.bound_coa is None:
                del self.entries[cn]
                return True
        return False

    def route(self, cn, now):
        e = self.entries.get(bytes(cn))
        if e is None or e.bound_coa is None or e.bound_coa != self.coa or self.at_home:
            return None
        if now >= e.bound_until:
            return None
        return e.bound_coa

    def receive(self, src, dst, mh, rh2, now):
        """A mobility header from the network (src/dst of the packet, rh2 = address of a type 2
        routing header or None). Returns True if it was for return routability/RO."""
        e = self.entries.get(bytes(src))
        if e is None:
            return False
        msg = R.decode(mh)
        if msg is None:
            return False
        dst = bytes(dst)
        if rh2 is not None:
            rh2 = bytes(rh2)
        if not R.checksum_ok(mh, bytes(src), rh2 if rh2 is not None else dst):
            return False  # RFC 6275 §9.2: a Mobility Header with a bad checksum is dropped
        t = msg[0]
        if t == R.COT:
            return e.on_cot(msg, dst, rh2, now)
        if t == R.HOT:
            return e.on_hot(msg, dst, rh2, now)
        if t == R.BA:
            return e.on_ba(msg, mh, dst, rh2, now)
        if t == R.BE:
            if msg[2] != self.hoa:
                return False
            return e.on_be(msg, now)
        if t == R.BRR:
            return e.on_brr(now)
        return False

    # ---- data path helpers for the node: one call per packet each way -------------------------
    def outbound(self, pkt, now):
        """pkt: an IPv6 packet the HoA's host sends (src = HoA, no extension headers). Returns
        ("direct", packet from the CoA with a Home Address option) when the CN holds our binding,
        else ("home", pkt) for the tunnel. The upper-layer checksum stays valid (HoA in both)."""
        if len(pkt) < 40 or pkt[6] in (0, 43, 60, _NH_MH):
            return "home", pkt
        dst = bytes(pkt[24:40])
        self.note_traffic(dst, now)
        coa = self.route(dst, now)
        if coa is None:
            return "home", pkt
        plen = ((pkt[4] << 8) | pkt[5]) + 24
        hdr = bytearray(pkt[:40])
        hdr[4], hdr[5], hdr[6] = plen >> 8, plen & 0xFF, 60
        hdr[8:24] = coa
        return "direct", bytes(hdr) + hao_header(self.hoa, pkt[6]) + bytes(pkt[40:])

    def inbound(self, pkt, now):
        """Every IPv6 packet for the MN, from the tunnel or straight off the access network.
        Returns None when it was a Mobility Header for return routability (consumed), the packet
        for the HoA's host otherwise: one that came with a type 2 routing header naming the HoA
        is handed over as the plain packet CN -> HoA (RFC 6275 §11.3.3), anything else as it is.
        A packet with an RH2 naming another address is dropped (None)."""
        nh = pkt[6] if len(pkt) >= 40 else -1
        if nh not in (0, 43, 60, _NH_MH):  # the common case, no decoding: plain data
            if nh >= 0 and bytes(pkt[24:40]) == self.hoa:
                self.note_traffic(pkt[8:24], now)
            return pkt
        try:
            p = decode_ipv6(pkt)
        except ValueError:
            return pkt
        if p.nh == _NH_MH:
            if self.receive(p.src, p.dst, p.payload, p.rh2, now):
                return None
            return None if p.rh2 is not None else pkt
        if p.rh2 is not None:
            if p.rh2 != self.hoa or p.dst != self.coa or len(p.ext) != 1:
                return None
            self.note_traffic(p.src, now)
            return build_ipv6(p.src, self.hoa, p.nh, p.payload, hop_limit=p.hop_limit)
        if p.dst == self.hoa:
            self.note_traffic(p.src, now)
        return pkt

    def datagrams_to_send(self, now):
        out = self._out
        self._out = []
        return out

    def get_timer(self):
        # packets waiting to be sent make the deadline "now": a driver that only sends at its
        # timer still sends them at once (the first HoTI/CoTI need not wait for a retransmission)
        best = self._out_t if self._out else None
        for e in self.entries.values():
            d = e.deadline()
            if d is not None and (best is None or d < best):
                best = d
        return best

    def handle_timer(self, now):
        for e in list(self.entries.values()):
            e.service(now)

    def next_event(self):
        if self._events:
            return self._events.pop(0)
        return None
