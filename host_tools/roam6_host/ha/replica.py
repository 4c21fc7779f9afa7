"""Hot standby: the active HA's binding records reach the standby over an authenticated, ordered
UDP channel; the HA that holds the shared address (moved by keepalived, VRRPv3) owns the data plane.
Why this channel and not a replicated store: docs/ARCHITECTURE.md "HA continuity".

Messages (UDP between the two HAs' own, fixed addresses; docs/PROTOCOL-NOTES.md §14.3):

    magic "R6HA" | version 1 | type | 0 0 | epoch (u32) | seq (u32) | body | HMAC-SHA256 (32 bytes)

The HMAC (key: 32 bytes from ha.json replica.key_file) covers everything before it; a message
whose HMAC, magic, version or length is wrong is dropped and counted (`refused`), never parsed
further. `epoch` is random per HA process start, `seq` counts the sender's messages of the stream:

    type  name      body                                         sent
    1     HELLO     role (1 active, 0 standby), ready, bindings  every HELLO_MS by both
    2     RECORDS   records, each u16 length + ha/record.py      by the active, per change, seq+1
    3     SYNC_REQ  nonce (8 bytes)                              by a standby not in step
    4     SYNC      nonce, part, parts, records                  the whole cache, seq = stream seq
    5     ACK       epoch (u32), seq (u32) of the active's stream  by the standby, when asked (below)

With replica "ack" (ha/ack.py, docs/ARCHITECTURE.md "HA continuity") the active sets flag
F_ACK_WANTED (the u16 after the type) in RECORDS and SYNC; a standby that applied such a message
answers with one cumulative ACK per pass of its loop (the highest seq applied, of that epoch).
The active takes an ACK only for its current epoch and a seq above the last acknowledged one and
not above the last it sent; anything else is stale and counted (`stale_acks`), never acted on.

The standby applies RECORDS only with the active's current epoch and exactly the next seq; a
gap, a new epoch (the peer restarted or took over) or a HELLO announcing a seq it has not seen
makes it ask for the whole cache (SYNC_REQ with a fresh nonce, which the SYNC must echo: an old
SYNC replayed cannot roll the copy back). Until a SYNC has arrived whole the standby is not
ready: it keeps its TUN down, which keepalived (track_interface) turns into FAULT, so a stale
standby never takes the shared address. A standby that hears no active peer for SYNC_WAIT_MS
after its start is ready with what it has (its journal): both HAs starting together, or the
peer gone for good.

Sans-IO: `Replica` (this protocol) takes datagrams and `now` and gives datagrams and events;
`ReplicaLink` is its I/O (the UDP socket, the address watch, the TUN and the data plane switch).
"""
import hashlib
import hmac
import ipaddress
import os
import socket
import stat
import struct
import subprocess

from ..errors import UserError
from . import record as R

MAGIC = b"R6HA"
VERSION = 1
HELLO, RECORDS, SYNC_REQ, SYNC, ACK = 1, 2, 3, 4, 5
F_ACK_WANTED = 1            # header flag (RECORDS, SYNC): the active holds BAs until the standby's ACK
ACK_WAIT_MS = 50            # replica "ack_wait_ms" default (ha/ack.py says why)
HELLO_MS = 100
PEER_DEAD_MS = 500          # no HELLO from the peer for this long: it is gone
SYNC_WAIT_MS = 1000         # a fresh standby with no active peer for this long is ready
SYNC_RETRY_MS = 200
MAX_PAYLOAD = 1200          # records per message: keep datagrams under the home link's MTU
_HDR = struct.Struct(">4sBBHII")
MAC_LEN = 32
PORT = 4192


class ReplicaConfig:
    def __init__(self, peer, bind, port, key, ack=False, ack_wait_ms=ACK_WAIT_MS):
        self.peer, self.bind, self.port, self.key = peer, bind, port, key
        self.ack, self.ack_wait_ms = ack, ack_wait_ms     # BAs wait for the standby's ACK (ha/ack.py)


