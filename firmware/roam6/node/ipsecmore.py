"""More than one home address for an IPsec MN (RFC 4877 §4.3-4.4; docs/PROTOCOL-NOTES.md §9.8;
docs/ARCHITECTURE.md "IPsec on the MN"): config "more_hoas": [addr, ...] (up to 3, beside "hoa").

Loaded only for a config with "more_hoas" (node/ipsecconf.py checks the field through
`parse_config`; node/ipsecglue.py's attach calls `attach`); every MCU board's board.json leaves it
out (unix only), so a board config naming it is refused by name and the base MN pays nothing.

- Each further HoA has its own transport-mode MH CHILD_SA in the primary HoA's IKE SA: after the
  primary CHILD_SA is up (child_up, also after a re-authentication or a new handshake) the MN asks,
  one at a time, a CREATE_CHILD_SA with N(USE_TRANSPORT_MODE), TSi = that HoA (protocol 135) and
  TSr = the HA (135), as the HA (ha/ipsecmh.py) expects; the answer's ESP SAs are that HoA's.
  (The initiator's "child" exchange of roam6.ipsec.ikev2 is reused: its data_in/data_out are taken
  over at once, so "ipsec_data" is refused beside "more_hoas" for now.) A refusal is logged as an
  `error` and that HoA stays unregistered until the next child_up; the IKE SA is not torn down.
- Each further HoA has its own SaRegistration (core/ipsecreg.py: BUs sealed in its own SA, the BA
  opened from it), the same CoA and transport as the primary: at each move (and going home) all
  HoAs' BUs go. Its timers run in a task of this module. Log lines: `hoa_reg` (hoa, event: "bu",
  "ba" with status, "registered", "lost") and `ike` state "hoa_up" (hoa, spi_in, spi_out).
- Each further HoA has its own roam6.node.host.Host on the node's data path: it answers ICMPv6 echo
  and the app binds UDP sockets to it (`node.hosts[hoa_bytes].socket()`), as `node.host` for the
  primary. Packets from the HA to a further HoA are demultiplexed here (node.packet_in wrapped).
Limits: the further HoAs' CHILD_SAs are not rekeyed (a re-authentication makes them again); no
payload tunnel (ipsec_data) for them.
"""
import asyncio

from roam6.core.ipsecreg import SaRegistration
from roam6.wire.addr import ip6_from_text

from .host import Host
from .transport import addr_text, sleep_ms

MAX_MORE = 3                  # the HA's keys file "more_hoas": up to 3 too


def parse_config(c, raw, ConfigError):
    """config.json's "more_hoas" (called by ipsecconf.parse_config, loaded for it):
    sets c.more_hoas, a list of 16-byte addresses."""
    v = raw["more_hoas"]
    if raw.get("security") != "ipsec":
        raise ConfigError("more_hoas", "needs \"security\": \"ipsec\" (each further home address has its "
                                       "own IPsec SA, RFC 4877)")
    if raw.get("ipsec_data"):
        raise ConfigError("more_hoas", "is not offered together with \"ipsec_data\" yet")
    if not isinstance(v, list) or not 1 <= len(v) <= MAX_MORE:
        raise ConfigError("more_hoas", "must be a list of 1 to %d IPv6 home addresses" % MAX_MORE)
    hoa = raw.get("hoa")
    out = [ip6_from_text(hoa)] if isinstance(hoa, str) and hoa != "bootstrap" else []
    for a in v:
        try:
            b = ip6_from_text(a)
        except ValueError as e:
            raise ConfigError("more_hoas", "has a bad address: %s" % e)
        if b in out:
            raise ConfigError("more_hoas", "names %s twice (or it is \"hoa\")" % a)
        out.append(b)
    c.more_hoas = out[len(out) - len(v):]


class _Sa:
    """One further HoA's MH CHILD_SA as SaRegistration reads it."""
    esp_in_old = data_in = None

    def __init__(self, out, inn):
        self.esp_out, self.esp_in = out, inn


