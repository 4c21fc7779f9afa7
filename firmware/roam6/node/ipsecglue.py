"""The node's IPsec (RFC 4877; docs/ARCHITECTURE.md "IPsec"): the IKEv2 initiator's socket driver
and its timers, wired to the ESP-protected home registration (roam6.core.ipsecreg).

Loaded only for a config with `"security": "ipsec"` (`attach`, from the driver); an RFC 4285 node
never imports it nor roam6.ipsec.

- IKE runs over UDP 4500 with the non-ESP marker (RFC 3948), from the care-of address to the HA's
  address of the transport's family (udp4: `ha_ipv4`; udp6/ip6: `ha`): a socket of its own, opened
  again after every move (at once when a handshake must run, else with the INFORMATIONAL below, so
  nothing of IKE sits between a move and its BA/first packets), read by a task; the initiator's
  timers and this glue's (retry, rekey, re-authentication) by a second task (`get_timer`/`tick`,
  sans-IO apart from `send`).
- IKE_SA_INIT + IKE_AUTH (PSK, IDi = the NAI, CP asking for the configured HoA, transport-mode
  CHILD_SA for MH between HoA and HA). While it runs the registration holds its BUs; at child_up
  they leave sealed (`reg.sa = initiator`).
- After a move the IKE SA follows (design 4, the K bit): once the BA from the new care-of address
  is in, an empty INFORMATIONAL (the liveness check) goes from the new address; the HA takes it as
  the IKE SA's peer address (RFC 7296 §2.23). No rekeying per move.
- Liveness every `liveness_ms`; no answer -> a new handshake. The CHILD_SA is rekeyed
  (CREATE_CHILD_SA, no PFS) at `child_life_ms` or when half its sequence numbers are used; the IKE
  SA re-authenticated at `ike_life_ms` (a new IKE_SA_INIT + IKE_AUTH beside the old one, then a
  Delete of the old IKE SA).
- A failed handshake (wrong PSK: AUTHENTICATION_FAILED, no answer, a refused proposal) is logged
  once per try as an `error` line and tried again after 1, 2, 4 ... 60 s.
- With `ipsec_data` (design 6): after the first CHILD_SA a second one by CREATE_CHILD_SA, tunnel
  mode, TSi = the HoA, TSr = ::/0; the node's data then travels IPv6(HoA -> HA, NH 50) | ESP(41 |
  packet) inside the same transport (`node_send_packet`), and ESP on it from the HA is opened into
  the host (`data_in`). Before it is up, and at home, data goes as without IPsec.
Event log lines (docs/CONTRACTS.md §7): `ike` with state "up" (handshake_ms), "child_up", "data_up",
"rekeyed", "reauth", "moved" (rtt_ms: the HA has the new address); `error` reasons "IKE ...".
- The IKE code only while an exchange runs (heap): once the IKE SA is idle (up, no request out,
  nothing queued, no re-authentication or move under way) `doze` swaps the `ikev2.Initiator` for a
  `Dormant` and drops the modules only IKE needs (ikev2, x25519: their bytecode was most of an
  IPsec MN's heap). A Dormant holds the Initiator's attributes (`d`: keys, SPIs, message id, the
  ESP SAs) and answers what the steady path reads between exchanges: the ESP SAs (`esp_in`,
  `esp_out`, `esp_in_old`, `data_in`, `data_out`: only an exchange changes them), `state`,
  `spi_i`, `_pending`, `get_timer()` (the next liveness check). An IKE datagram for the SA, a timer
  due (`tick`) or a verb needs the Initiator: `live` imports ikev2 again and rebuilds it from `d`
  (no __init__: nothing drawn, nothing sent). What only the handshake reads is not kept
  (_HANDSHAKE_ONLY are None in `d`, and SK_pi/SK_pr go): a re-authentication is a new Initiator
  with the config's PSK; a CHILD_SA rekey draws new nonces and derives from SK_d.
"""
import asyncio
import socket

from roam6.compat import IS_MICROPYTHON, const
from roam6.core.ipsecreg import SaRegistration
from roam6.wire.binding import ipv6_packet

from . import forget
from .transport import AF_INET, AF_INET6, addr_text, sleep_ms, sockaddr

