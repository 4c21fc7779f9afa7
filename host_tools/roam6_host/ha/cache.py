"""The home agent's binding cache: sans-IO, fed packets and `now`, returning datagrams and events.

Theory of operation
-------------------
The driver hands every Mobility Header packet that reaches the HA to `receive(packet, source,
now)`: for udp4/udp6 the IPv6 packet found in the UDP payload (RFC 5555), for ip6 the whole IPv6
packet read from a packet socket (it carries a Home Address option). `source` is the tuple
`(transport, host, port)` of the outer header exactly as the socket reported it ('udp4' |
'udp6' | 'ip6', address text, UDP port or 0). `receive` returns a list of `(transport, peer,
datagram)` to send: for UDP the datagram is the inner IPv6 packet (the driver sends it from port
4191 to `peer`), for ip6 it is the whole IPv6 packet with its type 2 routing header. What
changed is queued as events (`next_event()`): the driver turns BindingAdded/BindingRemoved into
routes and proxy-ND entries, and logs the rest. Time is seconds since the Unix epoch (a float):
the same clock drives expiry and the RFC 4285 timestamp window, so tests run it virtually.

`get_timer()` is the earliest binding expiry, `handle_timer(now)` removes what expired.
`bindings` ({HoA bytes: Binding}) is what the data plane looks up per packet.

The rules
---------
A BU goes through BU_RULES in order (PROTOCOLS.md §11.2, RFC 6275 §9.5.1/§10.3.1, RFC 4285,
RFC 5555 §4). The first rule that fails decides: DROP (silently discarded, the driver logs it
once per source) or a BA with that status. A BU that passes them all is accepted and moves the
binding as BINDING_TRANSITIONS says.
"""
import heapq
import hmac
import socket

from roam6.wire import consts as C
from roam6.wire import mhopts as mo
from roam6.wire.checksum import checksum6
from roam6.wire.errors import DecodeError
from roam6.wire.ipv6 import build_ipv6, decode_ipv6, pseudo_dst, pseudo_src
from roam6.wire.mh import BindingAck, BindingError, BindingUpdate, decode_mh

DROP = "drop"
NTP_EPOCH = 2208988800          # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
V4MAPPED = b"\0" * 10 + b"\xff\xff"
NO_KEEPALIVE = 0xFFFFFFFF       # RFC 5555 NAT Detection refresh time: no NAT seen, no keepalives

#  verdict on failure        rule             what must hold
BU_RULES = (
    (DROP,                 "parse"),        # an IPv6 packet holding a well-formed BU with a good MH checksum
    (DROP,                 "mn_id"),        # MN-ID option (NAI) present, before the MN-HA option, which is last
    (DROP,                 "spi"),          # the MN-HA option's SPI is one of ours (RFC 4285 §6: else drop)
    (DROP,                 "nai"),          # the MN-ID names the SPI's owner (§11.3)
    (C.BA_AUTH_FAIL,       "auth"),         # 146: the authenticator is right (RFC 4285)
    (C.BA_MESG_ID_REQD,    "ts_required"),  # 145: the timestamp option is there when policy requires it
    (C.BA_ID_MISMATCH,     "ts_window"),    # 144: timestamp within replay_window s and newer than the last
    (C.BA_SEQ_OUT_OF_WINDOW, "sequence"),   # 135: seq greater (mod 2^16) than the last accepted
    (C.BA_REG_TYPE_CHANGE, "reg_type"),     # 139: H bit equal to the existing binding's
    (C.BA_NOT_HOME_SUBNET, "home_subnet"),  # 132: HoA inside the home prefix
    (C.BA_PROHIBITED,      "home_reg"),     # 129: a home registration (H=1) for the SA's own HoA
    (C.BA_NOT_HA_FOR_MN,   "dereg_bound"),  # 133: a deregistration finds a binding (§11.6)
)

# (state, accepted BU) -> (new state, event). "dereg" = lifetime 0 or CoA == HoA (RFC 6275 §10.3.2).
BINDING_TRANSITIONS = {
    ("none", "register"): ("bound", "BindingAdded"),
    ("bound", "register, same CoA"): ("bound", "BindingRefreshed"),
    ("bound", "register, new CoA"): ("bound", "BindingMoved"),      # downstream follows at once
    ("bound", "dereg"): ("none", "BindingRemoved(dereg)"),
    ("bound", "lifetime over"): ("none", "BindingRemoved(expired)"),  # handle_timer
    # ("none", "dereg") never happens: rule dereg_bound answers it with 133
}


