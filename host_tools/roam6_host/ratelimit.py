"""Token buckets for what hostile input can make the HA or the CN do (answers, HMAC work).

Sans-IO like the machines that use them: `now` is int ms on the monotonic clock, last argument.

- `TokenBucket(rate_per_s, burst)`: `take(now)` spends one token if there is one; `peek(now)`
  says whether `take` would succeed.
- `SourceLimit(per_rate, per_burst, global_rate, global_burst, max_sources)`: one bucket per
  source key (e.g. (host, port)) AND one global bucket; an action needs a token from both. The
  per-source table is bounded: when it is full, sources whose bucket has refilled (idle ones,
  nothing to remember) are forgotten; a source that still finds no room is governed by the
  global bucket alone. Forgetting can only ever make a source's limit looser, never the global
  one, so rotating source ports or addresses gets no more than the global rate.
"""


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "last")

    def __init__(self, rate_per_s, burst, now=0):
        self.rate = rate_per_s / 1000.0      # tokens per ms
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last = now

    def _refill(self, now):
        dt = now - self.last
        if dt > 0:
            t = self.tokens + dt * self.rate
            self.tokens = t if t < self.burst else self.burst
            self.last = now

    def peek(self, now):
        self._refill(now)
        return self.tokens >= 1.0

    def take(self, now):
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def full_at(self):
        """ms when the bucket is full again if nothing is taken."""
        if self.rate <= 0:
            return self.last
        return self.last + int((self.burst - self.tokens) / self.rate) + 1


class SourceLimit:
    def __init__(self, per_rate, per_burst, global_rate, global_burst, max_sources=4096):
        self.per_rate = per_rate
        self.per_burst = per_burst
        self.glob = TokenBucket(global_rate, global_burst)
        self.max_sources = max_sources
        self.sources = {}                    # key -> TokenBucket
        self.refused = 0                     # takes refused (either bucket empty)

    def _bucket(self, key, now, create):
        b = self.sources.get(key)
        if b is None and create:
            if len(self.sources) >= self.max_sources:
                for k in [k for k, v in self.sources.items() if v.full_at() <= now]:
                    del self.sources[k]
                if len(self.sources) >= self.max_sources:
                    return None              # no room: the global bucket alone decides
            b = self.sources[key] = TokenBucket(self.per_rate, self.per_burst, now)
        return b

    def allow(self, key, now):
        """Would take(key, now) succeed? (spends nothing)"""
        b = self.sources.get(key)
        return (b is None or b.peek(now)) and self.glob.peek(now)

    def take(self, key, now):
        """Spend a token of `key`'s bucket and one of the global bucket; False (nothing spent)
        if either is empty."""
        b = self._bucket(key, now, True)
        if (b is not None and not b.peek(now)) or not self.glob.peek(now):
            self.refused += 1
            return False
        if b is not None:
            b.take(now)
        self.glob.take(now)
        return True