_UP = const(3)                    # roam6.ipsec.ikev2's state "up"
_TELL_MS = const(20)              # after a move's BA: the INFORMATIONAL from the new address
_MARKER = b"\x00\x00\x00\x00"       # the non-ESP marker (RFC 3948), ikev2.MARKER

if IS_MICROPYTHON:
    from .transport import readable
    _PEEK = getattr(socket, "MSG_PEEK", None)

    async def _recv(sock):
        """One datagram (as transport.readinto does: peek, then take exactly that datagram)."""
        await readable(sock)
        if _PEEK is None:
            return sock.recv(2048)
        d = sock.recv(2048, _PEEK)
        if d:
            sock.readinto(bytearray(len(d)), len(d))
        return d
else:
    async def _recv(sock):
        return await asyncio.get_running_loop().sock_recv(sock, 2048)


def attach(node, st):
    """The node's registration under IPsec and its glue (node.reg, node.ipsec), and the node's two
    decisions wrapped for it (instance attributes: the driver itself carries no IPsec code):
    `moved`/`at_home` open IKE from the new address before the registration moves. (ESP from the
    HA reaches the registration through the driver's packet_in, next header 50.)"""
    cfg = node.cfg
    reg = node.reg = SaRegistration(cfg.nai, cfg.hoa, cfg.ha, cfg.lifetime, st["seq"] if st else None)
    glue = node.ipsec = IpsecGlue(node, reg)
    node.moved, node.at_home = glue.node_moved, glue.node_at_home
    if getattr(cfg, "more_hoas", None):       # further home addresses (node/ipsecmore.py)
        from .ipsecmore import attach as more
        more(node, glue)
    if cfg.ipsec_data:            # the payload tunnel: before the node's Host takes send_packet
        node.send_packet = glue.node_send_packet
        reg.on_data = glue.data_in


