"""Route optimisation on the node (docs/CONTRACTS.md §12): roam6.core.rr.RouteOptimizer wired to
the driver. Only with the ip6 transport (unix board): the direct path needs a raw socket for
packets with a Home Address option and a packet socket for those with a type 2 routing header.
Loaded only when the config allows ip6, so small boards never carry it.

The driver calls it like a machine: decisions (`move`, `home`), packets its demultiplexer gives it
(`inbound`, `link_in`), `home_changed` after the HA's answers, timers; its datagrams and events
leave only through the driver's flush (`send_queued`, then `report`).
"""
from roam6.compat import const
from roam6.core.ro_policy import policy_from_config
from roam6.core.rr import RouteOptimizer

from .transport import addr_text

_NH_MH = const(135)


class RoGlue:
    def __init__(self, node):
        cfg = node.cfg
        self.node = node
        # RFC 6275 §11.7.2: a BU to a CN outlives neither MAX_RR_BINDING_LIFETIME nor the home
        # registration (none while it is not bound); its expiry is in node.now()'s ms
        self.ro = RouteOptimizer(cfg.hoa, policy_from_config(cfg.ro), no_ro=[cfg.ha],
                                 home_expiry=node.reg.expiry)
        self.ha = cfg.ha
        self.hoa = cfg.hoa
        self.direct_in = 0
        self.direct_out = 0
        self._native = None       # at home: an IPPROTO_RAW socket for packets from the HoA

    # ---- decisions ----------------------------------------------------------------------------
    def move(self, coa, transport, now):
        """Every movement decision away from home: the CoA counts for RO only on ip6."""
        self.ro.move(coa if transport == "ip6" else None, now)

    def home(self, now):
        self.ro.home(now)

    def home_changed(self, now):
        """After a BA from the HA: a BU to a CN that waited for the home registration goes now."""
        self.ro.home_changed(now)

    # ---- packets ------------------------------------------------------------------------------
    def inbound(self, pkt, now):
        """A packet from the tunnel not from the HA: None if RR consumed it, else the host's."""
        return self.ro.inbound(pkt, now)

    def link_in(self, pkt, now):
        """A packet read on the link from someone other than the HA (CoT to the CoA, data with a
        type 2 routing header): the packet for the HoA's host, or None."""
        coa = self.ro.coa
        if coa is None or bytes(pkt[24:40]) != coa or bytes(pkt[8:24]) == self.ha:
            return None
        nh = pkt[6]
        if nh != 43 and nh != 135:
            return None           # anything else for the CoA is the kernel's (or the tunnel's)
        self.direct_in += 1
        return self.ro.inbound(pkt, now)

    def deliver(self, pkt):
        """A packet for the HoA's host from route optimisation (CN -> HoA, rebuilt from an RH2
        packet, or as it came): copied into the node's receive buffer, where ping is answered in
        place (a Mobility Header there is not the host's)."""
        node = self.node
        rx = node.rx
        n = len(pkt)
        if n > len(rx):
            return
        rx[:n] = bytes(pkt)
        if rx[6] != _NH_MH:
            node.host.input(rx, n)

    def send(self, pkt, now):
        """A packet of the HoA's host: direct (from the CoA, Home Address option) when the CN holds
        our binding, else through the tunnel. Returns what the transport says."""
        tr = self.node.uplink.active
        if tr is None:
            return False
        via, out = self.ro.outbound(pkt, now)
        if via == "direct" and hasattr(tr, "send_raw"):
            self.direct_out += 1
            return tr.send_raw(out)
        return tr.send(pkt)

    # ---- out (called by the driver's flush only) ------------------------------------------------
    def send_queued(self, now):
        node = self.node
        tr = node.uplink.active
        for via, pkt in self.ro.datagrams_to_send(now):
            if node.host.home is not None:   # at home
                if via == "home":
                    self._send_native(pkt)    # e.g. the deregistration BU to a CN, from the HoA
                continue
            if tr is None:
                continue
            if via == "direct":
                if hasattr(tr, "send_raw"):
                    tr.send_raw(pkt)
            else:
                tr.send(pkt)

    def report(self):
        """rr's events (its table) as event-log lines."""
        log = self.node.log
        while True:
            ev = self.ro.next_event()
            if ev is None:
                return
            kind = ev[0]
            if kind == "ro_bound":
                _, cn, coa, seq, lifetime, rr_ms = ev
                log(kind, cn=addr_text(cn), coa=addr_text(coa), seq=seq, lifetime=lifetime,
                    rr_ms=rr_ms)
            elif kind == "ro_dereg":
                _, cn, seq = ev
                log(kind, cn=addr_text(cn), seq=seq)
            else:
                _, cn, reason = ev
                log(kind, cn=addr_text(cn), reason=reason)

    def _send_native(self, pkt):
        """At home the HoA is on the link: send the packet as it is, no tunnel."""
        import socket
        from .transport import AF_INET6, sockaddr
        try:
            if self._native is None:
                self._native = socket.socket(AF_INET6, socket.SOCK_RAW, 255)
            self._native.sendto(pkt, sockaddr(addr_text(bytes(pkt[24:40])), 0))
        except OSError:
            pass

    # ---- timers -------------------------------------------------------------------------------
    def get_timer(self):
        return self.ro.get_timer()

    def handle_timer(self, now):
        self.ro.handle_timer(now)
