"""The binding update list entry for the home registration: all its rules, in this one file.

Theory of operation (RFC 6275 §11.7.1, §11.7.3, §11.8; RFC 4285 §6-§8; RFC 5555 §4.1, §6):
the mobile node keeps exactly one home registration. The caller feeds it what happened -- the
care-of address changed (`move`), the node is back on its home link (`home`), the link went away
(`detach`), the HA said it lost the binding (`lost`: a Binding Refresh Request or Binding Error),
a Binding Acknowledgement arrived (`receive_ba`, already authenticated by the caller) or a timer
fired (`handle_timer`) -- and the entry answers with BU requests to send (`bu_to_send`: tuples
(seq, lifetime_units, coa, timestamp, dereg); coa is the HoA for a deregistration, timestamp the
64-bit NTP value or None without replay protection), log events (`next_event`), a deadline
(`get_timer`) and, when the sequence reservation moved, a small state to write before the BU goes
out (`state_to_save`). It never touches a socket or a clock: `now` is
an int of milliseconds from the driver's monotonic clock, always the last positional argument.

Every state change is a row of the transition table (_TABLE) below. An input the current state has no row for is
an illegal step: ignored and counted in `ignored`, never an exception (network input triggers
most of them: a BRR while detached, a BA nobody waits for).

Events (`next_event()`), kind first, then the fields in this order:
    ("bu", seq, lifetime_s, coa)              a BU went out (coa: the HoA for a deregistration)
    ("ba", status, seq, bu_ba_ms, reg_ms)     a BA counted: ms since its BU, since the attempt began
    ("lost", why)                             why: "brr" | "be", the HA has no binding for us
    ("registered", coa, lifetime_s, refresh_ms)
    ("deregistered", answered)                answered: False when the HA never answered
    ("error", reason, status)                 the HA refused the BU (status >= 128, not 128/130/
                                              135/144): the MN tries again every MAX_BINDACK_TIMEOUT

Rules held here:
- A new BU goes out at once on a care-of address change (no timer), with a fresh sequence number
  and the back-off restarted.
- Retransmission: InitialBindackTimeoutFirstReg (1.5 s) for a new home registration -- none
  yet, or after deregistering at home, an expired binding or one the HA lost: the HA then runs
  DAD for the HoA before it answers (§10.4.1, §11.8) -- INITIAL_BINDACK_TIMEOUT (1 s) otherwise;
  doubled each time up to MAX_BINDACK_TIMEOUT (32 s), then kept at that rate. Every
  retransmission has a larger sequence number (§11.8) and a fresh timestamp.
- Refresh before expiry: at the Binding Refresh Advice interval when the BA has one, else at
  _REFRESH_NUM/_REFRESH_DEN of the granted lifetime; sooner when the HA's NAT Detection refresh time
  asks for it (RFC 5555 keepalives are BU refreshes). The lifetime counts from when the BU was sent.
- Deregistration (lifetime 0) when back home; BA 133 (no binding) also ends it; after
  _DEREG_TRIES unanswered BUs the MN gives up and counts itself deregistered.
- Sequence numbers survive reboots: the state file holds a reservation `seq`; every number used is
  below it, so a reboot resumes from it without writing the file for every BU.
- BA status 135: take the HA's last accepted number and send again at once. 144: take the HA's
  seconds as the clock for RFC 4285 timestamps and send again at once. 128/130 (unspecified,
  insufficient resources): the retransmission back-off goes on. Every other rejection (146
  authentication failed, 129, 131-134, 136-143, 145, 147...) is reported ("error") and the BU is
  tried again at the maximum back-off, MAX_BINDACK_TIMEOUT, for as long as the rejections last:
  never final, because an on-path attacker can make the HA sign one (a tampered copy of our BU
  gets a genuine 146) and an operator can fix the HA's side (docs/PROTOCOL-NOTES.md §11.11). A
  good BA ends it at once. A deregistration refused that way (other than 146) counts as done.
- Inbound traffic cannot drive BUs (nor state-file writes, which follow the sequence numbers
  used): every BU obeys MAX_UPDATE_RATE (RFC 6275 §11.8), at most 3 in any second (a BU over
  the rate is deferred to the retransmission timer); a Binding Refresh Request
  (unauthenticated under RFC 4285) is answered only while bound and once less than half the
  requested lifetime is left; a Binding Error only while bound, once the binding is
  MAX_BINDACK_TIMEOUT old (docs/PROTOCOL-NOTES.md §11.12). Ignored ones are counted, not logged.
- A BA counts only if its sequence number is one of the BUs sent since the last care-of address
  change (a late BA for an older address must not mark the new one bound) and, with timestamps,
  if it echoes the timestamp of that BU exactly (RFC 4285 §6: otherwise it is silently dropped).
"""
from roam6.compat import const

