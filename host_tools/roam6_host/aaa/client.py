"""A RADIUS client that lives in the home agent's epoll loop: non-blocking UDP sockets, timers
the loop sleeps on, pyrad only to build and parse packets (docs/ARCHITECTURE.md "AAA").

Why not pyrad's Client or a worker thread: pyrad's Client blocks in `SendPacket` for timeout x
retries (seconds when a server is down), and a thread would need the binding cache behind a lock
on the data plane's hot path. Here a request costs one `sendto`; the answer is one more readable
fd in the loop the HA already runs, so nothing the HA does ever waits for a server.

    c = RadiusClient(servers, secret, timeout_ms, retries, log)
    c.request("auth", fill, on_reply, now)      # fill(packet) adds attributes; on_reply(reply|None)
    c.fds() -> {fd: handler}; c.get_timer() -> ms | None; c.handle_timer(now)

Retransmission (RFC 5080 §2.2.1): the same id and bytes every `timeout_ms`, `retries` times per
server, then the next server (new id, new authenticator); when every server has failed the
callback gets None. The server that answered last is asked first; a server that timed out is
logged once (`aaa_server_down`) and asked again only after the others failed too.

Replies: only from the server's address and port (connected sockets), id of a pending request,
Response Authenticator and (when present) Message-Authenticator right (pyrad `VerifyReply`).
Anything else is logged once per cause (`aaa_bad_reply`) and changes nothing: the request keeps
waiting for a good answer or its timeout.
"""
import heapq
import socket

from pyrad import packet as rp
from pyrad.dictionary import Dictionary

from .freeradius import CLIENT_DICTIONARY


class _Req:
    __slots__ = ("kind", "fill", "callback", "server", "tried", "attempt", "deadline", "pkt", "raw", "key", "sent_ms")

    def __init__(self, kind, fill, callback):
        self.kind = kind
        self.fill = fill
        self.callback = callback
        self.server = 0
        self.tried = 0          # servers tried
        self.attempt = 0        # sends to the current server
        self.deadline = 0
        self.pkt = self.raw = self.key = None
        self.sent_ms = 0