def parse_replica(r, source, base_dir):
    """ha.json "replica": {"peer": addr, "bind": addr, "port": 4192, "key_file": path, "ack": false,
    "ack_wait_ms": 50}."""
    hint = "\"replica\": {\"peer\": \"2001:db8:aa::3\", \"bind\": \"2001:db8:aa::2\", \"key_file\": \"replica.key\"}"
    if not isinstance(r, dict):
        raise UserError("%s: field 'replica' must be an object or null" % source, hint=hint)
    unknown = sorted(set(r) - {"peer", "bind", "port", "key_file", "ack", "ack_wait_ms"})
    if unknown:
        raise UserError("%s: field 'replica.%s' is not a known field (known: peer, bind, port, key_file, ack, "
                        "ack_wait_ms)" % (source, unknown[0]), hint=hint)
    ack, wait = r.get("ack", False), r.get("ack_wait_ms", ACK_WAIT_MS)
    if not isinstance(ack, bool):
        raise UserError("%s: field 'replica.ack' must be true or false, got %r" % (source, ack),
                        hint="true: a BA waits for the standby's acknowledgement of its record (ha/ack.py)")
    if not isinstance(wait, int) or isinstance(wait, bool) or not 1 <= wait <= 1000:
        raise UserError("%s: field 'replica.ack_wait_ms' must be an integer from 1 to 1000, got %r" % (source, wait),
                        hint="how long a BA waits for the standby's ACK before it leaves anyway (default 50)")
    addrs = []
    for f in ("peer", "bind"):
        try:
            addrs.append(str(ipaddress.IPv6Address(r.get(f))))
        except (ValueError, TypeError):
            raise UserError("%s: field 'replica.%s' must be the IPv6 address of %s, got %r"
                            % (source, f, "the other HA" if f == "peer" else "this HA (not the shared one)",
                               r.get(f)), hint=hint) from None
    port = r.get("port", PORT)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise UserError("%s: field 'replica.port' must be a UDP port, got %r" % (source, port), hint=hint)
    kf = r.get("key_file")
    if not isinstance(kf, str) or not kf:
        raise UserError("%s: field 'replica.key_file' is missing" % source,
                        hint="a file holding 64 hex digits, mode 600, the same on both HAs: "
                             "python3 -c 'import secrets; print(secrets.token_hex(32))'")
    return ReplicaConfig(addrs[0], addrs[1], port, load_key(os.path.join(base_dir, kf)), ack, wait)


def load_key(path):
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise UserError("replica key file %s is not a regular file" % path)
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UserError("replica key file %s is readable by group or others" % path, hint="chmod 600 %s" % path)
        with open(path) as f:
            text = f.read().strip()
    except OSError as exc:
        raise UserError("replica key file %s cannot be read: %s" % (path, exc.strerror),
                        hint="field 'replica.key_file' of ha.json names it") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise UserError("replica key file %s must hold 64 hex digits (32 bytes)" % path,
                        hint="python3 -c 'import secrets; print(secrets.token_hex(32))'")
    return key


def _keyed(key):
    """HMAC-SHA256 keyed once (bytes key or an already keyed object): copy() per message."""
    return key if hasattr(key, "copy") else hmac.new(key, digestmod=hashlib.sha256)


def seal(key, mtype, epoch, seq, body, flags=0):
    msg = _HDR.pack(MAGIC, VERSION, mtype, flags, epoch, seq) + body
    m = _keyed(key).copy()
    m.update(msg)
    return msg + m.digest()


def unseal(key, data):
    """(type, epoch, seq, body) of an authentic message, or None."""
    if len(data) < _HDR.size + MAC_LEN:
        return None
    msg, mac = data[:-MAC_LEN], data[-MAC_LEN:]
    m = _keyed(key).copy()
    m.update(msg)
    if not hmac.compare_digest(m.digest(), mac):
        return None
    magic, version, mtype, _r, epoch, seq = _HDR.unpack_from(msg)
    if magic != MAGIC or version != VERSION:
        return None
    return mtype, epoch, seq, msg[_HDR.size:]


def pack_records(encoded):
    """[body] of at most MAX_PAYLOAD bytes each, records as u16 length + bytes."""
    bodies, parts, size = [], [], 0
    for e in encoded:
        n = 2 + len(e)
        if parts and size + n > MAX_PAYLOAD:
            bodies.append(b"".join(parts))
            parts, size = [], 0
        parts.append(_U16(len(e)))
        parts.append(e)
        size += n
    bodies.append(b"".join(parts))
    return bodies


_U16 = struct.Struct(">H").pack


def unpack_records(body):
    out, off = [], 0
    while off + 2 <= len(body):
        n = struct.unpack_from(">H", body, off)[0]
        if off + 2 + n > len(body):
            raise R.RecordError("record runs past the message")
        out.append(R.decode(body[off + 2:off + 2 + n]))
        off += 2 + n
    if off != len(body):
        raise R.RecordError("trailing bytes")
    return out