_INITIAL_BINDACK_TIMEOUT_FIRST_REG_MS = const(1500)
_INITIAL_BINDACK_TIMEOUT_MS = const(1000)
_MAX_BINDACK_TIMEOUT_MS = const(32000)
_RATE_MS = const(1000)            # MAX_UPDATE_RATE: at most 3 BUs in any window this long
_REFRESH_NUM = const(3)           # refresh at 3/4 of the granted lifetime without advice
_REFRESH_DEN = const(4)
_DEREG_TRIES = const(7)           # lifetime-0 BUs before giving up (1.5+2+4+8+16+32 s)
_MAX_RESYNCS = const(3)           # 135/144 answered at once per attempt; then the back-off rules
_SEQ_BLOCK = const(16)            # sequence numbers reserved per state-file write
_MAX_LIFETIME_UNITS = const(0xFFFF)
_NTP_UNIX_DELTA = const(2208988800)   # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)

# States and events are small ints, and every constant here is private (`_NAME = const(..)`): folded
# into the code, so none of them is a module attribute or a qstr on the board's heap. Tests name the
# states they check in tests/firmware/support.py (class BUL, a mirror of these values).
_S_DETACHED = const(0)        # no care-of address, no BU outstanding
_S_REGISTERING = const(1)     # BU outstanding, no binding known at the HA
_S_BOUND = const(2)           # binding accepted; waiting for the refresh time
_S_REFRESHING = const(3)      # binding still valid, a newer BU outstanding (refresh or new CoA)
_S_DEREGISTERING = const(4)   # lifetime-0 BU outstanding, at home
_S_HOME = const(5)            # at home, no binding
_S_REVOKED = const(6)         # the HA revoked the binding (RFC 5846 BRI, node/revoke.py): silent
                              # until the hold-down (retransmit_at) ends, every other input ignored

# events
_MOVE = const(0)           # the care-of address changed, or the link came back
_GO_HOME = const(1)        # an address of the home prefix is the best one
_DETACH = const(2)         # link down, no usable address
_LOST = const(3)           # BRR or Binding Error from the HA
_BA_OK = const(4)          # status < 128 (or 133 to a deregistration)
_BA_SEQ = const(5)         # 135 sequence number out of window
_BA_TIME = const(6)        # 144 timestamp mismatch
_BA_AUTH = const(7)        # 146 authentication failed
_BA_RETRY = const(8)       # 128, 130: transient, keep the back-off going
_BA_REJECT = const(9)      # any other status >= 128 (129, 131-134, 136-143, 145, 147...)
_TIMEOUT = const(10)       # retransmission timer
_REFRESH = const(11)       # refresh time reached
_EXPIRE = const(12)        # the granted lifetime ran out with no new BA
_GIVE_UP = const(13)       # retransmission timer after _DEREG_TRIES unanswered lifetime-0 BUs

# actions
_SEND = const(0)           # new BU now, back-off restarted (new care-of address / refresh)
_RESEND = const(1)         # retransmission: new seq, doubled timer
_RESYNC_SEQ = const(2)     # 135: adopt the HA's number, send again at once
_RESYNC_TIME = const(3)    # 144: adopt the HA's clock, send again at once
_DEREG = const(4)          # lifetime-0 BU now
_BOUND = const(5)          # binding made: refresh timer
_DONE_HOME = const(6)      # deregistered
_STOP = const(7)           # timers off
_HOLD = const(8)           # hard rejection: report, try again at MAX_BINDACK_TIMEOUT
_KEEP = const(9)           # binding gone, the BU already out keeps its back-off
_BACKOFF = const(10)       # transient reject: the armed retransmission timer resends
_ABANDON = const(11)       # the HA never answered the deregistration: its binding will expire

