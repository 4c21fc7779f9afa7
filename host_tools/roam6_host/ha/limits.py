"""What one source, or everybody together, can make the home agent do: the budgets the binding
cache (ha/cache.py) checks. An HA faces the Internet on UDP 4191, so every answer to input that
needs no key, and every piece of HMAC work, is bounded here.

    budget      key           per source        global          spent on
    answers     (host, port)  1/s, burst 1      100/s, b. 100   Binding Errors (status 1 and 2),
                                                                ICMPv6 Parameter Problems
    rejections  host          2/s, burst 10     200/s, b. 200   BUs dropped for an unknown SPI or
                                                                a wrong NAI, and BAs with a status
                                                                >= 128 (146 costs two HMACs)

A source (or, globally, everybody) over the rejection budget has its next BUs dropped BEFORE
the HMAC is computed (rule "budget" in BU_RULES), except BUs for a HoA already bound under the
same SA: a bound MN's refreshes and moves are never throttled by what others send. A
rejection over budget is dropped instead of answered (no second HMAC for a signed 146). The
price of that exception: forged BUs naming a bound MN's own SPI, NAI and HoA cost one HMAC each
(the verify; never the signed answer beyond the budget) - throttling them globally would let the
forger lock that MN out - until their source host has failed FAIL_BURST times: then
ha/sourceblock.py blocks that host (its BUs dropped before the HMAC, in the kernel too), except
BUs from the exact address and port the HoA is bound to. `roam6 bench attack` measures both
(phases wrongkey, wrongkey_own).

Bindings: at most `max_bindings` in all and `max_bindings_per_sa` per credential (SPI) - held
DAD waits count - else BA 130 "insufficient resources" (RFC 6275 §6.1.8). 130 rather than 129
"administratively prohibited": the condition is transient (it ends when a binding of that SA
expires or is deregistered, e.g. an MN that came back with a new HoA after a reboot), and 130
tells the MN to try again later, while 129 says the policy refuses this binding for good.
"""
from ..ratelimit import SourceLimit
from .sourceblock import BAD, NOISY, SourceBlock

ANSWERS = (1, 1, 100, 100)          # per-source rate/s, burst; global rate/s, burst
REJECTIONS = (2, 10, 200, 200)
MAX_BINDINGS = 65536
MAX_BINDINGS_PER_SA = 1


class HALimits:
    def __init__(self, max_bindings=MAX_BINDINGS, max_bindings_per_sa=MAX_BINDINGS_PER_SA,
                 answers=ANSWERS, rejections=REJECTIONS):
        self.max_bindings = max_bindings
        self.max_bindings_per_sa = max_bindings_per_sa
        self.answers = SourceLimit(*answers)
        self.rejections = SourceLimit(*rejections)
        self._by_spi = {}               # {SPI: {HoA}}: what capacity_left let through, re-checked
        self.block = SourceBlock()      # hosts that keep failing (ha/sourceblock.py)

    def answer(self, source, now):
        """May an unauthenticated answer (BE, ICMPv6 error) go to source (transport, host, port)?"""
        if self.answers.take((source[1], source[2]), now):
            return True
        self.block.failure(source[1], NOISY, now, not self.answers.glob.peek(now))
        return False

    def answer_allowed(self, source, now):
        if self.answers.allow((source[1], source[2]), now):
            return True
        self.block.failure(source[1], NOISY, now, not self.answers.glob.peek(now))
        return False

    def failed(self, source, now):
        """A BU from source failed for its key or credential (or was dropped for the source's budget
        or block): counted against its host (ha/sourceblock.py)."""
        self.block.failure(source[1], BAD, now, not self.rejections.glob.peek(now))

    def verify_allowed(self, source, now):
        """Before the HMAC: is this source (and everybody) still within the rejection budget?"""
        return self.rejections.allow(source[1], now)

    def reject(self, source, now):
        """A rejection (drop for SPI/NAI, BA >= 128) from source: spend from its budget; False
        when over it (then the BU is dropped, unanswered)."""
        return self.rejections.take(source[1], now)

    def capacity_left(self, bindings, dad, hoa, spi):
        """May a binding for a new HoA `hoa` under SA `spi` be made? O(bindings of that SA): each
        SA's HoAs are remembered when they pass here and checked against `bindings` (and the
        held DAD waits) each time, so expiries, deregistrations and revocations need no hook."""
        if hoa in bindings or hoa in dad:
            return True
        if len(bindings) + len(dad) >= self.max_bindings:
            return False
        mine = self._by_spi.setdefault(spi, set())
        for h in list(mine):
            b = bindings.get(h)
            if b is not None and b.spi == spi:
                continue
            held = dad.get(h)
            if held is None or held[0].sa.spi != spi:
                mine.discard(h)
        if len(mine) >= self.max_bindings_per_sa:
            return False
        mine.add(hoa)
        return True