class Binding:
    """One binding cache entry (RFC 6275 §9.1) plus the RFC 5555 outer path to reach the MN."""

    __slots__ = ("hoa", "hoa_text", "coa", "transport", "peer", "seq", "lifetime", "expires", "spi", "nat", "home")

    def __init__(self, hoa, spi):
        self.hoa = hoa
        self.hoa_text = socket.inet_ntop(socket.AF_INET6, hoa)
        self.spi = spi
        self.coa = b""          # 16 bytes: the CoA the MAC covered (v4-mapped for udp4)
        self.transport = ""
        self.peer = None        # (host, port) to send to: NAT-mapped for udp4; (CoA text, 0) for ip6
        self.seq = 0
        self.lifetime = 0       # granted, seconds
        self.expires = 0.0
        self.nat = False
        self.home = True        # H flag: a home registration

    def as_dict(self):
        return {"hoa": self.hoa_text, "transport": self.transport, "peer": "%s:%d" % self.peer,
                "seq": self.seq, "lifetime": self.lifetime, "nat": self.nat}


class Event:
    __slots__ = ("binding", "reason", "status", "source", "old_peer", "old_transport")
    name = "event"

    def __init__(self, binding=None, reason="", status=None, source=None, old_peer=None, old_transport=None):
        self.binding = binding
        self.reason = reason
        self.status = status
        self.source = source
        self.old_peer = old_peer
        self.old_transport = old_transport

    def as_dict(self):
        d = {"ev": self.name}
        if self.binding is not None:
            d.update(self.binding.as_dict())
        if self.reason:
            d["reason"] = self.reason
        if self.status is not None:
            d["status"] = self.status
        if self.source is not None:
            d["source"] = "%s:%s:%d" % self.source
        return d


class BindingAdded(Event):
    name = "binding_added"


class BindingMoved(Event):
    name = "binding_moved"


class BindingRefreshed(Event):
    name = "binding_refreshed"


class BindingRemoved(Event):
    name = "binding_removed"


class BURejected(Event):
    name = "bu_rejected"


class BUDropped(Event):
    name = "bu_dropped"


class _BU:
    """What the rules learn about one BU while they run."""

    __slots__ = ("source", "pkt", "bu", "hoa", "coa", "sa", "auth", "mnid", "ts", "v4coa", "dereg", "nat", "reason")


