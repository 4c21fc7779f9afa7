"""`roam6 bench ha --continuity --standby [--replica-ack]`: the active's continuity work against a
real standby (a second process, forked: the other HA host's replication core, ha/replica.py, with
the same SAs, applying every record into its own binding cache) over loopback.

- `--standby`: records go to that standby (as without it they go to a sink socket); the standby
  stamps when it applied each RECORDS message, the active when it sent it (CLOCK_MONOTONIC, one
  host): the standby's lag per message, p50/p99.
- `--replica-ack` (ha.json replica "ack", ha/ack.py): the active flags its messages, the standby
  acks once per pass of its loop, and each batch's BAs are held until the ACK covering that batch's
  last message arrives (as the HA's loop does: it keeps taking BUs meanwhile, and picks ACKs up
  after every batch; at the end it waits for the last ones). BU/s counts until the last BA is
  released; the hold per batch (send of its records -> its ACK) is reported as p50/p99 (of the
  batches acknowledged in time); a batch still unacknowledged after ACK_WAIT_MS (the HA's
  default `ack_wait_ms`) is released then and counted in `ba_timeouts`, as the HA does.
"""
import multiprocessing
import os
import select
import socket
import time

from .replica import ACK_WAIT_MS

KEY = bytes(range(32))


def _ns():
    return time.monotonic_ns()


def _ms():
    return time.monotonic_ns() // 1_000_000


def _standby_main(make_cache, ctl, sock):
    """The standby process: replicate until told to stop, then send back (seq, applied ns) stamps."""
    from .replica import Replica
    cache = make_cache()
    core = Replica(KEY, cache, _ms())
    peer = None
    stamps = []
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    poller.register(ctl.fileno(), select.POLLIN)
    while True:
        for fd, _ev in poller.poll(5):
            if fd == ctl.fileno():
                msg = ctl.recv()
                if msg == "stop":
                    ctl.send(stamps)
                    return
                if msg == "reset":          # a fresh active (a new timed run): a fresh copy
                    cache = make_cache()
                    core = Replica(KEY, cache, _ms())
                    stamps = []
                    ctl.send("reset")
                continue
            for _ in range(256):
                try:
                    data, peer = sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                before = core.peer_next
                core.receive(data, _ms(), 0)
                if core.peer_next != before and core.synced:
                    stamps.append((core.peer_next - 1, _ns()))
        now = _ms()
        if now >= core.get_timer():
            core.handle_timer(now)
        cache.events()                      # (the HA's driver would install routes from these)
        if peer is not None:
            for d in core.datagrams_to_send(now):
                try:
                    sock.sendto(d, peer)
                except OSError:
                    pass


class Standby:
    def __init__(self, make_cache):
        ctx = multiprocessing.get_context("fork")
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.sock.bind(("::1", 0))
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sb = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sb.bind(("::1", 0))
        sb.setblocking(False)
        sb.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.dest = sb.getsockname()[:2]
        self.ctl, child = ctx.Pipe()
        self.proc = ctx.Process(target=_standby_main, args=(make_cache, child, sb), daemon=True)
        self.proc.start()
        sb.close()

    def stop(self):
        stamps = []
        try:
            self.ctl.send("stop")
            if self.ctl.poll(10):
                stamps = self.ctl.recv()
        except (OSError, EOFError):
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.sock.close()
        return stamps


class ActiveSide:
    """Per timed run: the active's Replica (acks wanted or not), its handshake with the standby,
    and the per-batch hook the bench's _drive calls (records out; with acks, BAs held)."""

    def __init__(self, standby, cache, ack):
        from .replica import Replica
        self.sb, self.cache, self.ack = standby, cache, ack
        self.rep = Replica(KEY, cache, _ms(), active=True)
        self.rep.want_acks = ack
        self.sent_ns = {}                   # seq -> when its message left
        self.held = []                      # [(seq, sent ns, [datagrams])]
        self.holds_ms = []
        self.released = 0
        self.timeouts = 0                   # BAs sent after ACK_WAIT_MS without their ACK (as ha/ack.py does)
        self.statuses = {}

    def _out(self):
        for d in self.rep.datagrams_to_send(_ms()):
            try:
                self.sb.sock.sendto(d, self.sb.dest)
            except OSError:
                pass

    def handshake(self, timeout_s=5.0):
        """HELLO -> the standby's SYNC_REQ -> SYNC, until the standby's HELLO says it is ready."""
        self.sb.ctl.send("reset")
        if not self.sb.ctl.poll(timeout_s) or self.sb.ctl.recv() != "reset":
            return False
        while True:                          # what the standby's previous copy said: not for this run
            try:
                self.sb.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self.rep.handle_timer(_ms())
            self._out()
            self._poll(0.02)
            if self.rep.peer_ready:
                return True
        return False

    def _poll(self, wait_s=0.0):
        rep = self.rep
        if wait_s:
            select.select([self.sb.sock], [], [], wait_s)
        for _ in range(256):
            try:
                data = self.sb.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            rep.receive(data, _ms(), 0)
        acked = None
        while True:
            ev = rep.next_event()
            if ev is None:
                break
            if ev[0] == "acked":
                acked = ev[1]
        self._out()                          # SYNC answers
        now = _ns()
        if acked is not None:
            while self.held and ((acked - self.held[0][0]) & 0xFFFFFFFF) < 0x80000000:
                _s, t, outs = self.held.pop(0)
                self.holds_ms.append((now - t) / 1e6)
                self._count(outs)
        limit = now - ACK_WAIT_MS * 1_000_000
        while self.held and self.held[0][1] <= limit:      # the HA's bound: sent anyway, counted
            outs = self.held.pop(0)[2]
            self.timeouts += len(outs)
            self._count(outs)

    def _count(self, outs):
        self.released += len(outs)
        for d, _dest in outs:
            self.statuses[d[46]] = self.statuses.get(d[46], 0) + 1

    def keep(self, records, now):
        """One batch's records to the standby (sent times kept for the lag)."""
        rep = self.rep
        first = rep.seq + 1
        rep.send_records(records, now)
        t = _ns()
        for s in range(first, rep.seq + 1):
            self.sent_ns[s] = t
        self._out()

    def hold(self, outs):
        """--replica-ack: one batch's BAs wait for the ACK of its last message; ACKs read now."""
        self.held.append((self.rep.seq, self.sent_ns.get(self.rep.seq, _ns()), outs))
        self._poll()

    def drain(self, timeout_s=5.0):
        end = time.monotonic() + timeout_s
        while self.held and time.monotonic() < end:
            self._poll(0.005)

    def lag_ms(self, stamps):
        return sorted((t - self.sent_ns[s]) / 1e6 for s, t in stamps if s in self.sent_ns)


def pct(xs, p):
    if not xs:
        return None
    return round(xs[min(len(xs) - 1, int(len(xs) * p / 100))], 3)


def available():
    return hasattr(os, "fork")
