"""BAs held until the hot standby has the records behind them: ha.json replica "ack": true
(docs/ARCHITECTURE.md "HA continuity", PROTOCOL-NOTES.md §14.3). Sans-IO, int ms.

Without it the active sends a BA right after the record leaves for the standby (one sendto, no
round trip): if only the active's home link dies in that instant the standby never gets the
record, and after its takeover it forwards to the device's previous care-of address until the
device's next BU. With it the datagrams the cache queued in one flush of the HA's loop (the BAs
of that pass's BUs) wait for the standby's cumulative ACK of the last RECORDS message sent for
that pass (replica.py type 5): one home-link round trip per pass, not per BU (the acks are
batched on both sides: the active's records of a pass go in few messages, the standby acks once
per pass of its loop).

Bounded: after `wait_ms` (replica "ack_wait_ms", default 50) without the ACK the datagrams leave
anyway and are counted (`timeouts`). Why send at all: a BA that never comes makes the device
retransmit after 1 s (RFC 6275 INITIAL_BINDACK_TIMEOUT) and, the standby being gone or cut off,
the next BU would wait the same; the device's binding on the active is real, only its copy is
in doubt, which is what asynchronous replication gave before. 50 ms is far above the standby's
lag on a home link (ms, README) and far below the device's 1 s retransmission. A standby that is
not there (no authentic message for 500 ms) or says it holds no whole copy (its HELLO) acks
nothing: nothing is held then (`unheld`), the BAs go at once as without the option.
"""
from collections import deque

_HALF = 0x80000000


def _covered(seq, acked):
    """Is stream sequence number `seq` at or below `acked` (modulo 2^32)?"""
    return ((acked - seq) & 0xFFFFFFFF) < _HALF


class BaHold:
    def __init__(self, wait_ms):
        self.wait_ms = wait_ms
        self._held = deque()        # (seq, deadline, [(datagram, destination)]) in seq order
        self.held = 0               # datagrams held (then released by an ACK or a timeout)
        self.acked = 0              # of those, released by the standby's ACK
        self.timeouts = 0           # of those, sent after wait_ms without an ACK
        self.unheld = 0             # datagrams sent at once: no standby to wait for
        self.wait_ms_max = 0        # the longest an ACK took (ms)

    def hold(self, outs, seq, now):
        """The datagrams of one flush, behind RECORDS message `seq`: kept until acked(seq)."""
        self._held.append((seq, now + self.wait_ms, outs))
        self.held += len(outs)

    def acked_to(self, seq, now):
        """The standby acknowledged everything up to `seq`: the datagrams free to go, in order."""
        out = []
        held = self._held
        while held and _covered(held[0][0], seq):
            _s, deadline, outs = held.popleft()
            out.extend(outs)
            self.acked += len(outs)
            waited = now - (deadline - self.wait_ms)
            if waited > self.wait_ms_max:
                self.wait_ms_max = waited
        return out

    def get_timer(self):
        return self._held[0][1] if self._held else None

    def handle_timer(self, now):
        """The datagrams whose wait is over: sent anyway (counted)."""
        out = []
        held = self._held
        while held and held[0][1] <= now:
            outs = held.popleft()[2]
            out.extend(outs)
            self.timeouts += len(outs)
        return out

    def release_all(self):
        """Everything still held, at once (the HA stops being the active one, or stops)."""
        out = []
        while self._held:
            out.extend(self._held.popleft()[2])
        return out

    def stats(self):
        return {"held": self.held, "acked": self.acked, "timeouts": self.timeouts, "unheld": self.unheld,
                "waiting": sum(len(h[2]) for h in self._held), "wait_ms_max": self.wait_ms_max}