class BindingCache:
    def __init__(self, ha_address, home_prefix_bytes, sas, max_lifetime=3600, replay_window=7,
                 nat_refresh=110, require_timestamps=False, keep_events=True):
        self.ha = bytes(ha_address)
        self.prefix = bytes(home_prefix_bytes)      # the home prefix's leading bytes (e.g. 8 for a /64)
        self.sas = sas                              # {spi: sa.SA}
        self.max_units = min(max_lifetime // 4, 0xFFFF)
        self.replay_window = replay_window
        self.nat_refresh = nat_refresh
        self.require_timestamps = require_timestamps
        self.keep_events = keep_events              # the benchmark turns the queue off
        self.bindings = {}                          # {HoA: Binding}
        self._events = []
        self._expiry = []                           # heap of (expires, HoA); stale rows skipped
        self._be_sent = {}                          # peer -> time of the last Binding Error
        self._rules = [(verdict, getattr(self, "_rule_" + name), name) for verdict, name in BU_RULES]

    # ---- sans-IO surface --------------------------------------------------------------------
    def receive(self, packet, source, now):
        """One packet carrying a BU; returns [(transport, peer, datagram)] (possibly empty)."""
        c = _BU()
        c.pkt = packet
        c.source = source
        c.sa = None
        c.reason = ""
        for verdict, rule, name in self._rules:
            try:
                ok = rule(c, now)
            except (DecodeError, ValueError, TypeError, AttributeError, IndexError, OSError) as exc:
                ok, c.reason = False, "%s: %s" % (name, exc)   # a hostile packet never escapes as a crash
            if not ok:
                if verdict is DROP:
                    if self.keep_events:
                        self._events.append(BUDropped(reason=c.reason or name, source=source))
                    return []
                if self.keep_events:
                    self._events.append(BURejected(status=verdict, reason=name, source=source))
                return self._reject(c, verdict, now)
        return self._accept(c, now)

    def next_event(self):
        return self._events.pop(0) if self._events else None

    def events(self):
        evs, self._events = self._events, []
        return evs

    def get_timer(self):
        return self._expiry[0][0] if self._expiry else None

    def handle_timer(self, now):
        heap = self._expiry
        while heap and heap[0][0] <= now:
            expires, hoa = heapq.heappop(heap)
            b = self.bindings.get(hoa)
            if b is not None and b.expires <= now:
                del self.bindings[hoa]
                self._events.append(BindingRemoved(b, reason="expired"))

    def remove_all(self):
        """Clean stop: every binding ends (the driver removes routes and proxies from the events)."""
        for b in list(self.bindings.values()):
            self._events.append(BindingRemoved(b, reason="shutdown"))
        self.bindings.clear()
        self._expiry.clear()

    def unbound_data(self, inner_src, source, now):
        """Data arrived over a tunnel from a HoA with no binding on that path (e.g. after an HA
        restart): answer with a Binding Error (status 1) through the same path, at most once a
        second per peer, so the MN re-registers at once (CONTRACTS.md §11 "Lost binding")."""
        if inner_src[: len(self.prefix)] != self.prefix:
            return []
        transport, host, port = source
        peer = (host, port)
        last = self._be_sent.get(peer)
        if last is not None and now - last < 1.0:
            return []
        if len(self._be_sent) > 4096:
            self._be_sent.clear()
        self._be_sent[peer] = now
        mh = BindingError(C.BE_UNKNOWN_BINDING, bytes(inner_src), []).encode(src=self.ha, dst=bytes(inner_src))
        if transport == "ip6":
            return []   # the ip6 path answers through the driver's raw socket only for BUs
        return [(transport, peer, build_ipv6(self.ha, bytes(inner_src), C.NH_MH, mh))]

    # ---- the rules (BU_RULES), in order --------------------------------------------------------
    def _rule_parse(self, c, now):
        transport, host, port = c.source
        pkt = decode_ipv6(c.pkt)
        if pkt.nh != C.NH_MH:
            c.reason = "parse: not a Mobility Header (next header %d)" % pkt.nh
            return False
        if bytes(pkt.dst) != self.ha:
            c.reason = "parse: not addressed to the HA's address"
            return False
        bu = decode_mh(pkt.payload)
        if not isinstance(bu, BindingUpdate):
            c.reason = "parse: MH type %s is not a BU" % type(bu).__name__
            return False
        if checksum6(pseudo_src(pkt), pseudo_dst(pkt), C.NH_MH, bu.raw) != 0:
            c.reason = "parse: bad MH checksum"
            return False
        c.bu = bu
        c.hoa = bytes(pkt.hao if pkt.hao is not None else pkt.src)
        c.nat = False
        if transport == "udp4":
            # PROTOCOLS.md §11.1: the MAC covers the v4-mapped IPv4 CoA option; the outer source
            # (possibly NAT-mapped) is only where the replies go
            v4 = bu.find(mo.IPv4CareofAddress)
            if v4 is None:
                c.reason = "parse: udp4 BU without an IPv4 Care-of Address option"
                return False
            c.coa = V4MAPPED + bytes(v4.address)
            c.nat = socket.inet_aton(host) != bytes(v4.address)
        elif transport == "udp6":
            c.coa = socket.inet_pton(socket.AF_INET6, host.split("%")[0])
        else:
            alt = bu.find(mo.AlternateCoA)
            c.coa = bytes(alt.address) if alt is not None else bytes(pkt.src)
        rp = bu.find(mo.ReplayProtection)
        c.ts = rp.timestamp if rp is not None else None
        c.dereg = bu.lifetime == 0 or c.coa == c.hoa
        return True

    def _rule_mn_id(self, c, now):
        mnid = auth = None
        opts = c.bu.options
        for i, o in enumerate(opts):
            if isinstance(o, mo.MNIdentifier):
                if mnid is None and auth is None:
                    mnid = o
            elif isinstance(o, mo.MobilityAuth):
                if o.subtype != C.AUTH_MN_HA or i != len(opts) - 1:
                    c.reason = "mn_id: the MN-HA option must be the last option"
                    return False
                auth = o
        if mnid is None or mnid.subtype != C.MNID_NAI or auth is None:
            c.reason = "mn_id: BU without an MN-ID (NAI) before an MN-HA option"
            return False
        c.mnid, c.auth = mnid, auth
        return True

    def _rule_spi(self, c, now):
        c.sa = self.sas.get(c.auth.spi)
        if c.sa is None:
            c.reason = "spi: unknown SPI %d" % c.auth.spi
            return False
        return True

    def _rule_nai(self, c, now):
        if bytes(c.mnid.identifier) != c.sa.nai:
            c.reason = "nai: MN-ID does not name the owner of SPI %d" % c.sa.spi
            return False
        return True

    def _rule_auth(self, c, now):
        raw = c.bu.raw
        mh_data = bytes(raw[:4]) + b"\0\0" + bytes(raw[6:len(raw) - 12])
        want = c.sa.mnha_auth(c.coa, c.hoa, mh_data)
        return len(c.auth.auth_data) == 12 and hmac.compare_digest(want, bytes(c.auth.auth_data))

    def _rule_ts_required(self, c, now):
        return c.ts is not None or not self.require_timestamps

    def _rule_ts_window(self, c, now):
        if c.ts is None:
            return True
        secs = c.ts >> 32
        return abs(secs - (now + NTP_EPOCH)) <= self.replay_window and c.ts > c.sa.last_ts

    def _rule_sequence(self, c, now):
        b = self.bindings.get(c.hoa)
        return b is None or 0 < ((c.bu.seq - b.seq) & 0xFFFF) < 0x8000

    def _rule_reg_type(self, c, now):
        b = self.bindings.get(c.hoa)
        return b is None or b.home == bool(c.bu.flags & C.BU_H)

    def _rule_home_subnet(self, c, now):
        return c.hoa[: len(self.prefix)] == self.prefix

    def _rule_home_reg(self, c, now):
        return bool(c.bu.flags & C.BU_H) and (c.sa.hoa is None or c.sa.hoa == c.hoa)

    def _rule_dereg_bound(self, c, now):
        return not c.dereg or c.hoa in self.bindings

    # ---- outcomes ---------------------------------------------------------------------------
    def _accept(self, c, now):
        bu, hoa = c.bu, c.hoa
        if c.ts is not None:
            c.sa.last_ts = c.ts
        b = self.bindings.get(hoa)
        transport, host, port = c.source
        if c.dereg:
            del self.bindings[hoa]          # rule dereg_bound made sure it is there
            if self.keep_events:
                self._events.append(BindingRemoved(b, reason="dereg"))
            units = bra = 0
        else:
            units = bu.lifetime if bu.lifetime < self.max_units else self.max_units
            peer = (socket.inet_ntop(socket.AF_INET6, c.coa), 0) if transport == "ip6" else (host, port)
            if b is None:
                b = Binding(hoa, c.sa.spi)
                self.bindings[hoa] = b
                ev = BindingAdded(b)
            elif b.peer != peer or b.transport != transport:
                ev = BindingMoved(b, old_peer=b.peer, old_transport=b.transport)
            else:
                ev = BindingRefreshed(b)
            # the data plane reads these fields per packet: from here on downstream goes to `peer`
            b.peer, b.transport, b.coa, b.nat = peer, transport, c.coa, c.nat
            b.seq, b.lifetime, b.home = bu.seq, units * 4, True
            b.expires = now + units * 4
            heapq.heappush(self._expiry, (b.expires, hoa))
            if self.keep_events:
                self._events.append(ev)
            bra = units * 3 // 4     # RFC 6275 §10.3.1: refresh advice smaller than the lifetime
        if not bu.flags & C.BU_A:
            return []
        return self._ba(c, C.BA_ACCEPTED, bu.seq, units, bra, c.ts, now)

    def _reject(self, c, status, now):
        seq = c.bu.seq
        ts = c.ts
        if status == C.BA_SEQ_OUT_OF_WINDOW:
            seq = self.bindings[c.hoa].seq           # RFC 6275 §9.5.1: the last accepted number
        elif status == C.BA_ID_MISMATCH:
            # RFC 4285 §6: our seconds, the BU's low 32 bits, so the MN can resynchronise
            ts = ((int(now) + NTP_EPOCH) << 32) | (ts & 0xFFFFFFFF)
        return self._ba(c, status, seq, 0, 0, ts, now)

    def _ba(self, c, status, seq, units, bra, ts, now):
        sa, coa, hoa = c.sa, c.coa, c.hoa
        transport, host, port = c.source
        opts = [mo.MNIdentifier(C.MNID_NAI, sa.nai)]
        if ts is not None:
            opts.append(mo.ReplayProtection(ts))
        if transport != "ip6":
            # RFC 5555 §4.1: always over UDP; F=1 because roam6 has no plain IPv6-in-IPv4 mode
            opts.append(mo.NATDetection(True, self.nat_refresh if (c.nat or transport == "udp6") else NO_KEEPALIVE))
        if bra:
            opts.append(mo.BindingRefreshAdvice(bra))
        opts.append(mo.MobilityAuth(C.AUTH_MN_HA, sa.spi, None))
        mh = BindingAck(status, 0, seq, units, opts).encode(
            src=self.ha, dst=hoa, mac=lambda prefix: sa.mnha_auth(coa, hoa, prefix))
        if transport == "ip6":
            return [("ip6", (socket.inet_ntop(socket.AF_INET6, coa), 0),
                     build_ipv6(self.ha, coa, C.NH_MH, mh, rh2=hoa))]
        return [(transport, (host, port), build_ipv6(self.ha, hoa, C.NH_MH, mh))]