class IpsecGlue:
    ike_port = 4500
    liveness_ms = 60000
    child_life_ms = 3600000
    ike_life_ms = 14400000
    sockets = True                # False: no sockets nor tasks (tests replace `send`)

    def __init__(self, node, reg):
        self.node = node
        self.reg = reg
        reg.on_ba = self.after_ba
        reg.on_mh = self.mh_in
        reg.on_retry = self.bu_unanswered
        self.ike = self.next = None       # the IKE SA in use; a re-authentication under way
        self.sock = None
        self.local = self.remote = None
        self.tasks = []
        self.timer_task = None
        self.retry_at = self.rekey_at = self.reauth_at = None
        self.backoff_ms = 1000
        self.tell_due = False             # a move happened: tell the IKE SA once the BA is in
        self.handshakes = self.send_errors = self.dropped = 0

    # ---- the node's entry points under IPsec (attach; bound methods, not closures: fewer objects) --
    # (the BU first: with the SA up it leaves sealed at once; the IKE socket is opened after it)
    def node_moved(self, coa, transport):
        node = self.node
        if self.ike_ha is not None and self.ike_ha != node.cfg.ha:   # switched HA: no BU under the old SA
            from .ipsecmsgs import drop_ike
            drop_ike(self, node.now())
        type(node).moved(node, coa, transport)
        self.moved(coa, transport, node.now())

    def node_at_home(self):
        node = self.node
        type(node).at_home(node)
        self.moved(node.cfg.hoa, "udp6", node.now())

    def node_send_packet(self, pkt):
        """The HoA's packets (the host's data path) in the payload tunnel once it is up (design 6):
        IPv6(src HoA, dst HA, NH 50) | ESP(41 | packet); ip6: src CoA with the Home Address option."""
        node = self.node
        ike = self.ike
        d = ike.data_out if ike is not None else None
        tr = node.uplink.active
        if d is None or tr is None or node.host.home is not None:
            return type(node).send_packet(node, pkt)
        esp = d.seal(pkt, 41)
        if esp is None:
            return False
        cfg = node.cfg
        if tr.name == "ip6":
            return tr.send_mh(ipv6_packet(self.reg.coa, cfg.ha, 50, esp, hao=cfg.hoa))
        return tr.send(ipv6_packet(cfg.hoa, cfg.ha, 50, esp))

    def data_in(self, inner):
        """An inner packet out of the payload tunnel: to the host as if it came in clear."""
        node = self.node
        n = len(inner)
        if n <= len(node.rx):
            node.rx[:n] = inner
            node.host.input(node.rx, n)

    # ---- the other MN-HA messages and recoveries (node/ipsecmsgs.py, loaded on first use) -------------
    def mh_in(self, raw, src, now):
        from .ipsecmsgs import mh_in
        mh_in(self, raw, src, now)

    def send_mh(self, mh, coa=None):
        from .ipsecmsgs import send_mh
        return send_mh(self, mh, coa)

    def bu_unanswered(self, now):
        if self.ike is not None and self.next is None and self.retry_at is None:
            from .ipsecmsgs import bu_unanswered
            bu_unanswered(self, now)

    # ---- decisions -------------------------------------------------------------------------------
    def moved(self, coa, transport, now):
        cfg = self.node.cfg
        coa = bytes(coa)
        ha = cfg.ha_ipv4 if len(coa) == 4 else cfg.ha
        if self.ike_ha is not None and self.ike_ha != cfg.ha:
            from .ipsecmsgs import drop_ike
            drop_ike(self, now)
        self.ike_ha = cfg.ha
        self.local, self.remote = (coa, self.ike_port), (ha, self.ike_port)
        ike = self.ike
        if ike is None:           # a handshake to run: from the new address at once
            self.reopen = None
            if self.sockets:
                self._open(coa, ha)
            if self.retry_at is None:
                self.ike = self._start(now)
        else:                     # the SAs stay: the new socket and the INFORMATIONAL after the BA
            if type(ike) is Dormant:
                ike.d["remote"] = self.remote
            else:
                ike.remote = self.remote
            self.reopen = (coa, ha)
            self.tell_due = True
        self.pump(now)

    def after_ba(self, now):
        """A BA came through the CHILD_SA: after a move, the IKE SA learns the new address, TELL_MS
        later (off the path of the first data packets after the BA)."""
        if self.tell_due:
            self.tell_at = now + _TELL_MS

    def _tell(self, now):
        ike = self.ike
        if ike is not None and ike.state == _UP and ike._pending is None:
            self.tell_due = False
            self.tell_at = None
            if self.reopen is not None and self.sockets:
                self._open(*self.reopen)
            self.reopen = None
            ike.check_liveness(now)
            self.told_at = now

    def _start(self, now):
        from roam6.ipsec.ikev2 import Initiator, ts_host
        cfg = self.node.cfg
        plen = cfg.home_prefix[1] if cfg.home_prefix else 64
        self.handshakes += 1
        return Initiator(cfg.psk, cfg.nai.decode(), self.local, self.remote, [ts_host(cfg.hoa, 135)],
                         [ts_host(cfg.ha, 135)], now, transport=True,
                         request_hoa=cfg.hoa + bytes((plen,)), liveness_ms=self.liveness_ms,
                         esp_gcm=getattr(cfg, "esp_gcm", False), pfs=getattr(cfg, "pfs", False))

    # ---- timers ----------------------------------------------------------------------------------
    def get_timer(self):
        t = None
        for x in (self.retry_at, self.rekey_at, self.reauth_at, self.tell_at,
                  self.ike.get_timer() if self.ike is not None else None,
                  self.next.get_timer() if self.next is not None else None):
            if x is not None and (t is None or x < t):
                t = x
        return t

    def tick(self, now):
        self.live(self.ike)             # only called when a timer is due: all of them are IKE's
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            if self.local is not None and self.ike is None:
                if self.reopen is not None and self.sockets:      # moved since the last SA died
                    self._open(*self.reopen)
                self.reopen = None
                self.ike = self._start(now)
            elif self.ike is not None and self.next is None:
                self.next = self._start(now)              # a re-authentication that failed before
        for ike in (self.ike, self.next):
            if ike is not None:
                ike.handle_timer(now)
        ike = self.ike
        if ike is not None and ike.state == _UP and ike._pending is None:
            if self.tell_due and self.tell_at is not None and now >= self.tell_at:
                self._tell(now)
            elif self.rekey_at is not None and (now >= self.rekey_at or ike.esp_out.seq > 0x7FFFFFFF):
                ike.rekey_child(now)
                self.rekey_at = None
            elif self.reauth_at is not None and now >= self.reauth_at and self.next is None:
                self.reauth_at = None
                self.next = self._start(now)
        self.pump(now)

    # ---- IKE in and out --------------------------------------------------------------------------
    def ike_in(self, data, now):
        """One datagram from the UDP 4500 socket: IKE (with its marker) for one of our IKE SAs."""
        if len(data) < 32 or data[:4] != _MARKER:
            self.dropped += 1     # ESP travels inside the transport here, not on UDP 4500
            return
        spi = bytes(data[4:12])
        for ike in (self.ike, self.next):
            if ike is not None and ike.spi_i == spi:
                if type(ike) is Dormant:  # (nothing is awaited: a peer's request, or a forgery from the
                    if self.woke_at is not None and now - self.woke_at < 1000:     # path: an import
                        self.dropped += 1       # a second at most; the peer retransmits its request)
                        break
                    self.woke_at = now
                self.live(ike).receive(data, now)
                break
        else:
            self.dropped += 1
        self.pump(now)

    def send(self, data):
        try:
            self.sock.send(data)
        except (OSError, AttributeError):     # no route during a move, no socket yet
            self.send_errors += 1

    def pump(self, now):
        """Send what the initiators want, then act on their events."""
        for ike in (self.ike, self.next):
            if ike is None:
                continue
            for data, _dst in ike.datagrams_to_send(now):
                self.send(data)
            ev = ike.next_event()
            while ev is not None:
                self._event(ike, ev, now)
                ev = ike.next_event()
            for data, _dst in ike.datagrams_to_send(now):      # what the events asked for
                self.send(data)
        self.doze()

    def _event(self, ike, ev, now):
        log = self.node.log
        kind = ev[0]
        if kind == "ike_up":
            log("ike", state="up", handshake_ms=ev[1])
        elif kind == "hoa":
            if ev[1] != self.node.cfg.hoa:             # the HA's HoA: ours at this SA's child_up
                self.cp_hoa = (ike, ev[1])
        elif kind == "child_up":
            if ike is self.next:                       # re-authenticated: the old IKE SA goes
                old, self.ike, self.next = self.live(self.ike), ike, None
                if old is not None:
                    old.delete_ike(now)
                    for data, _dst in old.datagrams_to_send(now):
                        self.send(data)
                log("ike", state="reauth")
            self.backoff_ms = 1000
            reg = self.reg
            reg.sa = ike
            self.rekey_at = now + self.child_life_ms
            self.reauth_at = now + self.ike_life_ms
            log("ike", state="child_up", spi_in=ev[1], spi_out=ev[2], transport=ev[3])
            if self.cp_hoa is not None:                # (node/ipsechoa.py: it moves the registration)
                try:
                    from .ipsechoa import adopt
                    if adopt(self, ike, now):
                        self.rechecking = False
                except ImportError:                    # (a bundle without it keeps the config's HoA)
                    self.cp_hoa = None
                    log("error", reason="IKE: the HA assigned another home address: kept the config's")
            if self.rechecking:                        # the unanswered BU again, under the new SA, now
                self.rechecking = False
                if reg.retransmit_at is not None:
                    reg.retransmit_at = now
                    reg.handle_timer(now)
            self.node.flush()                          # the BUs held meanwhile leave now
            if self.node.cfg.ipsec_data:               # design 6: the payload tunnel's CHILD_SA
                from roam6.ipsec.ikev2 import ts_host, ts_range
                ike.create_child([ts_host(self.node.cfg.hoa)], [ts_range(bytes(16), b"\xff" * 16)], now)
        elif kind == "data_up":
            log("ike", state="data_up", spi_in=ev[1], spi_out=ev[2])
        elif kind == "child_rekeyed":
            self.rekey_at = now + self.child_life_ms
            log("ike", state="rekeyed", spi_in=ev[1], spi_out=ev[2])
        elif kind == "alive":
            if self.told_at is not None:
                self.told_at = None
                log("ike", state="moved", rtt_ms=ev[1])
        elif kind in ("failed", "child_failed", "deleted"):
            if kind == "failed" and ev[1] == "auth":
                why = "authentication failed (wrong psk for %s?)" % self.node.cfg.nai.decode()
            elif kind == "deleted":
                why = "the HA deleted the IKE SA"
            else:
                why = "%s %s (notify %d)" % (kind, ev[1], ev[-1] if len(ev) > 2 else 0)
            retry = 0 if kind == "deleted" else self.backoff_ms
            log("error", reason="IKE: %s; again in %d ms" % (why, retry))
            self.backoff_ms = min(self.backoff_ms * 2, 60000)
            self.retry_at = now + retry
            if ike is self.next:
                self.next = None                       # the old SA serves on meanwhile
                self.rechecking = False
            elif ike is self.ike:
                self.ike = None
                self.reg.sa = None
                self.rekey_at = self.reauth_at = None
                if self.next is not None:
                    self.ike, self.next = self.next, None

    # ---- the IKE code only while an exchange runs (Dormant, below) -----------------------------------
    def doze(self):
        """The IKE SA idle (up, no request out, nothing queued, no re-authentication or move under
        way): a Dormant in its place, and ikev2/x25519 dropped (freed at the next collection)."""
        ike = self.ike
        if (ike is None or self.next is not None or type(ike) is Dormant or ike.state != _UP
                or ike._pending is not None or ike._deadline is not None or ike._out or ike._events or self.tell_due):
            return
        self.ike = d = Dormant(ike)
        if self.reg.sa is ike:
            self.reg.sa = d
        forget("roam6.ipsec.ikev2")
        forget("roam6.ipsec.x25519")

    def live(self, ike):
        """ike itself, or for a Dormant the Initiator again (glue.ike and reg.sa follow)."""
        if type(ike) is not Dormant:
            return ike
        from roam6.ipsec.ikev2 import Initiator
        real = object.__new__(Initiator)
        for k, v in ike.d.items():
            setattr(real, k, v)
        if self.ike is ike:
            self.ike = real
        if self.reg.sa is ike:
            self.reg.sa = real
        return real

    told_at = tell_at = reopen = woke_at = None
    ike_ha = None                 # the HA the IKE SA is with (a Home Agent Switch changes it)
    rechecking = False            # a new IKE SA after an unanswered BU is under way
    cp_hoa = None                 # (IKE SA, HoA) the HA's CP assigned, not yet adopted (ipsechoa.py)

    # ---- sockets and tasks -------------------------------------------------------------------------
    def _open(self, coa, ha):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        for t in self.tasks:
            t.cancel()
        self.tasks = []
        s = socket.socket(AF_INET if len(coa) == 4 else AF_INET6, socket.SOCK_DGRAM)
        try:
            s.setblocking(False)
            s.bind(sockaddr(addr_text(coa), 0))
            s.connect(sockaddr(addr_text(ha), self.ike_port))
        except OSError as e:
            s.close()
            self.node.log("error", reason="IKE: cannot open UDP %d from %s: %s"
                          % (self.ike_port, addr_text(coa), e))
            return
        self.sock = s
        self.tasks.append(asyncio.create_task(self._read(s)))
        if self.timer_task is None:
            self.timer_task = asyncio.create_task(self._timers())

    async def _read(self, sock):
        while True:
            try:
                data = await _recv(sock)
            except OSError:
                await sleep_ms(20)
                continue
            if data:
                self.ike_in(data, self.node.now())

    async def _timers(self):
        while True:
            now = self.node.now()
            t = self.get_timer()
            if t is not None and t <= now:
                self.tick(now)
                continue
            await sleep_ms(200 if t is None else min(200, t - now))


# psk, IDi, the IKE_SA_INIT nonces, the last request (kept for retransmission only while it is
# awaited: a Dormant has none), the CHILD_SA's KEYMAT (kept for tests and tshark on the host)
_HANDSHAKE_ONLY = ("psk", "idi", "ni", "nr", "_req", "keymat", "_cookie")


class Dormant:
    """An idle IKE SA without the IKE code (module docstring; IpsecGlue.doze/live)."""
    _pending = None

    def __init__(self, ike):
        d = self.d = dict(ike.__dict__)     # (MicroPython's __dict__ is a read-only copy)
        for k in _HANDSHAKE_ONLY:
            d[k] = None
        sk = d["sk"]                    # (the dropped Initiator's own)
        sk.pop("pi", None)
        sk.pop("pr", None)
        self.esp_in, self.esp_out, self.esp_in_old = d["esp_in"], d["esp_out"], d["esp_in_old"]
        self.data_in, self.data_out = d["data_in"], d["data_out"]
        self.state, self.spi_i = d["state"], d["spi_i"]

    def get_timer(self):
        return self.d["_live_at"]

    def datagrams_to_send(self, now):
        return ()

    def next_event(self):
        return None
