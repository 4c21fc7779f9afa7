"""The MN's asyncio driver: a short loop around the sans-IO registration, the transports and the
HoA's IPv6 host (DESIGN.md "Sans-IO core"; CONTRACTS.md §7 event log, §10 movement, §11 wire).

What moves it:
- `moved(coa, transport)` / `homelink.at_home(node)` / `detached()`: decisions of the movement detector (or a
  static care-of address). A move opens the transport from the new address and sends the BU
  right away (no timer); upstream data flows from that instant, downstream as soon as the HA
  has the BA's binding.
- datagrams from the HA: Mobility Headers go to the registration, everything else for the HoA
  to the host (UDP sockets, ping); with route optimisation (roglue, ip6 only) packets from and
  to correspondents pass through the RouteOptimizer first.
- at home the HoA's sockets become kernel sockets (homelink) and nothing is tunnelled.
- one timer task sleeping until the registration's next deadline (in slices, so a deadline set
  meanwhile is never missed by more than a slice).

One receive buffer serves every packet; the state file is written before any BU whose sequence
number is beyond the saved reservation.
"""
import asyncio
import gc
import json
import time

from roam6.compat import const, ticks_diff, ticks_ms, ticks_us
from roam6.core import bul as _bul
from roam6.core.registration import Registration

from . import RX
from .host import Host
from .state import load_state, save_state
from .transport import UdpTransport, addr_text, sleep_ms

_NH_MH = const(135)
_SLICE_MS = const(200)


def log_event(ev, **fields):
    """CONTRACTS.md §7: one JSON object per line, `t_ms` = ticks_ms (CLOCK_MONOTONIC on unix)."""
    fields["t_ms"] = ticks_ms()
    fields["ev"] = ev
    print(json.dumps(fields))