# (state, event) -> (next state, action), RFC 6275 §11.7.1/§11.8, RFC 4285 §8; pairs not listed
# are illegal steps (ignored, counted). Read "A << 4 | B" as the pair (A, B): packed into small
# ints at compile time, the table costs no tuples on the heap.
_TABLE = {
    _S_DETACHED << 4 | _MOVE: _S_REGISTERING << 4 | _SEND,
    _S_DETACHED << 4 | _GO_HOME: _S_DEREGISTERING << 4 | _DEREG,

    _S_HOME << 4 | _MOVE: _S_REGISTERING << 4 | _SEND,
    _S_HOME << 4 | _DETACH: _S_DETACHED << 4 | _STOP,

    _S_REGISTERING << 4 | _MOVE: _S_REGISTERING << 4 | _SEND,
    _S_REGISTERING << 4 | _GO_HOME: _S_DEREGISTERING << 4 | _DEREG,
    _S_REGISTERING << 4 | _DETACH: _S_DETACHED << 4 | _STOP,
    _S_REGISTERING << 4 | _TIMEOUT: _S_REGISTERING << 4 | _RESEND,
    _S_REGISTERING << 4 | _BA_OK: _S_BOUND << 4 | _BOUND,
    _S_REGISTERING << 4 | _BA_SEQ: _S_REGISTERING << 4 | _RESYNC_SEQ,
    _S_REGISTERING << 4 | _BA_TIME: _S_REGISTERING << 4 | _RESYNC_TIME,
    _S_REGISTERING << 4 | _BA_RETRY: _S_REGISTERING << 4 | _BACKOFF,
    _S_REGISTERING << 4 | _BA_AUTH: _S_REGISTERING << 4 | _HOLD,
    _S_REGISTERING << 4 | _BA_REJECT: _S_REGISTERING << 4 | _HOLD,

    _S_BOUND << 4 | _REFRESH: _S_REFRESHING << 4 | _SEND,
    _S_BOUND << 4 | _MOVE: _S_REFRESHING << 4 | _SEND,
    _S_BOUND << 4 | _LOST: _S_REGISTERING << 4 | _SEND,
    _S_BOUND << 4 | _GO_HOME: _S_DEREGISTERING << 4 | _DEREG,
    _S_BOUND << 4 | _DETACH: _S_DETACHED << 4 | _STOP,
    _S_BOUND << 4 | _EXPIRE: _S_REGISTERING << 4 | _SEND,

    _S_REFRESHING << 4 | _MOVE: _S_REFRESHING << 4 | _SEND,
    _S_REFRESHING << 4 | _TIMEOUT: _S_REFRESHING << 4 | _RESEND,
    _S_REFRESHING << 4 | _EXPIRE: _S_REGISTERING << 4 | _KEEP,
    _S_REFRESHING << 4 | _BA_OK: _S_BOUND << 4 | _BOUND,
    _S_REFRESHING << 4 | _BA_SEQ: _S_REFRESHING << 4 | _RESYNC_SEQ,
    _S_REFRESHING << 4 | _BA_TIME: _S_REFRESHING << 4 | _RESYNC_TIME,
    _S_REFRESHING << 4 | _BA_RETRY: _S_REFRESHING << 4 | _BACKOFF,
    _S_REFRESHING << 4 | _BA_AUTH: _S_REFRESHING << 4 | _HOLD,
    _S_REFRESHING << 4 | _BA_REJECT: _S_REFRESHING << 4 | _HOLD,
    _S_REFRESHING << 4 | _GO_HOME: _S_DEREGISTERING << 4 | _DEREG,
    _S_REFRESHING << 4 | _DETACH: _S_DETACHED << 4 | _STOP,

    _S_DEREGISTERING << 4 | _MOVE: _S_REGISTERING << 4 | _SEND,
    _S_DEREGISTERING << 4 | _TIMEOUT: _S_DEREGISTERING << 4 | _RESEND,
    _S_DEREGISTERING << 4 | _GIVE_UP: _S_HOME << 4 | _ABANDON,
    _S_DEREGISTERING << 4 | _BA_OK: _S_HOME << 4 | _DONE_HOME,
    _S_DEREGISTERING << 4 | _BA_SEQ: _S_DEREGISTERING << 4 | _RESYNC_SEQ,
    _S_DEREGISTERING << 4 | _BA_TIME: _S_DEREGISTERING << 4 | _RESYNC_TIME,
    _S_DEREGISTERING << 4 | _BA_RETRY: _S_DEREGISTERING << 4 | _BACKOFF,
    _S_DEREGISTERING << 4 | _BA_AUTH: _S_DEREGISTERING << 4 | _HOLD,
    _S_DEREGISTERING << 4 | _BA_REJECT: _S_HOME << 4 | _DONE_HOME,
    _S_DEREGISTERING << 4 | _DETACH: _S_DETACHED << 4 | _STOP,

    _S_REVOKED << 4 | _TIMEOUT: _S_REGISTERING << 4 | _SEND,     # hold-down over: a first registration
}