class Replica:
    """The replication protocol, sans-IO. `cache` is the BindingCache the records go into (via
    cache.apply / snapshot / record). Events (next_event): ("synced", bindings, parts),
    ("refused", reason), ("resync", why), ("peer", role, ready)."""

    def __init__(self, key, cache, now, active=False, epoch=None, sync_wait_ms=SYNC_WAIT_MS):
        self.key = _keyed(key)
        self.cache = cache
        self.epoch = epoch if epoch is not None else int.from_bytes(os.urandom(4), "big") or 1
        self.seq = 0
        self.active = active
        self.started = now
        self.sync_wait_ms = sync_wait_ms
        self.synced = False          # holds a whole copy of the current active's cache
        self.peer_epoch = None       # the active peer's stream we follow
        self.peer_next = 0
        self.peer_seen = None        # ms of the last authentic message from the peer
        self.peer_active = False
        self.refused = 0
        self.applied = 0
        self.ignored = 0
        self._nonce = None
        self._parts = {}
        self._sync_base = None
        self._sync_epoch = None
        self._buffer = []
        self._next_req = 0
        self._next_hello = now
        self._out = []
        self._events = []
        self.want_acks = False       # active: F_ACK_WANTED on RECORDS/SYNC (replica "ack")
        self.acked = 0               # active: the highest seq of our epoch the standby acknowledged
        self.stale_acks = 0          # active: authentic ACKs of another epoch, old or ahead of what we sent
        self.peer_ready = False      # the peer's last HELLO said it holds a whole copy
        self._ack_due = None         # standby: (epoch, seq) to acknowledge in the next datagrams_to_send

    # ---- what the HA asks ---------------------------------------------------------------------
    def ready(self, now):
        """May this HA hold the shared address (take over)?"""
        if self.active or self.synced:
            return True
        heard_active = self.peer_active and self.peer_seen is not None and now - self.peer_seen < PEER_DEAD_MS
        return not heard_active and now - self.started >= self.sync_wait_ms

    def become(self, active, now):
        """The shared address came (active) or went (standby)."""
        if active == self.active:
            return
        self.active = active
        if active:
            self.epoch = (self.epoch + 1) & 0xFFFFFFFF or 1    # a new stream: the peer resyncs
            self.seq = self.acked = 0
            self._ack_due = None
        else:
            self.synced = False
            self.peer_epoch = None
        self._next_hello = now

    def send_records(self, recs, now):
        """Records (BindingRecord or their bytes) to the standby, in order."""
        if not self.active:
            return
        flags = F_ACK_WANTED if self.want_acks else 0
        for body in pack_records([r if isinstance(r, bytes) else r.encode() for r in recs]):
            self.seq = (self.seq + 1) & 0xFFFFFFFF
            self._out.append(seal(self.key, RECORDS, self.epoch, self.seq, body, flags))

    def peer_alive(self, now):
        """Has the peer spoken lately, saying it holds a whole copy (so an ACK can be expected)?"""
        return self.peer_ready and self.peer_seen is not None and now - self.peer_seen < PEER_DEAD_MS

    # ---- sans-IO surface ----------------------------------------------------------------------
    def receive(self, data, now, wall):
        m = unseal(self.key, data)
        if m is None:
            self.refused += 1
            self._events.append(("refused", "bad HMAC or header (%d bytes)" % len(data)))
            return
        mtype, epoch, seq, body = m
        self.peer_seen = now
        try:
            if mtype == HELLO:
                self._hello(epoch, seq, body, now)
            elif mtype == RECORDS:
                self._records(epoch, seq, body, now, wall)
                self._want_ack(data, epoch)
            elif mtype == ACK:
                self._ack(epoch, body)
            elif mtype == SYNC_REQ:
                self._sync_req(body, now, wall)
            elif mtype == SYNC:
                self._sync(epoch, seq, body, now, wall)
                self._want_ack(data, epoch)
            else:
                self.ignored += 1
        except (R.RecordError, struct.error, IndexError) as exc:
            self.ignored += 1
            self._events.append(("refused", "malformed message type %d: %s" % (mtype, exc)))

    def _want_ack(self, data, epoch):
        done = (self.peer_next - 1) & 0xFFFFFFFF      # (0: a SYNC of a stream that sent nothing yet)
        if data[7] & F_ACK_WANTED and self.synced and epoch == self.peer_epoch and done:
            self._ack_due = (epoch, done)

    def datagrams_to_send(self, now):
        if self._ack_due is not None:       # one cumulative ACK for every message applied since the last
            e, s = self._ack_due
            self._ack_due = None
            self._out.append(seal(self.key, ACK, self.epoch, self.seq, struct.pack(">II", e, s)))
        out, self._out = self._out, []
        return out

    def get_timer(self):
        t = self._next_hello
        if self._wants_sync():
            t = min(t, self._next_req)
        return t

    def handle_timer(self, now):
        if now >= self._next_hello:
            self._next_hello = now + HELLO_MS
            body = struct.pack(">BBI", 1 if self.active else 0, 1 if self.ready(now) else 0, len(self.cache.bindings))
            self._out.append(seal(self.key, HELLO, self.epoch, self.seq, body))
        if self._wants_sync() and now >= self._next_req:
            self._request_sync(now)

    def next_event(self):
        return self._events.pop(0) if self._events else None

    # ---- the standby's side -------------------------------------------------------------------
    def _wants_sync(self):
        return not self.active and self.peer_active and not self.synced

    def _request_sync(self, now):
        self._nonce = os.urandom(8)
        self._parts = {}
        self._next_req = now + SYNC_RETRY_MS
        self._out.append(seal(self.key, SYNC_REQ, self.epoch, self.seq, self._nonce))

    def _lost_step(self, why, now):
        if self.synced:
            self._events.append(("resync", why))
        self.synced = False
        self._next_req = min(self._next_req, now)

    def _hello(self, epoch, seq, body, now):
        role, ready, _n = struct.unpack(">BBI", body)
        was = self.peer_active
        self.peer_active = role == 1
        self.peer_ready = bool(ready)
        if was != self.peer_active:
            self._events.append(("peer", "active" if role else "standby", bool(ready)))
        if self.active or not self.peer_active:
            return
        if epoch != self.peer_epoch:
            self._lost_step("the active's stream changed (restart or takeover)", now)
        elif ((seq - self.peer_next) & 0xFFFFFFFF) < 0x80000000 and seq != (self.peer_next - 1) & 0xFFFFFFFF:
            self._lost_step("records %d.. missing" % self.peer_next, now)

    def _records(self, epoch, seq, body, now, wall):
        if self.active:
            self.ignored += 1
            return
        if self._sync_base is not None and epoch == self._sync_epoch:
            self._buffer.append((seq, body))     # arrived while a sync is being assembled
            return
        if not self.synced or epoch != self.peer_epoch:
            self.ignored += 1
            return
        if seq != self.peer_next:
            if ((seq - self.peer_next) & 0xFFFFFFFF) < 0x80000000:
                self._lost_step("gap: got %d, expected %d" % (seq, self.peer_next), now)
            else:
                self.ignored += 1             # old or replayed
            return
        for rec in unpack_records(body):
            self.cache.apply(rec, now, wall)
            self.applied += 1
        self.peer_next = (seq + 1) & 0xFFFFFFFF

    def _sync(self, epoch, seq, body, now, wall):
        if self.active or self._nonce is None or body[:8] != self._nonce:
            self.ignored += 1                    # not the answer to our current request
            return
        part, parts = struct.unpack_from(">HH", body, 8)
        if part == 0 or self._sync_base is None:
            self._sync_base, self._sync_epoch, self._buffer = seq, epoch, []
        if epoch != self._sync_epoch or seq != self._sync_base or part >= parts:
            self.ignored += 1
            return
        self._parts[part] = unpack_records(body[12:])
        if len(self._parts) < parts:
            return
        recs = [r for i in range(parts) for r in self._parts[i]]
        keep = {bytes(r.hoa) for r in recs}
        for hoa, b in list(self.cache.bindings.items()):
            if hoa not in keep:
                self.cache.apply(self.cache.record(b, now, wall, removed=True), now, wall)
        for r in recs:
            self.cache.apply(r, now, wall)
        self.peer_epoch, self.peer_next = epoch, (seq + 1) & 0xFFFFFFFF
        self.synced = True
        self._next_hello = now          # say "ready" at once (an active with replica "ack" waits for it)
        self._nonce, self._parts, self._sync_base = None, {}, None
        buffered, self._buffer = self._buffer, []
        for s, b in sorted(buffered):
            if s == self.peer_next:
                self._records(epoch, s, b, now, wall)
        self._events.append(("synced", len(self.cache.bindings), parts))

    # ---- the active's side --------------------------------------------------------------------
    def _ack(self, epoch, body):
        """The standby has applied our stream up to seq: event ("acked", seq). An ACK of another
        epoch, one not above the last acknowledged seq (a replay, or reordered behind a later
        one) or above the last seq sent (made up) changes nothing and is counted."""
        e, s = struct.unpack(">II", body)
        if (not self.active or e != self.epoch or not 0 < ((s - self.acked) & 0xFFFFFFFF)
                <= ((self.seq - self.acked) & 0xFFFFFFFF)):
            self.stale_acks += 1
            return
        self.acked = s
        self._events.append(("acked", s))

    def _sync_req(self, nonce, now, wall):
        if not self.active or len(nonce) != 8:
            self.ignored += 1
            return
        bodies = pack_records([r.encode() for r in self.cache.snapshot(now, wall)])
        for i, b in enumerate(bodies):
            self._out.append(seal(self.key, SYNC, self.epoch, self.seq, nonce + struct.pack(">HH", i, len(bodies)) + b,
                                  F_ACK_WANTED if self.want_acks else 0))