class More:
    def __init__(self, node, glue):
        self.node, self.glue = node, glue
        cfg = node.cfg
        self.regs = {}
        node.hosts = {}
        for h in cfg.more_hoas:
            self.regs[h] = SaRegistration(cfg.nai, h, cfg.ha, cfg.lifetime)
            node.hosts[h] = Host(h, node.send_packet)
        self.queue = []
        self.asking = None        # (IKE SA, HoA) of the CREATE_CHILD_SA out
        self.task = None

    # ---- the CHILD_SAs -------------------------------------------------------------------------
    def child_up(self, ike, now):
        self.queue = list(self.regs)
        self.ask(ike, now)

    def ask(self, ike, now):
        self.asking = None
        if not self.queue or ike.state != 3 or ike._pending is not None:
            return
        from roam6.ipsec import ikev2 as k
        hoa = self.queue.pop(0)
        ike._live_at = None
        ike._rekey_ni = ike.rng(32)
        ike._rekey_spi = ike._new_spi()
        pls = [(41, k.notify(16391)), (33, k.sa_payload(3, ike._rekey_spi, ike._esp_items())),
               (40, ike._rekey_ni), (44, k.ts_payload([k.ts_host(hoa, 135)])),
               (45, k.ts_payload([k.ts_host(self.node.cfg.ha, 135)]))]
        # CREATE_CHILD_SA (36), flag I: the reply comes back as the initiator's "child" exchange
        ike._request(ike._encrypted(pls, 36, 0x08, ike._msgid), now, "child")
        self.asking = (ike, hoa)

    def event(self, ike, ev, now):
        """The glue's IKE events first seen here: True when this module's (not the glue's)."""
        a = self.asking
        if a is None or a[0] is not ike or ev[0] not in ("data_up", "child_failed"):
            return False
        hoa = a[1]
        log = self.node.log
        if ev[0] == "data_up":
            sa = _Sa(ike.data_out, ike.data_in)
            ike.data_out = ike.data_in = None
            log("ike", state="hoa_up", hoa=addr_text(hoa), spi_in=ev[1], spi_out=ev[2])
            reg = self.regs[hoa]
            reg.sa = sa
            self.move_one(reg, now)
            self.flush(now)
        else:
            log("error", reason="IKE: the HA refused a CHILD_SA for home address %s (notify %d)"
                % (addr_text(hoa), ev[1]))
        self.ask(ike, now)
        return True

    # ---- the registrations ---------------------------------------------------------------------
    def move_one(self, reg, now):
        node = self.node
        p = node.reg
        if reg.sa is None or p.coa is None:
            return
        if node.host.home is not None or p.coa == p.hoa:
            reg.home(now)
        else:
            reg.move(p.coa, p.transport, now)
        if self.task is None and self.glue.sockets:
            self.task = asyncio.create_task(self._timers())

    def moved(self):
        now = self.node.now()
        for reg in self.regs.values():
            self.move_one(reg, now)
        self.flush(now)

    def flush(self, now):
        node = self.node
        tr = node.uplink.active
        for h, reg in self.regs.items():
            for pkt, _ha in reg.datagrams_to_send(now):
                if tr is not None:
                    tr.send_mh(pkt)
            ev = reg.next_event()
            while ev is not None:
                k = ev[0]
                if k in ("bu", "ba", "registered", "lost"):
                    node.log("hoa_reg", hoa=addr_text(h), event=k,
                             **({"status": ev[1], "seq": ev[2]} if k == "ba" else {}))
                ev = reg.next_event()

    async def _timers(self):
        while True:
            now = self.node.now()
            t = None
            for reg in self.regs.values():
                x = reg.get_timer()
                if x is not None and x <= now:
                    reg.handle_timer(now)
                    self.flush(now)
                    x = reg.get_timer()
                if x is not None and (t is None or x < t):
                    t = x
            await sleep_ms(200 if t is None else max(1, min(200, t - now)))

    # ---- in ------------------------------------------------------------------------------------
    def packet_in(self, n):
        """A datagram from the HA in node.rx[:n]: True when it was for a further HoA (taken)."""
        node = self.node
        buf = node.rx
        if n < 40 or (buf[0] >> 4) != 6:
            return False
        h = bytes(node.rxv[24:40])
        reg = self.regs.get(h)
        if reg is None:
            return False
        if buf[6] == 50:
            now = node.now()
            reg.receive(node.rxv[:n], now)
            self.flush(now)
        elif buf[6] != 135:
            node.hosts[h].input(buf, n)
        return True


def attach(node, glue):
    """Wrap the glue's IKE events and the node's moves and packet demultiplexer (instance
    attributes, as ipsecglue.attach does)."""
    m = node.more = More(node, glue)
    event = glue._event

    def _event(ike, ev, now):
        if not m.event(ike, ev, now):
            event(ike, ev, now)
            if ev[0] == "child_up":
                m.child_up(ike, now)
    glue._event = _event
    moved, at_home, pin = node.moved, node.at_home, node.packet_in

    def node_moved(coa, transport):
        moved(coa, transport)
        m.moved()

    def node_at_home():
        at_home()
        m.moved()

    def packet_in(n):
        if not m.packet_in(n):
            pin(n)
    node.moved, node.at_home, node.packet_in = node_moved, node_at_home, packet_in
