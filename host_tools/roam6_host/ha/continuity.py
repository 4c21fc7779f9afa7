"""What keeps the bindings alive when a home agent process or host goes away: the journal
(ha/journal.py), the hot standby's replication (ha/replica.py) and taking over the data plane
(routes, proxy ND, unsolicited NAs). ha/driver.py calls in through a few hooks:

- `Continuity.restore(now, wall)` in `HomeAgent.open`, before any socket is bound: the journal's
  bindings go into the cache; on the active their routes and proxies are installed and the home
  link hears an unsolicited NA for each HoA (so the data plane is up before the first packet).
- `changed(ev, now, wall)` from `HomeAgent._apply_events` for every binding event, and `flush(now,
  wall)` at its end, BEFORE the BAs leave: the records are appended to the journal (one write) and
  sent to the standby (one sealed message per MAX_PAYLOAD). The driver takes the BUs of every
  socket ready in one poll before it applies events, so a loaded HA pays the write and the HMAC
  once per pass of its loop.
- `handlers()`, `get_timer()`, `handle_timer(now)` join the HA's epoll loop (replication socket,
  address watch, sync and hello timers).

ha.json fields (CONTRACTS.md §6): "journal" (path, default null: no journal), "journal_max"
(frames in the log before it is compacted into the snapshot, default 10000), "journal_sync"
(fdatasync per change, default false), "replica" (the hot standby pair, default null).
"""
import fcntl
import os
import socket
import struct

from ..errors import UserError
from .journal import Journal, JournalCorrupt
from .record import BOUND, REMOVED, encode_binding

FIELDS = {"journal": None, "journal_max": 10000, "journal_sync": False, "replica": None}
SIOCGIFHWADDR = 0x8927
ALL_NODES = "ff02::1"
NA_CHUNK = 128                   # unsolicited NAs per pass of the HA's loop


def parse_fields(c, d, source, base_dir):
    """ha.json's continuity fields into the HAConfig `c` (d: the file's fields with defaults)."""
    j = d.get("journal")
    if j is not None and (not isinstance(j, str) or not j or any(ch < " " for ch in j)):
        raise UserError("%s: field 'journal' must be a path or null, got %r" % (source, j),
                        hint="e.g. \"/var/lib/roam6/ha.journal\" (a folder the HA may write)")
    c.journal = os.path.join(base_dir, j) if j else None
    m = d.get("journal_max", 10000)
    if not isinstance(m, int) or isinstance(m, bool) or not 10 <= m <= 10_000_000:
        raise UserError("%s: field 'journal_max' must be an integer from 10 to 10000000, got %r" % (source, m),
                        hint="how many changes the log holds before it is compacted")
    c.journal_max = m
    s = d.get("journal_sync", False)
    if not isinstance(s, bool):
        raise UserError("%s: field 'journal_sync' must be true or false" % source, hint="fdatasync per change")
    c.journal_sync = s
    r = d.get("replica")
    if r is None:
        c.replica = None
    else:
        from .replica import parse_replica
        c.replica = parse_replica(r, source, base_dir)


def hwaddr(ifname):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        return fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, struct.pack("256s", ifname.encode()[:15]))[18:24]
    finally:
        s.close()


def unsolicited_na(ifname, hoas):
    """An unsolicited Neighbor Advertisement (Override, target link-layer address: this host's
    home-link MAC) to all nodes for each HoA (RFC 4861 §7.2.6; RFC 6275 §10.4.1): the home link's
    neighbour caches point at this host at once (a takeover: another host answered before)."""
    if not hoas:
        return 0
    mac = hwaddr(ifname)
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex(ifname))
        sent = 0
        dest = (ALL_NODES, 0, 0, socket.if_nametoindex(ifname))
        for hoa in hoas:
            # type 136, code 0, checksum (kernel), flags: Override (no Router, no Solicited)
            na = struct.pack(">BBHI16sBB6s", 136, 0, 0, 0x20000000, hoa, 2, 1, mac)
            try:
                s.sendto(na, dest)
                sent += 1
            except OSError:
                pass
        return sent
    finally:
        s.close()