IFA_ADDRESS = 1
RTMGRP_IPV6_IFADDR = 0x100


class ReplicaLink:
    """The I/O around Replica inside the HA: the UDP socket between the two HAs, the watch on
    the shared address (netlink: the HA that has it is the active one), the TUN's up/down as the
    standby's readiness (what keepalived's track_interface follows), and the takeover itself."""

    def __init__(self, keep, rcfg):
        self.keep = keep
        self.ha = keep.ha
        self.rcfg = rcfg
        self.core = None
        self.sock = None
        self.watch = None
        self._tun_up = None
        self.active = False

    def open(self, now):
        ha = self.ha
        self.core = Replica(self.rcfg.key, ha.cache, now)
        self.core.want_acks = getattr(self.rcfg, "ack", False)     # BAs wait for our ACKs (ha/ack.py)
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, 78, 1)     # IPV6_FREEBIND: the address may still be in DAD
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        try:
            s.bind((self.rcfg.bind, self.rcfg.port))
        except OSError as exc:
            s.close()
            raise UserError("cannot bind the replication socket [%s]:%d (field 'replica.bind'): %s"
                            % (self.rcfg.bind, self.rcfg.port, exc.strerror)) from None
        s.setblocking(False)
        self.sock = s
        self.watch = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.watch.bind((0, RTMGRP_IPV6_IFADDR))
        self.watch.setblocking(False)
        ha.data_plane = False
        ha.routes_live = False
        self.active = False
        self._remove_stale_addresses()
        self._check_address(now)
        if not self.active:
            self._set_tun(self.core.ready(now))
        ha.log("replica", role="active" if self.active else "standby", peer=self.rcfg.peer, port=self.rcfg.port)

    def _remove_stale_addresses(self):
        """keepalived never gives the shared addresses to an HA that is not running (it tracks
        the TUN, which exists only while `roam6 ha` does), so one present at start is stale:
        left by a keepalived killed with -9, which does not remove them. Two hosts answering for
        one address would split the devices' traffic: remove them; keepalived adds them again
        when it makes this HA the active one."""
        cfg = self.ha.cfg
        gone = []
        for addr in [cfg.address_text] + ([cfg.ipv4] if cfg.ipv4 else []):
            try:
                out = subprocess.run(["ip", "-o", "addr", "show", "to", addr], capture_output=True, text=True,
                                     timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            for line in out.splitlines():
                f = line.split()
                if len(f) >= 4 and f[3].split("/")[0] == addr:
                    r = subprocess.run(["ip", "addr", "del", f[3], "dev", f[1].rstrip(":").split("@")[0]],
                                       capture_output=True, text=True, timeout=10)
                    if r.returncode == 0:
                        gone.append(f[3])
        if gone:
            self.ha.log("warning", reason="removed the shared addresses %s found at start (left by a keepalived "
                        "that was killed?): keepalived gives them back when this HA is chosen" % ", ".join(gone))

    def has_address(self):
        """Is the shared HA address configured here (keepalived put it on this host)?"""
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            s.bind((self.ha.cfg.address_text, 0))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def _set_tun(self, up):
        if up == self._tun_up:
            return
        self._tun_up = up
        from .netlink import IFF_UP, RTM_NEWLINK
        body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, self.ha.tun.ifindex, IFF_UP if up else 0, IFF_UP)
        try:
            self.ha.nl._request(RTM_NEWLINK, 0, body)
        except OSError as exc:
            self.ha.log("error", reason="TUN %s: %s" % ("up" if up else "down", exc.strerror))
        # a ready standby keeps a route into its TUN for every binding, so a takeover only adds
        # the proxy entries; a TUN going down takes its routes with it (the kernel flushes them)
        self.ha.routes_live = up
        if up:
            self._data_plane(True, proxies=False)
        self.ha.log("replica_ready" if up else "replica_not_ready", synced=self.core.synced,
                    bindings=len(self.ha.cache.bindings))

    def _check_address(self, now):
        have = self.has_address()
        if have and not self.active:
            self._takeover(now)
        elif not have and self.active:
            self._standby(now)

    def _data_plane(self, add, routes=True, proxies=True):
        """Routes into the TUN and/or proxy ND entries for every binding, many netlink requests per
        send (one round trip each would take seconds for thousands of bindings)."""
        ha = self.ha
        msgs = []
        for hoa in ha.cache.bindings:
            if routes:
                msgs.append(route_msg(add, hoa, ha.tun.ifindex))
            if proxies and ha.home_ifindex:
                msgs.append(proxy_msg(add, hoa, ha.home_ifindex))
        errors = nl_batch(ha.nl, msgs)
        if errors:
            ha.log("error", op="takeover" if add else "standby", reason="%d netlink requests failed: %s"
                   % (len(errors), ", ".join(sorted({os.strerror(e) for e in errors}))))

    def _takeover(self, now):
        ha = self.ha
        t0 = now
        if not self.core.ready(now):
            ha.log("error", reason="took the shared address before the copy of the cache was complete "
                   "(keepalived should not have chosen this HA): serving what it has")
        self.active = True
        self.core.become(True, now)
        ha.data_plane = True
        if not self._tun_up:                          # (a ready standby has its routes already)
            self._set_tun(True)                       # (installs the routes)
        # the proxy entries (one netlink request per HoA: ~0.1 s for 2,000 in one go) follow the
        # unsolicited NAs chunk by chunk, one chunk per pass of the HA's loop (continuity.announce),
        # so the loop serves the TUN between chunks: the first HoAs' traffic flows at once. The
        # router sends an announced HoA's packets here (the routes carry them into the TUN); the
        # proxy entry answers its NS, for a HoA not announced yet or its NUD probe seconds later
        # (RFC 4861: an unsolicited NA leaves its entry STALE)
        t1 = _ms()
        self.keep.announce(with_chunk=self._proxies)
        ha.log("takeover", bindings=len(ha.cache.bindings), ms=_ms() - t0, kernel_ms=_ms() - t1)

    def _proxies(self, hoas):
        """Proxy ND entries for those of `hoas` still bound, while active (the takeover's chunks)."""
        ha = self.ha
        if not self.active or not ha.home_ifindex:
            return
        errors = nl_batch(ha.nl, [proxy_msg(True, h, ha.home_ifindex) for h in hoas if h in ha.cache.bindings])
        if errors:
            ha.log("error", op="takeover", reason="%d netlink requests failed: %s"
                   % (len(errors), ", ".join(sorted({os.strerror(e) for e in errors}))))

    def _standby(self, now):
        ha = self.ha
        self.keep.drop_announcements()
        if self.keep.hold is not None:                # BAs waiting for an ACK that will not come
            ha._send(self.keep.hold.release_all())
        self.active = False
        self.core.become(False, now)
        ha.data_plane = False
        self._data_plane(False, routes=False)         # routes stay while the TUN is up
        ha.log("standby", bindings=len(ha.cache.bindings))
        self._set_tun(self.core.ready(now))

    # ---- loop hooks ---------------------------------------------------------------------------
    def handlers(self):
        return {self.sock.fileno(): self._on_sock, self.watch.fileno(): self._on_watch}

    def _on_watch(self):
        while True:
            try:
                self.watch.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
        self._check_address(_ms())

    def _on_sock(self):
        from .clock import wall_ms as _wall_ms
        # BUs taken earlier in this pass of the HA's loop wait for its one flush (HomeAgent.run):
        # their events go out now, as the HA's own, before records applied here mark theirs "applying"
        self.ha._apply_events()
        core = self.core
        for _ in range(256):
            try:
                data, addr = self.sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            now = _ms()
            core.receive(data, now, _wall_ms())
        self._after(_ms())

    def _after(self, now):
        """Events of the core -> log; records applied -> journal (not back to the peer); out."""
        core, ha = self.core, self.ha
        self.keep.applying = True
        try:
            ha._apply_events()
        finally:
            self.keep.applying = False
        while True:
            ev = core.next_event()
            if ev is None:
                break
            if ev[0] == "refused":
                ha.log.once(("replica_refused", ev[1][:20]), "replica_refused", reason=ev[1], count=core.refused)
            elif ev[0] == "synced":
                ha.log("replica_synced", bindings=ev[1], parts=ev[2])
            elif ev[0] == "resync":
                ha.log("replica_resync", reason=ev[1])
            elif ev[0] == "acked":
                self.keep.acked(ev[1], now)             # held BAs leave (ha/ack.py)
            else:
                ha.log("replica_peer", role=ev[1], ready=ev[2])
        if not self.active:
            self._set_tun(core.ready(now))
        self._send(now)

    def _send(self, now):
        for d in self.core.datagrams_to_send(now):
            try:
                self.sock.sendto(d, (self.rcfg.peer, self.rcfg.port))
            except OSError as exc:
                self.ha.log.once(("replica_send", exc.errno), "send_error", peer=self.rcfg.peer, reason=exc.strerror)

    def send_record(self, rec, now):
        self.core.send_records([rec], now)
        self._send(now)

    def send_records(self, recs, now):
        """The records of one pass of the HA's loop: as few sealed messages as fit (MAX_PAYLOAD)."""
        self.core.send_records(recs, now)
        self._send(now)

    def get_timer(self):
        return self.core.get_timer() if self.core is not None else None

    def handle_timer(self, now):
        self.core.handle_timer(now)
        self._after(now)

    def close(self):
        for s in (self.sock, self.watch):
            if s is not None:
                s.close()