class RadiusClient:
    def __init__(self, servers, secret, timeout_ms, retries, log, dictionary=None):
        self.servers = servers
        self.secret = secret
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.log = log
        self.dict = dictionary or Dictionary(CLIENT_DICTIONARY)
        self.primary = 0
        self._socks = {}        # (server index, kind) -> connected socket
        self._unconnected = set()   # of those, the ones whose connect() failed (no route)
        self._next_id = {}
        self._pending = {}      # (server index, kind, id) -> _Req
        self._timers = []       # heap (deadline, seq, key)
        self._seq = 0
        self.down = set()       # servers whose last request timed out
        self.stats = {"sent": 0, "retransmitted": 0, "answered": 0, "failed": 0, "bad_replies": 0}

    # ---- sockets ------------------------------------------------------------------------------
    def _sock(self, i, kind):
        s = self._socks.get((i, kind))
        if s is None:
            srv = self.servers[i]
            s = socket.socket(socket.AF_INET6 if srv.family_v6 else socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            self._socks[(i, kind)] = s
            self._connect(i, kind)
        elif (i, kind) in self._unconnected:
            self._connect(i, kind)            # no route at start: try again
        return s

    def _connect(self, i, kind):
        srv = self.servers[i]
        try:
            self._socks[(i, kind)].connect((srv.host, srv.auth_port if kind == "auth" else srv.acct_port))
            self._unconnected.discard((i, kind))
        except OSError as exc:      # no route (yet): its requests time out and fail over
            if (i, kind) not in self._unconnected:
                self._unconnected.add((i, kind))
                self.log("aaa_send_error", server=repr(srv), reason="cannot reach it: %s" % exc.strerror)

    def open(self):
        """Open every socket now (the loop registers their fds once)."""
        for i in range(len(self.servers)):
            for kind in ("auth", "acct"):
                self._sock(i, kind)

    def fds(self):
        return {s.fileno(): (lambda k=key: self._on_readable(k)) for key, s in self._socks.items()}

    def close(self):
        for s in self._socks.values():
            s.close()
        self._socks = {}

    def pending(self):
        return len(self._pending)

    # ---- requests -----------------------------------------------------------------------------
    def request(self, kind, fill, callback, now):
        """Send a request ("auth": Access-Request, "acct": Accounting-Request). False when no id
        is free on the server it would go to (256 outstanding): the caller says "busy"."""
        req = _Req(kind, fill, callback)
        req.server = self.primary
        return self._start(req, now)

    def _start(self, req, now):
        i, kind = req.server, req.kind
        used = self._next_id.get((i, kind), 0)
        for n in range(256):
            rid = (used + n) & 0xFF
            if (i, kind, rid) not in self._pending:
                break
        else:
            return False
        self._next_id[(i, kind)] = (rid + 1) & 0xFF
        if kind == "auth":
            p = rp.AuthPacket(code=rp.AccessRequest, id=rid, secret=self.secret, dict=self.dict)
        else:
            p = rp.AcctPacket(code=rp.AccountingRequest, id=rid, secret=self.secret, dict=self.dict)
        req.fill(p)
        if kind == "auth":
            p.add_message_authenticator()
        req.pkt = p
        req.raw = p.RequestPacket()
        req.key = (i, kind, rid)
        req.attempt = 0
        self._pending[req.key] = req
        self._send(req, now)
        return True

    def _send(self, req, now):
        req.attempt += 1
        req.sent_ms = now
        req.deadline = now + self.timeout_ms
        self._seq += 1
        heapq.heappush(self._timers, (req.deadline, self._seq, req.key))
        if req.attempt == 1:
            self.stats["sent"] += 1
        else:
            self.stats["retransmitted"] += 1
        try:
            self._sock(req.server, req.kind).send(req.raw)
        except OSError as exc:      # unreachable now: the timer moves it on
            self.log.once(("aaa_send", req.server, exc.errno), "aaa_send_error",
                          server=repr(self.servers[req.server]), reason=exc.strerror)

    def get_timer(self):
        while self._timers:
            deadline, _s, key = self._timers[0]
            req = self._pending.get(key)
            if req is not None and req.deadline == deadline:
                return deadline
            heapq.heappop(self._timers)       # answered or rescheduled: stale
        return None

    def handle_timer(self, now):
        while self._timers and self._timers[0][0] <= now:
            deadline, _s, key = heapq.heappop(self._timers)
            req = self._pending.get(key)
            if req is None or req.deadline != deadline:
                continue
            if req.attempt < self.retries:
                self._send(req, now)
                continue
            del self._pending[key]
            srv = req.server
            if srv not in self.down:
                self.down.add(srv)
                self.log("aaa_server_down", server=repr(self.servers[srv]), kind=req.kind,
                         tries=req.attempt, timeout_ms=self.timeout_ms)
            req.tried += 1
            if req.tried < len(self.servers):
                req.server = (srv + 1) % len(self.servers)
                if self.primary == srv:
                    self.primary = req.server
                if self._start(req, now):
                    continue
            self.stats["failed"] += 1
            req.callback(None)

    # ---- replies ------------------------------------------------------------------------------
    def _bad(self, i, why):
        self.stats["bad_replies"] += 1
        self.log.once(("aaa_bad_reply", i, why), "aaa_bad_reply", server=repr(self.servers[i]), reason=why)

    def _on_readable(self, sk):
        i, kind = sk
        s = self._socks.get(sk)
        if s is None:
            return
        for _ in range(64):
            try:
                raw = s.recv(8192)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:          # ICMP port unreachable: the server is not listening
                self._bad(i, "socket: %s" % exc.strerror)
                continue
            if len(raw) < 20:
                self._bad(i, "shorter than a RADIUS header (%d bytes)" % len(raw))
                continue
            req = self._pending.get((i, kind, raw[1]))
            if req is None:
                self._bad(i, "no request waits for id %d (late duplicate or forged)" % raw[1])
                continue
            try:
                reply = req.pkt.CreateReply(packet=raw)
                reply.request_authenticator = req.pkt.authenticator     # salt decryption (RFC 2868 §3.5)
                ok = req.pkt.VerifyReply(reply, raw)
            except Exception as exc:      # pyrad raises PacketError, KeyError, ... on garbage
                self._bad(i, "undecodable: %s: %s" % (type(exc).__name__, exc))
                continue
            if not ok:
                self._bad(i, "Response Authenticator or Message-Authenticator wrong (shared secret?)")
                continue
            want = (rp.AccessAccept, rp.AccessReject) if kind == "auth" else (rp.AccountingResponse,)
            if reply.code not in want:
                self._bad(i, "unexpected code %d" % reply.code)
                continue
            del self._pending[req.key]
            self.stats["answered"] += 1
            if i in self.down:
                self.down.discard(i)
                self.log("aaa_server_up", server=repr(self.servers[i]))
            self.primary = i
            req.callback(reply)