# The machine reads a flat byte table (index state << 4 | event, 0xFF = ignored): 112 bytes
# instead of a 42-entry dict on the heap; the dict above stays the readable source of it. (t, n:
# names the firmware has interned already; a module-level name of its own is a qstr for good)
t = bytearray(b"\xff" * 112)
for n in _TABLE:
    t[n] = _TABLE[n]
_TABLE = t
del t, n

_STATUS_NO_BINDING = const(133)
_STATUS_SEQ = const(135)
_STATUS_TIME = const(144)
_STATUS_AUTH = const(146)


def seq_after(a, b):
    """True if a is 'greater' than b modulo 2**16 (RFC 6275 §9.5.1)."""
    return 0 < ((a - b) & 0xFFFF) < 0x8000


class HomeBinding:
    """Binding update list entry for the home registration (one per MN). On a board its subclass
    roam6.core.registration.Registration is the one object: no second instance on the heap."""

    # MAX_BINDACK_TIMEOUT (RFC 6275 §12), a class attribute: config.json "max_bindack_timeout" (a
    # bench's shorter back-off) changes it in roam6.node.app; no attribute per instance
    max_bindack_ms = _MAX_BINDACK_TIMEOUT_MS

    def __init__(self, lifetime_s=600, timestamps=True, seq=None, ntp_offset_ms=0, hoa=None):
        units = (lifetime_s + 3) // 4
        self.lifetime_units = max(1, min(_MAX_LIFETIME_UNITS, units))
        self.hoa = hoa
        # the state file's reservation: every number used so far is below it
        if seq is None:
            seq = 0
        self.seq = seq & 0xFFFF                # next number to use
        self.seq_reserved = self.seq           # forces a save before the first BU
        self._dirty = False
        self.ntp_offset_ms = ntp_offset_ms     # NTP time in ms = now + ntp_offset_ms
        self.last_ts = 0 if timestamps else None   # the last RFC 4285 timestamp; None: none sent
        self.state = _S_DETACHED
        self.coa = None
        self.first_reg = True                  # no binding at the HA: InitialBindackTimeoutFirstReg
        self.timeout_ms = 0
        self.retransmit_at = None
        self.refresh_at = None
        self.expire_at = None
        self.sent = []                         # [(seq, sent_at, timestamp)] of the current attempt
        self.attempt_started = 0
        self.tries = 0                         # BUs sent in the current attempt
        self.rate_win = [-_RATE_MS] * 3        # MAX_UPDATE_RATE: the last 3 BUs' send times
        self.rate_i = 0                        # ... the oldest of them
        self.resyncs = 0                       # 135/144 answered at once in this attempt
        self._moved_since_bound = True
        self.ignored = 0                       # illegal steps (inputs the state has no row for)
        self._out = []
        self._events = []

    # ---- inputs -------------------------------------------------------------------------------
    def move(self, coa, now):
        """The care-of address changed (or the link came back with one): BU at once."""
        self.coa = coa
        self._fire(_MOVE, now)

    def home(self, now):
        self.coa = self.hoa
        self._fire(_GO_HOME, now)

    def detach(self, now):
        self._fire(_DETACH, now)

    def lost(self, why, now):
        """The HA sent a Binding Refresh Request or a Binding Error (why: "brr" | "be"): it has no
        (valid) binding. Neither is authenticated (RFC 4285): each counts only while bound, a BRR
        once less than half the requested lifetime is left, a BE once the binding is
        MAX_BINDACK_TIMEOUT old (by the requested lifetime); else it is ignored and counted."""
        half = self.lifetime_units * 2000
        if self.state != _S_BOUND or self.expire_at - now > (
                half if why == "brr" else half + half - _MAX_BINDACK_TIMEOUT_MS):
            self.ignored += 1
            return
        self._events.append(("lost", why))
        self._fire(_LOST, now)

    def receive_ba(self, status, seq, lifetime_units, refresh_units, timestamp, nat_refresh_s, now):
        """An authenticated BA (refresh_units, timestamp, nat_refresh_s: None when absent). Returns
        False when it was dropped (not for an outstanding BU)."""
        state = self.state
        if state != _S_REGISTERING and state != _S_REFRESHING and state != _S_DEREGISTERING:
            self.ignored += 1
            return False
        match = None
        if status == _STATUS_SEQ:
            match = self.sent[-1] if self.sent else None   # carries the HA's number, not ours
        else:
            for item in self.sent:
                if item[0] == seq:
                    match = item
                    break
        if match is None:
            return False
        if match[2] is not None:
            if timestamp is None:
                return False
            if status == _STATUS_TIME:
                if (timestamp & 0xFFFFFFFF) != (match[2] & 0xFFFFFFFF):
                    return False
            elif timestamp != match[2]:
                return False
        ba = (status, seq, lifetime_units, refresh_units, timestamp, nat_refresh_s, match)
        self._events.append(("ba", status, seq, now - match[1], now - self.attempt_started))
        # the event the status stands for (RFC 6275 §6.1.8, RFC 4285 §8)
        if status < 128 or (status == _STATUS_NO_BINDING and state == _S_DEREGISTERING):
            event = _BA_OK
        elif status == _STATUS_SEQ:
            event = _BA_SEQ
        elif status == _STATUS_TIME:
            event = _BA_TIME
        elif status == _STATUS_AUTH:
            event = _BA_AUTH
        elif status == 128 or status == 130:
            event = _BA_RETRY
        else:
            event = _BA_REJECT
        self._fire(event, now, ba)
        return True

    def handle_timer(self, now):
        if self.retransmit_at is not None and now >= self.retransmit_at:
            self.retransmit_at = None
            if self.state == _S_DEREGISTERING and self.tries >= _DEREG_TRIES:
                self._fire(_GIVE_UP, now)
            else:
                self._fire(_TIMEOUT, now)
        if self.expire_at is not None and now >= self.expire_at:
            self.expire_at = None
            self._fire(_EXPIRE, now)
        if self.refresh_at is not None and now >= self.refresh_at:
            self.refresh_at = None
            self._fire(_REFRESH, now)

    # ---- outputs ------------------------------------------------------------------------------
    def get_timer(self):
        t = None
        for d in (self.retransmit_at, self.refresh_at, self.expire_at):
            if d is not None and (t is None or d < t):
                t = d
        return t

    def bu_to_send(self):
        out = self._out
        if out:
            self._out = []
        return out

    def next_event(self):
        if self._events:
            return self._events.pop(0)
        return None

    def state_to_save(self):
        """The dict to write (atomically) BEFORE sending the BUs just handed out, or None."""
        if not self._dirty:
            return None
        self._dirty = False
        return {"seq": self.seq_reserved, "ntp_offset_ms": self.ntp_offset_ms}

    @property
    def bound(self):
        """True while the HA holds a binding for our current care-of address (data may flow)."""
        return self.state == _S_BOUND or (self.state == _S_REFRESHING and self.expire_at is not None
                                       and not self._moved_since_bound)

    def expiry(self):
        """When the HA's binding for our current care-of address ends (in `now` ms), or None while
        it holds none (route optimisation gives a CN no more lifetime than this, RFC 6275
        §11.7.2)."""
        return self.expire_at if self.bound else None

    # ---- the machine --------------------------------------------------------------------------
    def _fire(self, event, now, ba=None):
        """One step of the table; ba: the accepted BA's fields (receive_ba) for its actions."""
        v = _TABLE[self.state << 4 | event]
        if v == 0xFF:
            self.ignored += 1
            return
        self.state = v >> 4
        action = v & 15
        if action == _SEND:
            if event == _MOVE or event == _LOST or event == _EXPIRE:
                self._moved_since_bound = True
                if event != _MOVE:
                    self.expire_at = None
                    self.first_reg = True       # the HA holds no binding now: it runs DAD first
            elif event == _REFRESH:
                self._moved_since_bound = False
            self.refresh_at = None
            self._emit_bu(False, now, True)
        elif action == _RESEND:
            self.timeout_ms = min(self.timeout_ms * 2, self.max_bindack_ms)
            if len(self.sent) >= 8:
                self.sent = self.sent[-4:]   # bounded memory; very late BAs no longer count
            self._emit_bu(self.state == _S_DEREGISTERING, now)
        elif action == _RESYNC_SEQ or action == _RESYNC_TIME:
            if action == _RESYNC_SEQ:
                self.seq = (ba[1] + 1) & 0xFFFF
                self.seq_reserved = self.seq      # save the new base before using it
            elif self.last_ts is not None:
                t = ((ba[4] >> 32) & 0xFFFFFFFF) * 1000 + 500 - now
                if abs(t - self.ntp_offset_ms) > 1000:
                    self._dirty = True            # saved only when the clock really moved: a
                self.ntp_offset_ms = t            # 144 to a replayed BU of ours writes nothing
                self.last_ts = 0
            self.resyncs += 1
            if self.resyncs <= _MAX_RESYNCS:     # else the armed retransmission timer sends
                self._emit_bu(self.state == _S_DEREGISTERING, now)
        elif action == _DEREG:
            self.refresh_at = self.expire_at = None
            self._emit_bu(True, now, True)
        elif action == _BOUND:
            _, _, lifetime_units, refresh_units, _, nat_s, match = ba
            self.first_reg = False
            self._moved_since_bound = False
            self.retransmit_at = None
            self.sent = []
            granted_ms = lifetime_units * 4000
            self.expire_at = match[1] + granted_ms      # counted from when that BU was sent
            if refresh_units and 0 < refresh_units * 4000 < granted_ms:
                interval = refresh_units * 4000
            else:
                interval = granted_ms * _REFRESH_NUM // _REFRESH_DEN
            if nat_s is not None and 0 < nat_s < 0xFFFFFFFF and nat_s * 1000 < interval:
                interval = nat_s * 1000
            self.refresh_at = now + max(interval, 1000)
            self._events.append(("registered", self.coa, lifetime_units * 4, self.refresh_at - now))
        elif action == _DONE_HOME or action == _ABANDON:
            self.retransmit_at = None
            self.first_reg = True
            self.sent = []
            self._events.append(("deregistered", action == _DONE_HOME))
        elif action == _STOP:
            self.retransmit_at = self.refresh_at = None
            self.sent = []
        elif action == _HOLD:
            # not final (an attacker can have the HA sign one): the same BU state, the longest
            # back-off; the binding the HA may still hold keeps its expiry (REFRESHING)
            self.timeout_ms = self.max_bindack_ms
            self.retransmit_at = now + self.timeout_ms
            reason = "authentication failed" if event == _BA_AUTH else "registration refused"
            self._events.append(("error", reason, ba[0]))
        elif action == _KEEP:
            self.expire_at = None
            self._moved_since_bound = True
            self.first_reg = True
        # _BACKOFF: nothing; the armed retransmission timer resends

    def _emit_bu(self, home, now, start=False):
        """One BU (home: a deregistration, lifetime 0 from the HoA); start: a new attempt."""
        if start:                           # a new CoA, refresh or deregistration: back-off anew
            if self.first_reg:
                self.timeout_ms = _INITIAL_BINDACK_TIMEOUT_FIRST_REG_MS
            else:
                self.timeout_ms = _INITIAL_BINDACK_TIMEOUT_MS
            self.sent = []
            self.tries = 0
            self.resyncs = 0
            self.attempt_started = now
        # MAX_UPDATE_RATE (RFC 6275 §11.8): at most 3 BUs in any _RATE_MS, a window of the last 3
        # send times (a GCRA's one-a-second after a burst held back roams 0.4 s apart); a BU over
        # it waits for the retransmission timer (no number used yet)
        w = self.rate_win
        t = w[self.rate_i] + _RATE_MS       # when the oldest of the last 3 leaves the window
        if t > now:
            self.retransmit_at = t
            return
        w[self.rate_i] = now
        self.rate_i = (self.rate_i + 1) % 3
        # the sequence number: at or past the reservation moves it on (the driver saves it first)
        seq = self.seq
        if not seq_after(self.seq_reserved, seq):
            self.seq_reserved = (seq + _SEQ_BLOCK) & 0xFFFF
            self._dirty = True
        self.seq = (seq + 1) & 0xFFFF
        ts = None
        if self.last_ts is not None:        # RFC 4285 timestamp: NTP seconds . fraction
            t = now + self.ntp_offset_ms
            ts = (((t // 1000) & 0xFFFFFFFF) << 32) | (((t % 1000) << 32) // 1000)
            if ts <= self.last_ts:
                ts = self.last_ts + 1
            self.last_ts = ts
        lifetime_units = 0 if home else self.lifetime_units
        self.tries += 1
        self.sent.append((seq, now, ts))
        self.retransmit_at = now + self.timeout_ms
        coa = self.hoa if home else self.coa
        self._out.append((seq, lifetime_units, coa, ts, home))
        self._events.append(("bu", seq, lifetime_units * 4, coa))


def ntp_offset_ms(t, now):
    """The offset that maps the driver's `now` to NTP milliseconds, from t, a Unix wall clock's
    seconds."""
    return int((t + _NTP_UNIX_DELTA) * 1000) - now
