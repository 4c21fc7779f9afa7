"""Sources that keep failing: their BUs dropped before the HMAC, then in the kernel.

The budgets of ha/limits.py bound what the HA ANSWERS; a flood still costs the HA a Python round
per datagram (parse, rules, for a BU naming a bound MN's own SPI an HMAC: `roam6 bench attack`
phases wrongkey, wrongkey_own, be), and that CPU is what delays a legitimate MN's BA on a loaded
host. So each outer source host has a failure bucket (FAIL_RATE/s, FAIL_BURST): every BU that
fails for its key or credential (rules spi, nai, auth; drops for the rejection budget or for this
block) and every answer the answers budget refused spends one. A host that empties it (or, while
everybody together is over the global budget, spends FLOOD_FAILS of it in a burst) is BLOCKED
for HOLD_MS, and each further failure seen from it while blocked that finds the bucket still
empty (it keeps failing faster than FAIL_RATE) extends that:

    level  what the host did                  dropped while blocked
    BAD    BUs with a bad MAC/SPI/NAI         its BUs, before the HMAC (rule budget, ha/bugate.py),
                                              and in the kernel everything it sends to the listener
    NOISY  input the HA answers (BE, ICMPv6)  in the kernel its datagrams other than BUs (its BUs
           beyond the answers budget          still reach the HA: a device whose data outran its
                                              binding must still be able to register)

In the kernel: the shared listeners' filter (ha/listenfilter.py `block_prefix`) drops what a
blocked host sends but a random 1 in KERNEL_SAMPLE, which the HA still sees: the evidence that
keeps the block alive, so the block ends within HOLD_MS (+ the sample's gaps) of the flood's end.

Never blocked: a BU from the outer address AND port its HoA is bound to (a bound MN's refreshes;
they arrive on its own socket, ha/peersocks.py, which carries no filter anyway). What an attacker
gains by spoofing a device's source address: a MOVE of that device to that address (a BU for a
bound HoA from a new address) is dropped while the spoofed flood lasts - an attacker on the path
can drop that BU anyway - and at most HOLD_MS after it: one back-off step of the device (RFC 6275
INITIAL_BINDACK_TIMEOUT, 1 s: its retransmission gets through). Before, such BUs always cost an
HMAC each (ha/limits.py), which is what the flood exploited.

Sans-IO, `now` int ms last. Bounded: at most MAX_HOSTS buckets and blocked hosts.
"""
from ..ratelimit import TokenBucket

NOISY, BAD = 1, 2
FAIL_RATE, FAIL_BURST = 2, 10       # failures per second a host may keep up, and in a burst
FLOOD_FAILS = 3                     # the burst that blocks while a flood is on (`flood`)
HOLD_MS = 1000                      # <= the MN's first back-off step (INITIAL_BINDACK_TIMEOUT)
MAX_HOSTS = 4096
TIMER_MS = 100                      # blocks end on this grain (handle_timer scans the table)
KERNEL_SAMPLE = 16                  # 1 in this many of a blocked host's datagrams still reach the HA


class SourceBlock:
    def __init__(self, hold_ms=HOLD_MS):
        self.hold_ms = hold_ms
        self._buckets = {}              # host -> TokenBucket of failures
        self.blocked = {}               # host -> [level, until ms]
        self.changed = False            # the set of blocked hosts (or a level) changed: kernel filter
        self.blocks = 0                 # times a host was blocked
        self.drops = 0                  # BUs dropped for a block (in the HA; the kernel's: its counters)
        self._next = None               # a lower bound of the earliest `until`
        self._prune_at = 0              # no scan of a full bucket table before this (ms)

    def failure(self, host, level, now, flood=False):
        """`host` failed once (level BAD: a BU's key or credential; NOISY: an answer refused).
        `flood`: everybody together is over the global budget (ha/limits.py): a flood is on, and
        FLOOD_FAILS in a burst are enough (a device's own retransmissions never come 3 at once)."""
        ent = self.blocked.get(host)
        b = self._buckets.get(host)
        if ent is not None and ent[1] > now:
            if b is not None and not b.take(now):   # still failing faster than FAIL_RATE: it holds
                ent[1] = now + self.hold_ms         # (a device's own retransmissions, 1/s, do not)
                if level > ent[0]:
                    ent[0] = level
                    self.changed = True
            return
        if b is None:
            if len(self._buckets) >= MAX_HOSTS:
                if now < self._prune_at:            # (a scan per new host would be the attacker's lever)
                    return
                for k in [k for k, v in self._buckets.items() if v.full_at() <= now and k not in self.blocked]:
                    del self._buckets[k]
                if len(self._buckets) >= MAX_HOSTS * 3 // 4:
                    self._prune_at = now + 1000     # full of recent failers: new hosts wait a second
                if len(self._buckets) >= MAX_HOSTS:
                    return                          # the budgets of ha/limits.py still govern it
            b = self._buckets[host] = TokenBucket(FAIL_RATE, FAIL_BURST, now)
        if (b.take(now) and not (flood and b.tokens <= FAIL_BURST - FLOOD_FAILS)) or len(self.blocked) >= MAX_HOSTS:
            return
        self.blocked[host] = [level, now + self.hold_ms]
        self.blocks += 1
        self.changed = True
        if self._next is None or now + self.hold_ms < self._next:
            self._next = now + self.hold_ms

    def level(self, host, now):
        """0, NOISY or BAD: how `host` is blocked now."""
        ent = self.blocked.get(host)
        if ent is None:
            return 0
        if ent[1] <= now:
            del self.blocked[host]
            self.changed = True
            return 0
        return ent[0]

    def bu_blocked(self, source, binding, now):
        """Drop this BU from `source` (transport, host, port) before its HMAC? Never for a BU from
        where its HoA's `binding` (or None) is bound."""
        if not self.blocked or self.level(source[1], now) != BAD:
            return False
        if binding is not None and binding.transport == source[0] and tuple(binding.peer) == (source[1], source[2]):
            return False
        self.drops += 1
        return True

    def drop_datagram(self, data, transport, peer, bindings, now):
        """The driver, for a datagram on a shared listener from a blocked host: drop it (True)
        before any parsing? As the kernel filter would (BAD: all; NOISY: all but a BU), except
        what comes from the exact peer its inner source HoA is bound to; each drop is evidence."""
        ent = self.blocked.get(peer[0])
        if ent is None:
            return False
        if ent[1] <= now:
            del self.blocked[peer[0]]
            self.changed = True
            return False
        if ent[0] == NOISY and len(data) > 42 and data[6] == 135 and data[40] == 59 and data[42] == 5:
            return False
        b = bindings.get(data[8:24]) if len(data) >= 40 else None
        if b is not None and b.transport == transport and b.peer == peer:
            return False
        self.failure(peer[0], ent[0], now)
        self.drops += 1
        return True

    def get_timer(self):
        return self._next if self.blocked else None

    def handle_timer(self, now):
        if self._next is None or now < self._next:
            return
        gone = [h for h, (_lvl, until) in self.blocked.items() if until <= now]
        for h in gone:
            del self.blocked[h]
        if gone:
            self.changed = True
        self._next = min((until for _lvl, until in self.blocked.values()), default=None)
        if self._next is not None:      # a pass over the table at most every TIMER_MS, however spread
            self._next = max(self._next, now + TIMER_MS)

    def hosts(self, level):
        """The hosts blocked at `level` (for the kernel filter)."""
        return [h for h, (lvl, _u) in self.blocked.items() if lvl == level]