class Continuity:
    def __init__(self, ha):
        self.ha = ha                 # the HomeAgent (driver)
        cfg = ha.cfg
        self.journal = Journal(cfg.journal, cfg.journal_max, cfg.journal_sync) if cfg.journal else None
        self.replica = None
        if cfg.replica is not None:
            from .replica import ReplicaLink
            self.replica = ReplicaLink(self, cfg.replica)
        self.applying = False        # records from the peer being applied: not sent back
        self._to_journal = []        # records changed() queued for flush()
        self._to_peer = []
        self._na_queue = []          # HoAs whose unsolicited NA is still to go out (announce)
        self._na_sent = 0
        self._with_chunk = None      # announce(with_chunk): called with each chunk after its NAs
        self.hold = None             # ack.BaHold: replica "ack", BAs wait for the standby's ACK
        self._pending_seq = None     # the last RECORDS message sent since the last hold_bas()
        if cfg.replica is not None and getattr(cfg.replica, "ack", False):
            from .ack import BaHold
            self.hold = BaHold(cfg.replica.ack_wait_ms)

    @property
    def active(self):
        return self.replica is None or self.replica.active

    # ---- start ------------------------------------------------------------------------------
    def restore(self, now, wall):
        """The journal's bindings into the cache (HomeAgent.open, before sockets are bound)."""
        if self.journal is None:
            if self.replica is not None:
                self.replica.open(now)
            return
        log = self.ha.log
        try:
            state, warnings = self.journal.load()
        except JournalCorrupt as exc:
            log("error", reason="journal refused, the HA starts with no bindings: %s" % exc)
            try:
                self.journal.set_aside()
            except OSError as exc2:
                raise UserError("cannot move the damaged journal aside: %s" % exc2.strerror,
                                hint="remove %s and %s.log" % (self.journal.path, self.journal.path)) from None
            state, warnings = {}, []
        except OSError as exc:
            raise UserError("cannot read the journal %s (field 'journal'): %s" % (self.journal.path, exc.strerror),
                            hint="the HA must be able to read and write that folder") from None
        for w in warnings:
            log("warning", reason=w)
        restored = sum(1 for rec in state.values() if self.ha.cache.apply(rec, now, wall))
        try:
            self.journal.start(self.ha.cache.snapshot(now, wall))
        except OSError as exc:
            raise UserError("cannot write the journal %s (field 'journal'): %s" % (self.journal.path, exc.strerror),
                            hint="the HA must be able to write that folder") from None
        if self.replica is not None:
            self.replica.open(now)
        self.applying = True
        try:
            self.ha._apply_events()          # routes and proxies (active only), one log line each
        finally:
            self.applying = False
        log("journal_restored", bindings=restored, records=len(state), path=self.journal.path)
        if self.active:
            self.announce()

    def announce(self, with_chunk=None):
        """Unsolicited NAs for every bound HoA on the home link: NA_CHUNK now, the rest NA_CHUNK
        per pass of the HA's loop (its timer says "now" while some are left), so thousands of
        them never hold up the data plane for the HoAs already announced. with_chunk(hoas), if
        given, follows each chunk's NAs (the takeover's proxy entries, replica.py)."""
        if self.ha.cfg.home_link and self.ha.cache.bindings:
            self._na_queue = list(self.ha.cache.bindings)
            self._na_sent = 0
            self._with_chunk = with_chunk
            self._announce_some()
        elif with_chunk is not None:
            with_chunk(list(self.ha.cache.bindings))

    def drop_announcements(self):
        """The HA stopped being active: what is still queued is not announced (nor proxied)."""
        self._na_queue = []
        self._with_chunk = None

    def _announce_some(self):
        chunk, self._na_queue = self._na_queue[:NA_CHUNK], self._na_queue[NA_CHUNK:]
        try:
            self._na_sent += unsolicited_na(self.ha.cfg.home_link, chunk)
        except OSError as exc:
            self.ha.log("error", reason="unsolicited NAs not sent: %s" % exc.strerror)
            chunk, self._na_queue = chunk + self._na_queue, []
        if self._with_chunk is not None:
            self._with_chunk(chunk)
        if not self._na_queue:
            self._with_chunk = None
            self.ha.log("unsolicited_na", hoas=self._na_sent)

    # ---- per change -------------------------------------------------------------------------
    def changed(self, ev, now, wall):
        """A binding event from the cache, before its BA leaves: its record is queued for the
        journal, then the standby; flush() (end of HomeAgent._apply_events, before the BAs are
        sent) writes the queue in one journal write and as few sealed messages as fit."""
        if ev.kind == "binding_removed" and ev.reason == "shutdown":
            return                       # a clean stop keeps the bindings for the next start
        b = ev.binding
        kind = REMOVED if ev.kind == "binding_removed" else BOUND
        rec = encode_binding(b, self.ha.cache.sas.get(b.spi), now, wall, kind)
        if self.journal is not None:
            self._to_journal.append(rec)
        if self.replica is not None and not self.applying:
            self._to_peer.append(rec)

    def flush(self, now, wall):
        """The records changed() queued: journal first, then the standby (before any BA leaves)."""
        if self._to_journal:
            recs, self._to_journal = self._to_journal, []
            try:
                if self.journal.append_many(recs):
                    self.journal.compact(self.ha.cache.snapshot(now, wall))
            except OSError as exc:
                self.ha.log.once(("journal", exc.errno), "error", reason="journal write failed: %s" % exc.strerror)
        if self._to_peer:
            recs, self._to_peer = self._to_peer, []
            self.replica.send_records(recs, now)
            if self.hold is not None:
                self._pending_seq = self.replica.core.seq

    def hold_bas(self, outs, now):
        """HomeAgent._flush: the cache's datagrams of this flush, or [] while they wait for the
        standby's ACK of the records sent before them (replica "ack", ha/ack.py)."""
        seq, self._pending_seq = self._pending_seq, None
        if seq is None or not outs:
            return outs
        core = self.replica.core
        if not self.replica.active or not core.peer_alive(now):
            self.hold.unheld += len(outs)            # no standby to wait for: as without the option
            return outs
        if core.acked and ((core.acked - seq) & 0xFFFFFFFF) < 0x80000000:
            return outs                              # (acknowledged already)
        self.hold.hold(outs, seq, now)
        return []

    def acked(self, seq, now):
        """The standby's ACK up to `seq` (replica.py): the BAs behind it leave."""
        if self.hold is not None:
            outs = self.hold.acked_to(seq, now)
            if outs:
                self.ha._send(outs)

    # ---- loop -------------------------------------------------------------------------------
    def handlers(self):
        return self.replica.handlers() if self.replica is not None else {}

    def get_timer(self):
        if self._na_queue:
            return 0                     # more NAs to send: at once, after the sockets' turn
        t = self.replica.get_timer() if self.replica is not None else None
        h = self.hold.get_timer() if self.hold is not None else None
        return t if h is None or (t is not None and t < h) else h

    def handle_timer(self, now):
        if self._na_queue:
            self._announce_some()
        if self.replica is not None:
            self.replica.handle_timer(now)
        if self.hold is not None:
            outs = self.hold.handle_timer(now)       # no ACK within ack_wait_ms: sent anyway, counted
            if outs:
                self.ha._send(outs)

    def close(self):
        if self.hold is not None:            # a clean stop: BAs still waiting for an ACK leave now
            outs = self.hold.release_all()
            if outs:
                self.ha._send(outs)
        if self.replica is not None:
            self.replica.close()
        if self.journal is not None:
            self.journal.close()