def route_msg(add, dst16, ifindex):
    from . import netlink as N
    body = struct.pack("=BBBBBBBBI", socket.AF_INET6, 128, 0, 0, N.RT_TABLE_MAIN, N.RTPROT_STATIC,
                       N.RT_SCOPE_UNIVERSE, N.RTN_UNICAST, 0)
    body += N._attr(N.RTA_DST, bytes(dst16)) + N._attr(N.RTA_OIF, struct.pack("=i", ifindex))
    return (N.RTM_NEWROUTE, N.NLM_F_CREATE | N.NLM_F_REPLACE, body) if add else (N.RTM_DELROUTE, 0, body)


def proxy_msg(add, dst16, ifindex):
    from . import netlink as N
    body = struct.pack("=BBHiHBB", socket.AF_INET6, 0, 0, ifindex, N.NUD_PERMANENT, N.NTF_PROXY, 0)
    body += N._attr(N.NDA_DST, bytes(dst16))
    return (N.RTM_NEWNEIGH, N.NLM_F_CREATE | N.NLM_F_REPLACE, body) if add else (N.RTM_DELNEIGH, 0, body)


def nl_batch(nl, msgs, chunk=128):
    """Send netlink requests `chunk` at a time in one send each and collect their ACKs; returns
    the errnos of the ones that failed (a missing route/entry on removal is not a failure)."""
    import errno as E
    from . import netlink as N
    errors = []
    for i in range(0, len(msgs), chunk):
        buf = bytearray()
        want = set()
        for kind, flags, body in msgs[i:i + chunk]:
            nl.seq += 1
            buf += struct.pack("=IHHII", 16 + len(body), kind, flags | N.NLM_F_REQUEST | N.NLM_F_ACK, nl.seq, 0)
            buf += body
            want.add(nl.seq)
        nl.sock.send(bytes(buf))
        while want:
            data = nl.sock.recv(1 << 20)
            off = 0
            while off + 16 <= len(data):
                length, mtype, _f, seq, _pid = struct.unpack_from("=IHHII", data, off)
                if mtype == N.NLMSG_ERROR and seq in want:
                    want.discard(seq)
                    err = -struct.unpack_from("=i", data, off + 16)[0]
                    if err and err not in (E.ESRCH, E.ENOENT, E.ENODEV):
                        errors.append(err)
                if length < 16:
                    break
                off += (length + 3) & ~3
    return errors


def _ms():
    from .clock import now_ms as _now_ms
    return _now_ms()
