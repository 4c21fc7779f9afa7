"""The MN's asyncio driver: decisions and packets in, the sans-IO machines, one flush out.

Data flows one way (docs/CONTRACTS.md §7 event log, §10 movement, §11 wire):
- decisions of the movement detector (or a static care-of address): `moved(coa, transport)`,
  `at_home()`, `detached()`. The uplink (uplink.py) opens the transport from the new
  address first; then the decision goes to the registration (and route optimisation) and the
  BU leaves at once, no timer.
- datagrams the uplink reads come to the one demultiplexer here: `packet_in` (from the HA's
  tunnel) and `ip6.link_in` (ip6: read on the access link; in ip6.py, which only a node using
  ip6 loads). Mobility Headers from the HA go to the
  registration, return routability's to the RouteOptimizer (roglue, ip6 only), everything else
  for the HoA to the host (UDP sockets, ping).
- `flush` is the one way out of the machines: the state file first (the sequence reservation is
  on disk before a BU beyond it leaves), then the datagrams, then the event log (eventlog.py).
- one timer task sleeping until the machines' next deadline (in slices, so a deadline set
  meanwhile is never missed by more than a slice).
At home the HoA's sockets become kernel sockets (homelink) and nothing is tunnelled.
"""
import asyncio
import gc
import time

from roam6.compat import const, ticks_diff, ticks_ms, ticks_us
from roam6.core.bul import ntp_offset_ms
from roam6.core.registration import Registration

from . import RX, load
from .eventlog import log_event, report
from .host import Host
from .state import load_state, save_state
from .transport import addr_text, sleep_ms
from .uplink import Uplink

_NH_MH = const(135)
_SLICE_MS = const(200)