class MobileNode:
    def __init__(self, cfg, log=None):
        gc.collect()
        heap0 = gc.mem_alloc() if hasattr(gc, "mem_alloc") else None   # code + buffers
        self.cfg = cfg
        self.log = log if log is not None else log_event
        self.state_path = cfg.state_file
        st = load_state(self.state_path)
        self._t0 = ticks_ms()
        self._ms = 0
        now = self.now()
        # RFC 4285 timestamps come from the wall clock; without an RTC the HA's 144 corrects it
        offset = _bul.ntp_offset_ms(time.time(), now)
        self.reg = Registration(cfg.nai, cfg.spi, cfg.key, cfg.hoa, cfg.ha, cfg.lifetime,
                                cfg.timestamps, st["seq"] if st else None, offset)
        self.host = Host(cfg.hoa, self.send_packet)
        self.transports = {}
        if cfg.ha_ipv4 is not None and "udp4" in cfg.transports:
            self.transports["udp4"] = UdpTransport("udp4", addr_text(cfg.ha_ipv4))
        if "udp6" in cfg.transports:
            self.transports["udp6"] = UdpTransport("udp6", addr_text(cfg.ha))
        if cfg.bootstrap == ["static"]:
            cfg.raw = None            # only the bootstrap sequencer reads the raw dict
        self.active = None            # the transport carrying data now
        self.coa = None
        self.rx = RX
        self.rxv = memoryview(self.rx)
        self._rx_task = None
        self._bu_us = {}              # seq -> ticks_us when sent (for bu_ba_ms)
        self.registered = False
        self.failed = False
        self.home = False
        self._link_task = None
        self.rx_packets = 0
        self._heap_due = False
        self.ro = None
        # route optimisation: asked for by the config's "ro", and only with the ip6 direct path
        if cfg.ro is not None and "ip6" in cfg.transports:
            try:
                from .roglue import RoGlue
                self.ro = RoGlue(self)
            except (ImportError, MemoryError) as e:
                self.log("error", reason="route optimisation not available: %s" % e)
        self.log("start", hoa=addr_text(cfg.hoa), ha=addr_text(cfg.ha),
                 seq=self.reg.bul.seq, transports=cfg.transports, heap=heap0)

    # ---- clock: ms since start, never wrapping (ticks_ms wraps on MicroPython) ------------------
    def now(self):
        t = ticks_ms()
        self._ms += ticks_diff(t, self._t0)
        self._t0 = t
        return self._ms

    # ---- decisions from movement detection -----------------------------------------------------
    def moved(self, coa, transport):
        """New care-of address (raw bytes) on `transport` ("udp4", "udp6" or "ip6"): BU at once."""
        tr = self.transports.get(transport)
        if tr is None and transport == "ip6" and "ip6" in self.cfg.transports:
            try:
                from .ip6 import Ip6Transport            # unix only: raw and packet sockets
                tr = self.transports["ip6"] = Ip6Transport(addr_text(self.cfg.ha), self.cfg.iface)
            except (ImportError, OSError) as e:
                self.log("error", reason="ip6 transport not available here: %s" % e)
                return
        if tr is None:
            self.log("error", reason="transport %s not available (config has no address for it)" % transport)
            return
        self.coa = coa
        self._leave_home()
        try:
            reader = tr.open(addr_text(coa))
        except OSError as e:
            self.log("error", reason="cannot open %s from %s: %s" % (transport, addr_text(coa), e))
            return
        self._use(tr, reader)
        self.log("link", state="moved", coa=addr_text(coa), transport=transport)
        self.reg.move(self.now(), coa, transport)
        self.flush()
        if self.ro is not None:
            self.ro.location(self.now(), coa, transport)

    def _leave_home(self):
        self.home = False
        if self.host.home is not None:
            self.host.home.close()

    def detached(self):
        self._leave_home()
        self.log("link", state="detached")
        self.reg.bul.detach(self.now())
        self.flush()
        if self.ro is not None:
            self.ro.location(self.now(), None, None)

    def _use(self, tr, reader):
        if self.active is not None and self.active is not tr:
            self.active.close()
        self.active = tr
        if self._rx_task is not None:
            self._rx_task.cancel()
        if self._link_task is not None:
            self._link_task.cancel()
            self._link_task = None
        self._rx_task = asyncio.create_task(self._rx_loop(reader))
        if getattr(tr, "link_reader", None) is not None:
            from .ip6 import ba_loop
            self._link_task = asyncio.create_task(ba_loop(self, tr))

    # ---- sending -------------------------------------------------------------------------------
    def send_packet(self, pkt):
        """An inner IPv6 packet from the HoA (the host's data path). Not at home: there the HoA is
        on the link itself and the HA has no binding to carry it."""
        tr = self.active
        if tr is None or self.home:
            return False
        if self.ro is not None:
            return self.ro.send(self.now(), pkt)
        return tr.send(pkt)

    def flush(self):
        """Hand out what the registration wants: save state first, then BUs, then log events."""
        st = self.reg.bul.state_to_save()
        if st is not None:
            try:
                save_state(self.state_path, st)
            except OSError as e:
                self.log("error", reason="cannot write the state file %s: %s" % (self.state_path, e))
        for pkt, req in self.reg.packets_to_send():
            self._bu_us[req.seq] = ticks_us()
            if self.active is not None:
                self.active.send_mh(pkt)
        while True:
            ev = self.reg.bul.next_event()
            if ev is None:
                break
            self._report(ev)

    def _report(self, ev):
        kind = ev[0]
        tname = self.active.name if self.active is not None else None
        if kind == "bu":
            self.log("bu", seq=ev[1], lifetime=ev[2], coa=addr_text(ev[3]), transport=tname)
        elif kind == "ba":
            sent = self._bu_us.get(ev[2])
            ms = ticks_diff(ticks_us(), sent) / 1000 if sent is not None else ev[3]
            if len(self._bu_us) > 32:
                self._bu_us = {}
            self.log("ba", status=ev[1], seq=ev[2], bu_ba_ms=ms, reg_ms=ev[4],
                     coa=addr_text(self.coa), transport=tname)
        elif kind == "registered":
            self.registered = True
            self.log("registered", coa=addr_text(ev[1]), lifetime=ev[2], refresh_ms=ev[3],
                     transport=tname)
            self._heap_due = True     # logged by the timer loop, out of this deep call chain
        elif kind == "deregistered":
            self.registered = False
            self.log("deregistered", answered=ev[1])
        elif kind == "error":
            self.failed = True
            self.log("error", reason=ev[1], status=ev[2])

    def heap(self):
        gc.collect()
        if hasattr(gc, "mem_alloc"):
            self.log("heap", alloc=gc.mem_alloc(), free=gc.mem_free())

    # ---- receiving -----------------------------------------------------------------------------
    async def _rx_loop(self, reader):
        buf = self.rx
        while True:
            try:
                n = await reader.readinto(buf)
            except OSError:
                # an ICMP error queued on the connected socket (HA port closed while it restarts)
                await sleep_ms(20)
                continue
            if n:
                self.packet_in(n)

    def mh_in(self, kind):
        if kind == "brr" or kind == "be":
            self.log("lost", why=kind)
        was = self.registered
        self.flush()
        if was and not self.reg.bul.bound:
            self.registered = False

    def packet_in(self, n):
        """One datagram from the HA in self.rx[:n]: an inner IPv6 packet."""
        buf = self.rx
        if n < 40 or (buf[0] >> 4) != 6:
            return
        self.rx_packets += 1
        mv = self.rxv
        if bytes(mv[24:40]) != self.cfg.hoa:
            return
        if self.ro is not None:
            v = mv[:n]
            pkt = self.ro.tunnel_in(self.now(), v)
            if pkt is None:
                return
            if pkt is not v:          # rebuilt by route optimisation
                self.ro.deliver(pkt)
                return
        if buf[6] == _NH_MH:
            self.mh_in(self.reg.receive_packet(self.now(), mv[:n]))
            return
        self.host.input(buf, n)

    # ---- running -------------------------------------------------------------------------------
    def start(self, plan):
        """Run forever (asyncio.run). plan: ("moved", coa, transport) | ("home",) |
        ("link", Link, Movement class, iface) -- see roam6.node.app.setup."""
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
        self.heap()                   # before the first BU: what the code and buffers take
        if plan[0] == "moved":
            self.moved(plan[1], plan[2])
        elif plan[0] == "home":
            from .homelink import at_home
            at_home(self)
        else:
            from .linkglue import link_loop       # only nodes with a link adapter load it
            transports = [t for t in self.cfg.transports if t in self.transports or t == "ip6"]
            asyncio.create_task(link_loop(self, plan[1], plan[2](transports, self.cfg.home_prefix),
                                          plan[4] if len(plan) > 4 else None))
        while True:
            await sleep_ms(3600000)

    # ---- timers --------------------------------------------------------------------------------
    async def timer_loop(self):
        while True:
            if self._heap_due:        # the steady state: only this task's frame is live
                self._heap_due = False
                self.heap()
            now = self.now()
            t = self.reg.bul.get_timer()
            if t is not None and t <= now:
                self.reg.bul.handle_timer(now)
                self.flush()
                continue
            if self.ro is not None:
                r = self.ro.get_timer()
                if r is not None and r <= now:
                    self.ro.handle_timer(now)
                    continue
                if r is not None and (t is None or r < t):
                    t = r
            await sleep_ms(_SLICE_MS if t is None else min(_SLICE_MS, t - now))