class MobileNode:
    def __init__(self, cfg, log=None):
        gc.collect()
        heap0 = gc.mem_alloc() if hasattr(gc, "mem_alloc") else None   # code + buffers
        self.cfg = cfg
        self.log = log if log is not None else log_event
        st = load_state(cfg.state_file)
        self._t0 = ticks_ms()
        self._ms = 0
        # RFC 4285 timestamps come from the wall clock; without an RTC the HA's 144 corrects it
        offset = ntp_offset_ms(time.time(), self.now())
        if cfg.key is None:           # "security": "ipsec" (RFC 4877): ipsecglue.py, loaded only now
            # (an import statement, not node.load: with that layout the 32-bit bench runtime's
            # IPsec run broke, a recycled function object in ipsecglue._read: a GC root that
            # runtime misses, not found; it moves with the code's layout)
            from .ipsecglue import attach
            attach(self, st)
        else:
            self.reg = Registration(cfg.nai, cfg.spi, cfg.key, cfg.hoa, cfg.ha, cfg.lifetime,
                                    cfg.timestamps, st["seq"] if st else None, offset)
        self.host = Host(cfg.hoa, self.send_packet)
        self.uplink = Uplink(self)
        if hasattr(cfg, "ipv4_hoa"):  # RFC 5555 IPv4 home address: its side loaded only now
            load("host4.attach")(self)
        if cfg.bootstrap == ["static"]:
            cfg.raw = None            # only the bootstrap sequencer reads the raw dict
        self.rx = RX
        self.rxv = memoryview(RX)
        self.bu_us = None             # (seq, ticks_us) of the last BU logged (for bu_ba_ms)
        self._heap_due = False
        self.ro = None
        # route optimisation: asked for by the config's "ro", and only with the ip6 direct path
        if cfg.ro is not None and "ip6" in cfg.transports:
            try:
                self.ro = load("roglue.RoGlue")(self)
            except (ImportError, MemoryError) as e:
                self.log("error", reason="route optimisation not available: %s" % e)
        self.log("start", hoa=addr_text(cfg.hoa), ha=addr_text(cfg.ha),
                 seq=self.reg.seq, transports=cfg.transports, heap=heap0)

    # ---- clock: ms since start, never wrapping (ticks_ms wraps on MicroPython) ------------------
    def now(self):
        t = ticks_ms()
        self._ms += ticks_diff(t, self._t0)
        self._t0 = t
        return self._ms

    # ---- decisions from movement detection -----------------------------------------------------
    def moved(self, coa, transport):
        """New care-of address (raw bytes) on `transport` ("udp4", "udp6" or "ip6"): BU at once."""
        if self.uplink.open(transport, coa) is None:
            return
        if self.host.home is not None:
            self.host.home.close()
        self.log("link", state="moved", coa=addr_text(coa), transport=transport)
        now = self.now()
        self.reg.move(coa, transport, now)
        if self.ro is not None:
            self.ro.move(coa, transport, now)
        self.flush()

    def at_home(self):
        """The node is back on its home link: deregister over udp6 from the HoA itself, and back
        the HoA's sockets with kernel sockets (homelink, loaded only now)."""
        hoa = self.cfg.hoa
        if self.uplink.open("udp6", hoa) is None:
            return
        if self.host.home is None:    # at home exactly while the host has its HomeLink
            load("homelink.HomeLink")(self.host).open()
        self.log("link", state="home")
        now = self.now()
        self.reg.home(now)
        if self.ro is not None:
            self.ro.home(now)
        self.flush()

    def detached(self):
        if self.host.home is not None:
            self.host.home.close()
        self.log("link", state="detached")
        now = self.now()
        self.reg.detach(now)
        if self.ro is not None:
            self.ro.move(None, None, now)
        self.flush()

    # ---- in: the one demultiplexer -------------------------------------------------------------
    def packet_in(self, n):
        """One datagram from the HA's tunnel in self.rx[:n]: an inner IPv6 packet."""
        buf = self.rx
        if n < 40 or (buf[0] >> 4) != 6:
            return
        mv = self.rxv
        if bytes(mv[24:40]) != self.cfg.hoa:
            return
        now = self.now()
        if self.ro is not None and bytes(mv[8:24]) != self.cfg.ha:
            v = mv[:n]
            pkt = self.ro.inbound(v, now)   # from a CN: return routability (None), or data
            if pkt is v:
                self.host.input(buf, n)
            elif pkt is not None:
                self.ro.deliver(pkt)        # rebuilt: copied into the buffer first
            self.flush()
        elif buf[6] == _NH_MH or buf[6] == 50:   # 50: ESP, the MH under "security": "ipsec"
            k = self.reg.receive(mv[:n], now)
            if k == "unknown":              # RFC 6275 §9.2: Binding Error status 2, rate-limited
                load("mherror.answer")(self, mv, now)
            elif k is not None and self.ro is not None:
                self.ro.home_changed(now)   # a BU to a CN may have waited for the home binding
            self.flush()
        else:
            self.host.input(buf, n)

    # ---- out -----------------------------------------------------------------------------------
    def send_packet(self, pkt):
        """An inner IPv6 packet from the HoA (the host's data path). Not at home: there the HoA is
        on the link itself and the HA has no binding to carry it."""
        tr = self.uplink.active
        o = self.uplink.old          # a switch of transport: the old one until the BU has left
        if o is not None and o[3]:
            tr = o[0]
        if tr is None or self.host.home is not None:
            return False
        if self.ro is not None:
            return self.ro.send(pkt, self.now())
        return tr.send(pkt)

    def flush(self):
        """Hand out what the machines want: save state first, then datagrams, then log events."""
        reg = self.reg
        st = reg.state_to_save()
        if st is not None:
            try:
                save_state(self.cfg.state_file, st)
            except OSError as e:
                self.log("error", reason="cannot write the state file %s: %s"
                         % (self.cfg.state_file, e))
        now = self.now()
        tr = self.uplink.active
        out = reg.datagrams_to_send(now)
        sent_us = ticks_us()          # the BUs leave now (built: bu_ba_ms counts from here)
        for pkt, _ha in out:
            if tr is not None:
                tr.send_mh(pkt)
        if self.ro is not None:
            self.ro.send_queued(now)
        while True:
            ev = reg.next_event()
            if ev is None:
                break
            k = report(self, ev, sent_us)
            if self.uplink.old is not None:     # after a switch of transport
                from .switchover import step
                step(self.uplink, k, now)
            if k == "registered":
                self._heap_due = True   # logged by the timer loop, out of this deep call chain
        if self.ro is not None:
            self.ro.report()

    # ---- running -------------------------------------------------------------------------------
    def start(self, plan):
        """Run forever (asyncio.run). plan: ("moved", coa, transport) | ("home",) |
        ("link", Link, Movement class, iface[, events seen]) -- see roam6.node.app.setup."""
        try:
            asyncio.run(self._main(plan))
        except KeyboardInterrupt:
            return 130
        return 0

    async def _main(self, plan):
        asyncio.create_task(self.timer_loop())
        if self.cfg.probe:
            from . import probe
            probe.start(self, self.cfg.probe, asyncio.create_task)
        self._heap_due = True         # before the first BU: what the code and buffers take
        await sleep_ms(0)             # (the timer task logs it)
        if plan[0] == "moved":
            self.moved(plan[1], plan[2])
        elif plan[0] == "home":
            self.at_home()
        else:
            cfg = self.cfg             # (udp4 needs the HA's IPv4 address)
            transports = [t for t in cfg.transports if t != "udp4" or cfg.ha_ipv4 is not None]
            # linkglue: only nodes with a link adapter load it
            asyncio.create_task(load("linkglue.link_loop")(self, plan[1], plan[2](transports, cfg.home_prefix),
                                                           plan[4] if len(plan) > 4 else None))
        while True:
            await sleep_ms(3600000)

    async def timer_loop(self):
        reg = self.reg
        while True:
            if self._heap_due:        # the steady state: only this task's frame is live
                self._heap_due = False
                gc.collect()
                if hasattr(gc, "mem_alloc"):
                    self.log("heap", alloc=gc.mem_alloc(), free=gc.mem_free())
            now = self.now()
            t = reg.get_timer()
            ro = self.ro
            if ro is not None:
                r = ro.get_timer()
                if r is not None and (t is None or r < t):
                    t = r
            if t is not None and t <= now:
                reg.handle_timer(now)
                if ro is not None:
                    ro.handle_timer(now)
                self.flush()
                continue
            await sleep_ms(_SLICE_MS if t is None else min(_SLICE_MS, t - now))
