"""The home agent's binding cache: sans-IO, fed packets and `now`, giving back datagrams and events.

Theory of operation
-------------------
The driver hands every Mobility Header packet that reaches the HA to `receive(packet, source,
now, wall=...)`: for udp4/udp6 the IPv6 packet found in the UDP payload (RFC 5555), for ip6 the
whole IPv6 packet read from a packet socket (with a Home Address option, or without one for a
deregistration sent from the home link). `source` is the tuple `(transport, host, port)` of the
outer header exactly as the socket reported it ('udp4' | 'udp6' | 'ip6', address text, UDP port
or 0). What to send then comes from `datagrams_to_send(now)`: a list of `(datagram,
destination)`, destination shaped like `source`. For UDP the datagram is the inner IPv6 packet
(the driver sends it from port 4191 to `(host, port)`), for ip6 it is the whole IPv6 packet (with
a type 2 routing header unless it goes to an MN back home; port 0).

Two clocks, both integer milliseconds, both given, so tests run them virtually: `now` (the last
positional argument everywhere) drives expiry, rate limits and the DAD wait and must not jump
(the driver's `time.monotonic_ns() // 1_000_000`); the keyword `wall`, ms since the Unix epoch,
is what RFC 4285 timestamps are checked against and made from. A wall clock stepped by NTP then
moves neither a binding's end nor a timer. Without `wall`, `now` serves as both.

`get_timer()` is the earliest deadline (a binding's expiry, the end of a DAD wait) in ms or
None; `handle_timer(now)` removes what expired and queues the BAs of DADs that passed.

Duplicate Address Detection (RFC 6275 §10.4.1): unless a binding for the HoA exists, an
accepted home registration is held (`dad_ms` > 0) while the driver probes the home link: the
event dad_started asks for the probe (a Neighbor Solicitation from ::), `dad_conflict(hoa, now)`
reports a node that answered or probes for the same address (BA 134), and `dad_ms` of silence
accept the BU. A BU retransmitted meanwhile replaces the held one (the BA answers the newest).
`bindings` ({HoA bytes: Binding}) is what the data plane looks up per packet.

Events
------
`next_event()` (or `events()`, all at once) gives what changed, each a tuple whose first item is
its kind; the driver turns binding_added/binding_removed into routes and proxy-ND entries, sends
the probe for dad_started, and logs every event (`as_dict()`, the log line's fields).

    kind               fields after kind                class
    binding_added      binding                          BindingAdded
    binding_refreshed  binding                          BindingRefreshed
    binding_moved      binding, old_peer, old_transport BindingMoved
    binding_removed    binding, reason                  BindingRemoved  (dereg|expired|revoked|...)
    dad_started        hoa, source                      DadStarted      (hoa: 16 bytes)
    bu_rejected        status, reason, source           BURejected      (reason: the failed rule)
    bu_dropped         reason, source                   BUDropped

`ignored` counts inputs that change nothing and get no answer: BUs dropped by a rule, and DAD
conflicts for a HoA that waits for no DAD.

The rules
---------
A BU goes through BU_RULES in order (docs/PROTOCOL-NOTES.md §11.2, RFC 6275 §9.5.1/§10.3.1, RFC 4285,
RFC 5555 §4). The first rule that fails decides: DROP (silently discarded, the driver logs it
once per source) or a BA with that status. A BU that passes them all is accepted and moves the
binding as BINDING_TRANSITIONS says.
"""
import heapq
import hmac
import struct
from typing import NamedTuple

from roam6_codec import consts as C
from roam6_codec import mhopts as mo
from roam6.wire.addr import ip4_from_text, ip6_from_text, ip6_to_text
from roam6.wire.errors import DecodeError
from roam6.wire.ipv6 import build_ipv6, decode_ipv6
from roam6_codec.mh import BindingAck, BindingError, BindingUpdate, decode_mh

from .. import mhcheck
from .limits import HALimits
from .bugate import early_drop
from .mhopts_once import duplicated_option

DROP = "drop"
NTP_EPOCH = 2208988800          # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
V4MAPPED = b"\0" * 10 + b"\xff\xff"
NO_KEEPALIVE = 0xFFFFFFFF       # RFC 5555 NAT Detection refresh time: no NAT seen, no keepalives
BE_INTERVAL_MS = 1000           # at most one Binding Error per peer per second

#  verdict on failure        rule             what must hold
BU_RULES = (
    (DROP,                 "parse"),        # an IPv6 packet holding a well-formed BU with a good MH checksum
    (DROP,                 "mn_id"),        # MN-ID option (NAI) present, before the MN-HA option, which is last
    (DROP,                 "spi"),          # the MN-HA option's SPI is one of ours (RFC 4285 §6: else drop)
    (DROP,                 "nai"),          # the MN-ID names the SPI's owner (§11.3)
    (DROP,                 "budget"),       # the source is within its rejection budget (ha/limits.py)
    (C.BA_AUTH_FAIL,       "auth"),         # 146: the authenticator is right (RFC 4285)
    (C.BA_MESG_ID_REQD,    "ts_required"),  # 145: the timestamp option is there when policy requires it
    (C.BA_ID_MISMATCH,     "ts_window"),    # 144: timestamp within replay_window s and newer than the last
    (C.BA_SEQ_OUT_OF_WINDOW, "sequence"),   # 135: seq greater (mod 2^16) than the last accepted
    (C.BA_REG_TYPE_CHANGE, "reg_type"),     # 139: H bit equal to the existing binding's
    (C.BA_NOT_HOME_SUBNET, "home_subnet"),  # 132: HoA inside the home prefix
    (C.BA_PROHIBITED,      "home_reg"),     # 129: a home registration (H=1) for a HoA this SA may use
    (C.BA_NOT_HA_FOR_MN,   "dereg_bound"),  # 133: a deregistration finds a binding (§11.6)
    (C.BA_INSUFFICIENT,    "capacity"),     # 130: a new binding fits the caps (ha/limits.py)
)

# a BU that came inside ESP (ha/ipsecmh.py) skips these: the CHILD_SA authenticated it (RFC 4877 §4.3)
ESP_SKIPPED_RULES = ("mn_id", "spi", "nai", "auth", "ts_required", "ts_window")
# BUs that count against their source host's failure bucket (ha/sourceblock.py): a wrong key or
# credential, or dropped for the source's budget or block
_FAIL_RULES = ("spi", "nai", "auth", "budget")
_FAIL_REASONS = ("spi:", "budget:", "blocked:")

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

    __slots__ = ("hoa", "hoa_text", "coa", "transport", "peer", "seq", "lifetime", "expires", "spi", "nat", "home",
                 "rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "v4", "nai", "tlv")

    def __init__(self, hoa, spi):
        self.hoa = hoa
        self.hoa_text = None    # made when first logged (the benchmark never logs)
        self.spi = spi
        self.coa = b""          # 16 bytes: the CoA the MAC covered (v4-mapped for udp4)
        self.transport = ""
        self.peer = None        # (host, port) to send to: NAT-mapped for udp4; (CoA text, 0) for ip6
        self.seq = 0
        self.lifetime = 0       # granted, seconds (as the BA says it)
        self.expires = 0        # ms on the `now` clock
        self.nat = False
        self.home = True        # H flag: a home registration
        self.rx_packets = self.rx_bytes = 0     # tunnelled from the MN (the driver counts; accounting)
        self.tx_packets = self.tx_bytes = 0     # tunnelled to the MN
        self.v4 = self.nai = None   # RFC 5555 IPv4 HoA (4 bytes) bound with it, and its NAI (ipv4home.py)
        self.tlv = False        # RFC 5555 TLV header on this udp4 path (BU flag T; roam6_codec/udptlv.py)

    def as_dict(self):
        if self.hoa_text is None:
            self.hoa_text = ip6_to_text(self.hoa)
        d = {"hoa": self.hoa_text, "transport": self.transport, "peer": "%s:%d" % self.peer,
             "seq": self.seq, "lifetime": self.lifetime, "nat": self.nat}
        if self.tlv:
            d["tlv"] = True
        return d


def _event_dict(ev):
    """An event's log line fields: {"ev": kind, ...} with addresses as text."""
    d = {"ev": ev.kind}
    for name, value in zip(ev._fields[1:], ev[1:]):
        if name == "binding":
            d.update(value.as_dict())
        elif name == "hoa":
            d["reason"] = ip6_to_text(value)        # dad_started logs the address it probes
        elif name == "source":
            d["source"] = "%s:%s:%d" % value
        elif name == "old_peer":
            d["old_peer"] = "%s:%d" % value
        else:
            d[name] = value
    return d


class BindingAdded(NamedTuple):
    kind: str                   # "binding_added"
    binding: Binding
    as_dict = _event_dict


class BindingRefreshed(NamedTuple):
    kind: str                   # "binding_refreshed"
    binding: Binding
    as_dict = _event_dict


class BindingMoved(NamedTuple):
    kind: str                   # "binding_moved"
    binding: Binding
    old_peer: tuple             # (host, port) downstream went to until now
    old_transport: str
    as_dict = _event_dict


class BindingRemoved(NamedTuple):
    kind: str                   # "binding_removed"
    binding: Binding
    reason: str                 # dereg | expired | revoked | shutdown | replica
    as_dict = _event_dict


class DadStarted(NamedTuple):
    """Probe the home link for `hoa` (16 bytes); `source` is the BU's path."""
    kind: str                   # "dad_started"
    hoa: bytes
    source: tuple
    as_dict = _event_dict


class BURejected(NamedTuple):
    kind: str                   # "bu_rejected"
    status: int                 # the BA's status
    reason: str                 # the rule that failed (or "dad")
    source: tuple
    as_dict = _event_dict


class BUDropped(NamedTuple):
    kind: str                   # "bu_dropped"
    reason: str                 # the rule that failed and why
    source: tuple
    as_dict = _event_dict


class _BU:
    """What the rules learn about one BU while they run."""

    __slots__ = ("source", "pkt", "mh", "opts", "seq", "flags", "lifetime", "hoa", "coa", "v4coa", "ts",
                 "auth_spi", "nai", "auth_data", "sa", "dereg", "nat", "plain", "reason", "wall", "v4hoa", "v4ack",
                 "esp", "b")


class BindingCache:
    esp_sas = None          # {NAI: ipsecmh.CacheSA} when IPsec devices exist: `apply` finds them by NAI
    renum = None            # prefixes.Renumbering while ha.json "renumber" serves a second home prefix
    def __init__(self, ha_address, home_prefix_bytes, sas, max_lifetime=3600, replay_window=7,
                 nat_refresh=110, require_timestamps=False, keep_events=True, fast=True, dad_ms=0, limits=None):
        self.ha = bytes(ha_address)
        self.prefix = bytes(home_prefix_bytes)      # the home prefix's leading bytes (e.g. 8 for a /64)
        self.sas = sas                              # {spi: sa.SA}
        self.max_units = min(max_lifetime // 4, 0xFFFF)     # max_lifetime: seconds, as BUs count
        self.replay_window_ms = replay_window * 1000        # given in s, as RFC 4285 counts
        self.nat_refresh = nat_refresh              # seconds, as the NAT Detection option says it
        self.require_timestamps = require_timestamps
        self.keep_events = keep_events              # the benchmark turns the queue off
        self.bindings = {}                          # {HoA: Binding}
        self.dad_ms = dad_ms                        # DAD wait on the home link; 0: none
        self.dad_skip_pinned = False                # no DAD for a HoA pinned to the BU's SA (ha.json)
        self.ignored = 0                            # inputs that changed nothing and got no answer
        self._dad = {}                              # {HoA: [held BU context, deadline]}
        self._events = []
        self._out = []                              # [(datagram, (transport, host, port))]
        self._expiry = []                           # heap of (expires, HoA); stale rows skipped
        self.limits = limits or HALimits()          # budgets and binding caps (ha/limits.py)
        self._host_addr = {}                        # {outer host text: its address bytes}
        self.fast = fast                            # per-SA BU shapes and BA templates (the hot path)
        self._psum = {}                             # {HoA: sum of the HA and HoA pseudo-header words}
        self._shapes = {}                           # {packet length: [_Shape]} learnt from good BUs
        self._ba_tpl = {}                           # {(NAI length, timestamp?, BRA?): _BATemplate}
        self._pinned = {sa.hoa: spi for spi, sa in sas.items() if sa.hoa is not None}   # {HoA: owner SPI}
        self._rules = [(verdict, getattr(self, "_rule_" + name), name) for verdict, name in BU_RULES]
        self._esp_rules = [r for r in self._rules if r[2] not in ESP_SKIPPED_RULES]   # (ha/ipsecmh.py)
        self._rule_fns = tuple(r for _v, r, _n in self._rules)              # the hot loop: calls only
        self._esp_rule_fns = tuple(r for _v, r, _n in self._esp_rules)
        self._rule_of = {r: (v, n) for v, r, n in self._rules}             # a failed one's verdict, name
        self.aaa = None                             # aaa.agent.AaaAgent: SAs for unknown SPIs from RADIUS
        self.v4homes = None                         # ipv4home.IPv4Homes: RFC 5555 IPv4 home addresses
        self.vendor = None                          # ha/vendor.py VendorStore: RFC 5094/5096 data per binding

    # ---- sans-IO surface --------------------------------------------------------------------
    def receive(self, packet, source, now, *, wall=None, esp=None):
        """One packet carrying a BU, from `source` (transport, host, port); its answer (if any)
        is queued for datagrams_to_send(). esp: the ipsecmh.Child whose CHILD_SA the BU came
        in (opened already): its device's pseudo SA, the ESP rules, the BA sealed by it."""
        c = _BU()
        c.wall = now if wall is None else wall
        c.pkt = packet
        c.source = source
        c.sa = c.coa = None
        c.nat = False
        c.reason = ""
        c.v4hoa = c.v4ack = None
        c.esp = esp
        rules = self._rule_fns
        if esp is not None:
            c.sa, rules = esp.cache_sa, self._esp_rule_fns
        rule = None
        try:
            for rule in rules:     # the rules in order, the first that fails decides
                if not rule(c, now):
                    break
            else:
                rule = None
        except (DecodeError, ValueError, TypeError, AttributeError, IndexError, KeyError, OSError,
                struct.error) as exc:
            c.reason = "%s: %s" % (self._rule_of[rule][1], exc)   # a hostile packet never escapes as a crash
        if rule is not None:
            verdict, name = self._rule_of[rule]
            if name == "spi" and self.aaa is not None and self.aaa.unknown_sa(c, now):
                return      # held until the AAA server answers (roam6_host/aaa/agent.py)
            if verdict is not DROP and not self.limits.reject(source, now):
                verdict, c.reason = DROP, "rate: rejections from %s over budget (%s)" % (source[1], name)
            elif name in ("spi", "nai") or c.reason.startswith("spi:"):
                self.limits.reject(source, now)
            if name in _FAIL_RULES or c.reason.startswith(_FAIL_REASONS):
                self.limits.failed(source, now)     # its host may get blocked (ha/sourceblock.py)
            if verdict is DROP:
                self.ignored += 1
                if self.keep_events:
                    self._events.append(BUDropped("bu_dropped", c.reason or name, source))
                return
            if self.keep_events:
                self._events.append(BURejected("bu_rejected", verdict, name, source))
            self._reject(c, verdict, now)
            return
        if self.dad_ms and not c.dereg and c.hoa not in self.bindings and not (
                self.dad_skip_pinned and self._pinned.get(c.hoa) == c.sa.spi):
            held = self._dad.get(c.hoa)
            if held is None:
                self._dad[c.hoa] = [c, now + self.dad_ms]
                self._events.append(DadStarted("dad_started", c.hoa, source))
            else:
                held[0] = c                         # a retransmission: the BA will answer it
            return
        self._accept(c, now)

    def datagrams_to_send(self, now):
        """[(datagram, (transport, host, port))] queued since the last call."""
        out, self._out = self._out, []
        return out

    def dad_pending(self, hoa):
        return hoa in self._dad

    def dad_conflict(self, hoa, now):
        """Another node on the home link uses (or is claiming) `hoa`: the held BU gets BA 134."""
        held = self._dad.pop(bytes(hoa), None)
        if held is None:
            self.ignored += 1
            return
        c = held[0]
        self._events.append(BURejected("bu_rejected", C.BA_DAD_FAILED, "dad", c.source))
        self._reject(c, C.BA_DAD_FAILED, now)

    def next_event(self):
        return self._events.pop(0) if self._events else None

    def events(self):
        evs, self._events = self._events, []
        return evs

    def get_timer(self):
        t = self._expiry[0][0] if self._expiry else None
        for _c, deadline in self._dad.values():
            if t is None or deadline < t:
                t = deadline
        return t

    def handle_timer(self, now):
        """Expire bindings; accept the BUs whose DAD wait passed in silence (their BAs queued)."""
        heap = self._expiry
        while heap and heap[0][0] <= now:
            expires, hoa = heapq.heappop(heap)
            b = self.bindings.get(hoa)
            if b is not None and b.expires > now:
                if b.expires > expires:                 # refreshed since: its row moves on
                    heapq.heappush(heap, (b.expires, hoa))
            elif b is not None:
                del self.bindings[hoa]
                self._events.append(BindingRemoved("binding_removed", b, "expired"))
                self._v4_gone(b, "expired")
        for hoa in [h for h, (_c, deadline) in self._dad.items() if deadline <= now]:
            c = self._dad.pop(hoa)[0]
            if self.sas.get(c.sa.spi) is c.sa:      # (its SA may have been revoked meanwhile)
                self._accept(c, now)

    def remove_all(self):
        """Clean stop: every binding ends (the driver removes routes and proxies from the events)."""
        for b in list(self.bindings.values()):
            self._events.append(BindingRemoved("binding_removed", b, "shutdown"))
            self._v4_gone(b, "shutdown")
        self.bindings.clear()
        self._expiry.clear()
        self._dad.clear()

    # ---- binding records (ha/record.py): the journal and the standby's copy -------------------
    def snapshot(self, now, wall):
        """A BindingRecord for every binding (what a journal compaction or a standby's sync needs)."""
        from .record import record_of
        return [record_of(b, self.sas.get(b.spi), now, wall) for b in self.bindings.values()]

    def record(self, binding, now, wall, removed=False):
        """The record of one binding as it is now (removed: its end)."""
        from .record import BOUND, REMOVED, record_of
        return record_of(binding, self.sas.get(binding.spi), now, wall, REMOVED if removed else BOUND)

    def apply(self, rec, now, wall):
        """Make a record (ha/record.py) true here -- journal restore, replication: a bound record
        adds, moves or refreshes the binding, a removed one ends it; the same events as for a BU
        (removal reason "replica"), so the driver installs or removes routes and proxies. A record
        naming an SPI this cache does not know, a NAI that is not that SPI's, a HoA outside the home
        prefix, or a binding already past its lifetime changes nothing and returns False."""
        from .record import REMOVED
        hoa = bytes(rec.hoa)
        b = self.bindings.get(hoa)
        if rec.kind == REMOVED:
            if b is None:
                return False
            del self.bindings[hoa]
            self._events.append(BindingRemoved("binding_removed", b, "replica"))
            return True
        # SPI 0: an IPsec device's binding (ha/ipsecmh.py), by its NAI: pseudo SPIs are not kept
        sa = self.sas.get(rec.spi) if rec.spi or self.esp_sas is None else self.esp_sas.get(bytes(rec.nai))
        remaining = rec.remaining_at(wall)
        rn = self.renum     # (renumbering: either prefix, a pinned HoA's twin; ha/prefixes.py)
        if (sa is None or sa.nai != rec.nai or remaining <= 0
                or not (hoa[:len(self.prefix)] == self.prefix if rn is None else rn.serves(hoa, now))
                or (sa.hoa is not None and sa.hoa != hoa and (rn is None or not rn.may_own(sa.hoa, hoa)))):
            self.ignored += 1
            return False
        if rec.last_ts > sa.last_ts:
            sa.last_ts = rec.last_ts
        if b is None or b.spi != sa.spi:
            if b is not None:
                del self.bindings[hoa]
                self._events.append(BindingRemoved("binding_removed", b, "replica"))
            b = Binding(hoa, sa.spi)
            self.bindings[hoa] = b
            ev = BindingAdded("binding_added", b)
        elif b.peer != rec.peer or b.transport != rec.transport:
            ev = BindingMoved("binding_moved", b, b.peer, b.transport)
        else:
            ev = BindingRefreshed("binding_refreshed", b)
        b.peer, b.transport, b.coa, b.nat = tuple(rec.peer), rec.transport, bytes(rec.coa), rec.nat
        b.seq, b.lifetime, b.home = rec.seq, rec.lifetime, rec.home
        b.expires = now + remaining
        heapq.heappush(self._expiry, (b.expires, hoa))
        self._events.append(ev)
        return True

    def replace_sas(self, sas, v4static=None):
        """New security associations (keys file reloaded). An SA that stays the same keeps its
        replay state; a binding whose SA is gone or no longer owns its HoA ends ("revoked").
        v4static: the reloaded static IPv4 HoAs {NAI: IPv4} (ipv4home.reassign)."""
        old = self.sas
        for spi, sa in sas.items():
            prev = old.get(spi)
            if prev is not None and (prev.nai, prev.key, prev.hoa) == (sa.nai, sa.key, sa.hoa):
                sas[spi] = prev
        self.sas = sas
        self._pinned = {sa.hoa: spi for spi, sa in sas.items() if sa.hoa is not None}
        for hoa, b in list(self.bindings.items()):
            sa = sas.get(b.spi)
            if sa is None or (sa.hoa is not None and sa.hoa != hoa):
                del self.bindings[hoa]
                self._events.append(BindingRemoved("binding_removed", b, "revoked"))
                self._v4_gone(b, "revoked")
        if v4static is not None and self.v4homes is not None:
            from .ipv4home import reassign
            reassign(self.v4homes, v4static, self._events)

    def add_sa(self, sa):
        """One more SA with a new SPI (from the AAA server, roam6_host/aaa/agent.py). A HoA
        another SA already owns stays that SA's."""
        self.sas[sa.spi] = sa
        if sa.hoa is not None:
            self._pinned.setdefault(sa.hoa, sa.spi)

    def remove_sa(self, spi, reason="revoked"):
        """An SA the AAA server no longer grants: gone, and its binding ends (`reason`)."""
        sa = self.sas.pop(spi, None)
        if sa is None:
            return
        if sa.hoa is not None and self._pinned.get(sa.hoa) == spi:
            del self._pinned[sa.hoa]
        hoas = [sa.hoa] if sa.hoa is not None else [h for h, b in self.bindings.items() if b.spi == spi]
        for hoa in hoas:
            b = self.bindings.get(hoa)
            if b is not None and b.spi == spi:
                del self.bindings[hoa]
                self._events.append(BindingRemoved("binding_removed", b, reason))
                self._v4_gone(b, reason)          # its IPv4 HoA too (route, proxy ARP, lease)

    def unbound_data(self, inner_src, source, now):
        """Data arrived over a tunnel from a HoA with no binding on that path (e.g. after an HA
        restart): queue a Binding Error (status 1) back through the same path, at most once a
        second per peer, so the MN re-registers at once (docs/CONTRACTS.md §11 "Lost binding")."""
        if (inner_src[: len(self.prefix)] != self.prefix and (self.renum is None or not self.renum.serves(
                bytes(inner_src), now))) or bytes(inner_src) in self._dad:
            return                      # (in DAD: its BU is accepted, the binding on its way)
        if source[0] == "ip6" or not self.limits.answer(source, now):
            return      # (the ip6 path answers through the driver's raw socket only for BUs)
        hoa = bytes(inner_src)
        mh = BindingError(C.BE_UNKNOWN_BINDING, hoa, []).encode(src=self.ha, dst=hoa)
        self._out.append((build_ipv6(self.ha, hoa, C.NH_MH, mh), source))

    def _mh_error(self, c, pkt, v, now):
        """RFC 6275 §9.2's answer to a Mobility Header discarded by mhcheck: an ICMPv6 Parameter
        Problem or a Binding Error (status 2), back over the path it came (for UDP: the inner
        packet), within the answers budget."""
        if (v.action == "drop" or c.esp is not None or not mhcheck.may_answer(pkt)
                or not self.limits.answer_allowed(c.source, now)):
            return v.reason             # (an MH that came in ESP: no answer in clear quoting it)
        if not mhcheck.checksum_ok(pkt):
            return "bad MH checksum"
        self.limits.answer(c.source, now)
        if v.action == "param_problem":
            out = mhcheck.param_problem(self.ha, c.pkt, v.arg)
        else:
            out = mhcheck.binding_error(self.ha, pkt)
        dest = c.source if c.source[0] != "ip6" else ("ip6", ip6_to_text(pkt.src), 0)
        self._out.append((out, dest))
        return v.reason

    def _addr(self, host, parse):
        """The address bytes of an outer source's text (few distinct ones: remembered)."""
        a = self._host_addr.get(host)
        if a is None:
            if len(self._host_addr) > 4096:
                self._host_addr.clear()
            a = self._host_addr[host] = parse(host)
        return a

    # ---- the rules (BU_RULES), in order --------------------------------------------------------
    def _rule_parse(self, c, now):
        if not (self.fast and self._parse_known_shape(c)):
            if not self._parse_codec(c, now):
                return False
        transport, host, _port = c.source
        if transport == "udp4":
            # docs/PROTOCOL-NOTES.md §11.1: the MAC covers the v4-mapped IPv4 CoA option; the outer
            # source (possibly NAT-mapped) is only where the replies go
            if c.v4coa is None:
                c.reason = "parse: udp4 BU without an IPv4 Care-of Address option"
                return False
            c.coa = V4MAPPED + c.v4coa
            c.nat = self._addr(host, ip4_from_text) != c.v4coa
        elif transport == "udp6":
            c.coa = self._addr(host, _ip6_from_scoped)
        elif c.coa is None:
            c.reason = "parse: ip6 BU without a care-of address"
            return False
        c.dereg = c.lifetime == 0 or c.coa == c.hoa
        c.b = self.bindings.get(c.hoa)      # the binding the next rules judge by (none changes meanwhile)
        return True

    def _parse_codec(self, c, now=0):
        """The general path: the firmware codec decodes the packet (any extension headers)."""
        pkt = decode_ipv6(c.pkt)
        if pkt.nh != C.NH_MH:
            c.reason = "parse: not a Mobility Header (next header %d)" % pkt.nh
            return False
        if pkt.dst != self.ha:
            c.reason = "parse: not addressed to the HA's address"
            return False
        v = mhcheck.check(pkt, checksum=False)
        if v.action != "ok":            # RFC 6275 §9.2: discarded, maybe answered (rate-limited)
            c.reason = "parse: " + self._mh_error(c, pkt, v, now)
            return False
        early = early_drop(self, c, pkt, now) if c.esp is None else ""   # unknown SPI, over budget: early
        if early:
            c.reason = early
            return False
        if not mhcheck.checksum_ok(pkt):
            c.reason = "parse: bad MH checksum"
            return False
        bu = decode_mh(pkt.payload)
        if not isinstance(bu, BindingUpdate):
            c.reason = "parse: MH type %s is not a BU" % type(bu).__name__
            return False
        dup = duplicated_option(bu.options)
        if dup:
            c.reason = "parse: %s" % dup
            return False
        c.mh = bu.raw
        c.opts = bu.options
        c.seq, c.flags, c.lifetime = bu.seq, bu.flags, bu.lifetime
        c.hoa = pkt.hao if pkt.hao is not None else pkt.src
        c.plain = not pkt.ext                 # a bare IPv6 header + MH: its shape may be learnt
        v4 = bu.find(mo.IPv4CareofAddress)
        c.v4coa = bytes(v4.address) if v4 is not None else None
        h4 = bu.find(mo.IPv4HomeAddress)
        if h4 is not None:
            c.v4hoa = (bytes(h4.address), h4.prefix_len, h4.p)
        if c.source[0] == "ip6":
            alt = bu.find(mo.AlternateCoA)
            c.coa = bytes(alt.address) if alt is not None else pkt.src
        rp = bu.find(mo.ReplayProtection)
        c.ts = rp.timestamp if rp is not None else None
        return True

    def _parse_known_shape(self, c):
        """The hot path: a BU laid out byte for byte like an earlier authenticated BU (same
        options, lengths, flags; only checksum, seq, lifetime, NAI, SPI, timestamp, IPv4 CoA and
        authenticator may differ) is read at the offsets learnt then. Anything else -> codec."""
        pkt = c.pkt
        n = len(pkt)
        if n < 64 or pkt[6] != C.NH_MH or (pkt[0] >> 4) != 6 or ((pkt[4] << 8) | pkt[5]) != n - 40:
            return False
        shapes = self._shapes.get(n)
        if shapes is None or pkt[24:40] != self.ha:
            return False
        mh = pkt[40:]
        value = _int(mh, "big")               # the MH as one number: shape match and checksum
        for shape in shapes:
            if value & shape.mask == shape.fixed:
                break
        else:
            return False
        hoa = pkt[8:24]
        if self._mh_checksum(hoa, mh, value) != 0:
            return False                      # the codec path repeats the check and says why
        c.mh = mh
        c.opts = None                         # rule mn_id: the shape proves the layout
        c.auth_spi = _I(mh, n - 56)[0]        # the SPI sits just before the 12-byte authenticator
        c.nai = mh[shape.nai_off:shape.nai_end]
        c.auth_data = mh[-12:]
        c.seq, c.flags, c.lifetime = _HHH(mh, 6)
        c.hoa = hoa
        c.plain = False                       # already learnt
        c.v4coa = mh[shape.v4_off:shape.v4_off + 4] if shape.v4_off else None
        if shape.v4hoa_off:                  # (Prefix-len and P are in the learnt bytes)
            o = shape.v4hoa_off
            c.v4hoa = (mh[o:o + 4], mh[o - 2] >> 2, (mh[o - 2] >> 1) & 1)
        c.ts = _Q(mh, shape.ts_off)[0] if shape.ts_off else None
        return True

    def _rule_mn_id(self, c, now):
        opts = c.opts
        if opts is None:
            return True
        mnid = auth = None
        for i, o in enumerate(opts):
            if isinstance(o, mo.MNIdentifier):
                if mnid is None and auth is None:
                    mnid = o
            elif isinstance(o, mo.MobilityAuth):
                if o.subtype != C.AUTH_MN_HA or i != len(opts) - 1 or len(o.auth_data) != 12:
                    c.reason = "mn_id: the MN-HA option (12-byte HMAC-SHA1-96) must be the last option"
                    return False
                auth = o
        if mnid is None or mnid.subtype != C.MNID_NAI or auth is None:
            c.reason = "mn_id: BU without an MN-ID (NAI) before an MN-HA option"
            return False
        c.nai, c.auth_spi, c.auth_data = bytes(mnid.identifier), auth.spi, auth.auth_data
        return True

    def _rule_spi(self, c, now):
        c.sa = self.sas.get(c.auth_spi)
        if c.sa is None:
            c.reason = "spi: unknown SPI %d" % c.auth_spi
            return False
        return True

    def _rule_nai(self, c, now):
        if c.nai != c.sa.nai:
            c.reason = "nai: MN-ID does not name the owner of SPI %d" % c.sa.spi
            return False
        return True

    def _rule_budget(self, c, now):
        b = c.b
        if self.limits.block.bu_blocked(c.source, b, now):
            c.reason = "blocked: %s keeps sending BUs that fail (ha/sourceblock.py)" % c.source[1]
            return False
        if (b is not None and b.spi == c.sa.spi) or self.limits.verify_allowed(c.source, now):
            return True
        c.reason = "budget: too many rejected BUs from %s (or from everybody) lately" % c.source[1]
        return False

    def _rule_auth(self, c, now):
        mh = c.mh
        want = c.sa.mnha_auth(c.coa, c.hoa, mh[:4] + b"\0\0" + mh[6:len(mh) - 12])
        if not hmac.compare_digest(want, c.auth_data):
            return False
        if c.plain and self.fast:
            self._learn_shape(c)
        return True

    def _rule_ts_required(self, c, now):
        return c.ts is not None or not self.require_timestamps

    def _rule_ts_window(self, c, now):
        ts = c.ts
        if ts is None:
            return True
        skew = ((ts >> 32) - NTP_EPOCH) * 1000 - c.wall
        return -self.replay_window_ms <= skew <= self.replay_window_ms and ts > c.sa.last_ts

    def _rule_sequence(self, c, now):
        b = c.b
        return b is None or 0 < ((c.seq - b.seq) & 0xFFFF) < 0x8000

    def _rule_reg_type(self, c, now):
        b = c.b
        return b is None or b.home == bool(c.flags & C.BU_H)

    def _rule_home_subnet(self, c, now):
        if self.renum is not None:              # two prefixes (ha/prefixes.py)
            return self.renum.serves(c.hoa, now)
        return c.hoa[: len(self.prefix)] == self.prefix

    def _rule_home_reg(self, c, now):
        # RFC 4877 §4.3 in spirit: one MN's SA never signs for another MN's HoA - neither one
        # pinned to another SA in the keys file, nor one bound under another SA right now
        if self.renum is not None:
            return self.renum.home_reg(self, c)     # the same, with a pinned HoA's twin (ha/prefixes.py)
        spi = c.sa.spi
        if not c.flags & C.BU_H or (c.sa.hoa is not None and c.sa.hoa != c.hoa):
            return False
        owner = self._pinned.get(c.hoa)
        b = c.b
        return (owner is None or owner == spi) and (b is None or b.spi == spi)

    def _rule_dereg_bound(self, c, now):
        return not c.dereg or c.b is not None

    def _rule_capacity(self, c, now):
        return (c.dereg or self.limits.capacity_left(self.bindings, self._dad, c.hoa, c.sa.spi)
                or (self.renum is not None and self.renum.replaces(self, c)))    # (a renumbered device)

    # ---- outcomes ---------------------------------------------------------------------------
    def _accept(self, c, now):
        hoa = c.hoa
        if c.ts is not None:
            c.sa.last_ts = c.ts
        b = self.bindings.get(hoa)
        transport, host, port = c.source
        if c.dereg:
            del self.bindings[hoa]          # rule dereg_bound made sure it is there
            if self.keep_events:
                self._events.append(BindingRemoved("binding_removed", b, "dereg"))
            self._v4_gone(b, "dereg")
            units = bra = 0
        else:
            units = c.lifetime if c.lifetime < self.max_units else self.max_units
            if c.sa.max_units is not None and units > c.sa.max_units:
                units = c.sa.max_units      # the AAA server's limit for this MN
            if self.renum is not None:
                units = self.renum.cap_units(hoa, units, now)    # the old prefix's validity (§10.3.1)
            peer = (ip6_to_text(c.coa), 0) if transport == "ip6" else (host, port)
            keep = self.keep_events         # (no event object when nobody reads them: the benchmark)
            ev = None
            if b is None:
                b = Binding(hoa, c.sa.spi)
                self.bindings[hoa] = b
                if keep:
                    ev = BindingAdded("binding_added", b)
            elif b.peer != peer or b.transport != transport:
                if keep:
                    ev = BindingMoved("binding_moved", b, b.peer, b.transport)
            elif keep:
                ev = BindingRefreshed("binding_refreshed", b)
            # the data plane reads these fields per packet: from here on downstream goes to `peer`
            b.peer, b.transport, b.coa, b.nat = peer, transport, c.coa, c.nat
            b.seq, b.lifetime, b.home = c.seq, units * 4, True
            b.tlv = _ba_t(self, c, 0) != 0     # RFC 5555 TLV header on this path (flag T)
            was = b.expires
            b.expires = now + units * 4000
            if not was or b.expires < was:
                # a row only for a new binding or an earlier expiry: a later one (every refresh and
                # move) keeps its row, which handle_timer reschedules when it comes up
                heapq.heappush(self._expiry, (b.expires, hoa))
            if len(self._expiry) > 4 * len(self.bindings) + 1024:
                # refreshes leave stale rows behind: rebuild rather than let the heap grow
                self._expiry = [(x.expires, h) for h, x in self.bindings.items()]
                heapq.heapify(self._expiry)
            if ev is not None:
                self._events.append(ev)
            if self.renum is not None and ev is not None and ev.kind == "binding_added":
                self.renum.added(self, b)   # its binding in the old prefix ends (ha/prefixes.py)
            if c.v4hoa is not None or b.v4 is not None:
                self._v4_answer(c, b, units * 4)
            bra = units * 3 // 4     # RFC 6275 §10.3.1: refresh advice smaller than the lifetime
        if self.vendor is not None and c.opts is not None:
            self.vendor.accepted(c, None if c.dereg else b)
        if c.flags & C.BU_A:
            self._ba(c, C.BA_ACCEPTED, c.seq, units, bra, c.ts)

    def _v4_answer(self, c, b, lifetime_s):
        """RFC 5555 §3.2.1: the IPv4 Address Acknowledgement for the BA (ipv4home.py decides)."""
        if c.v4hoa is None:                 # the MN stopped asking: its IPv4 HoA goes
            self._v4_gone(b, "not asked")
            return
        want, plen, p = c.v4hoa
        if self.v4homes is None:
            c.v4ack = (C.V4ACK_PROHIBITED, bytes(want))
            return
        c.v4ack = self.v4homes.answer(b, bytes(c.sa.nai), want, plen, p, lifetime_s, c.wall, self._events)

    def _v4_gone(self, b, reason):
        if b.v4 is not None and self.v4homes is not None:
            self.v4homes.release(b, reason, self._events)

    def _reject(self, c, status, now):
        seq = c.seq
        ts = c.ts
        if status == C.BA_SEQ_OUT_OF_WINDOW:
            seq = self.bindings[c.hoa].seq           # RFC 6275 §9.5.1: the last accepted number
        elif status == C.BA_ID_MISMATCH:
            # RFC 4285 §6: our seconds, the BU's low 32 bits, so the MN can resynchronise
            ts = ((c.wall // 1000 + NTP_EPOCH) << 32) | (ts & 0xFFFFFFFF)
        self._ba(c, status, seq, 0, 0, ts)

    def _ba(self, c, status, seq, units, bra, ts):
        transport = c.source[0]
        refresh = None
        if transport != "ip6":
            refresh = self.nat_refresh if (c.nat or transport == "udp6") else NO_KEEPALIVE
        if c.esp is not None:       # sealed with the CHILD_SA, no RFC 4285 options (ha/ipsecmh.py)
            out = c.esp.ba(self, c, status, seq, units, bra, refresh)
            if out is not None:
                self._out.append(out)
            return
        if transport != "ip6" and self.fast and c.v4ack is None:
            ba = self._ba_from_template(c, status, seq, units, bra, ts, refresh)
            self._out.append((ba, c.source))
        else:
            self._out.append(self._ba_codec(c, status, seq, units, bra, ts, refresh))

    def _ba_options(self, sa, ts, refresh, bra):
        opts = [mo.MNIdentifier(C.MNID_NAI, sa.nai)]
        if ts is not None:
            opts.append(mo.ReplayProtection(ts))
        if refresh is not None:
            # RFC 5555 §4.1: always over UDP; F=1 because roam6 has no plain IPv6-in-IPv4 mode
            opts.append(mo.NATDetection(True, refresh))
        if bra:
            opts.append(mo.BindingRefreshAdvice(bra))
        opts.append(mo.MobilityAuth(C.AUTH_MN_HA, sa.spi, None))
        return opts

    def _ba_codec(self, c, status, seq, units, bra, ts, refresh):
        sa, coa, hoa = c.sa, c.coa, c.hoa
        opts = self._ba_options(sa, ts, refresh, bra)
        if c.v4ack is not None and status < 128:
            opts.insert(-1, mo.IPv4AddressAck(c.v4ack[0], 32, c.v4ack[1]))
        mh = BindingAck(status, _ba_t(self, c, status), seq, units, opts).encode(
            src=self.ha, dst=hoa, mac=lambda prefix: sa.mnha_auth(coa, hoa, prefix))
        if c.source[0] == "ip6":
            if coa == hoa:      # back home (RFC 6275 §11.5.4): straight to the HoA, no RH2
                return (build_ipv6(self.ha, hoa, C.NH_MH, mh), ("ip6", ip6_to_text(hoa), 0))
            return (build_ipv6(self.ha, coa, C.NH_MH, mh, rh2=hoa), ("ip6", ip6_to_text(coa), 0))
        return (build_ipv6(self.ha, hoa, C.NH_MH, mh), c.source)

    def _ba_from_template(self, c, status, seq, units, bra, ts, refresh):
        """The BA over UDP from a template the codec laid out once per NAI length and option set
        (same bytes as _ba_codec; tests/ha/test_fastpath.py holds them equal): patch, sign, sum."""
        sa, hoa = c.sa, c.hoa
        nai = sa.nai
        key = (len(nai), ts is not None, bool(bra))
        t = self._ba_tpl.get(key)
        if t is None:
            t = self._ba_tpl[key] = _BATemplate(self, nai, ts is not None, bool(bra))
        buf = bytearray(t.packet)
        buf[24:40] = hoa
        _pack_BBHH(buf, 46, status, _ba_t(self, c, status), seq, units)     # status, K=0, T, sequence, lifetime
        buf[t.nai_off:t.nai_off + len(nai)] = nai
        if t.ts_off:
            _pack_Q(buf, t.ts_off, ts)
        _pack_I(buf, t.refresh_off, refresh)
        if t.bra_off:
            _pack_H(buf, t.bra_off, bra)
        n = len(buf)
        _pack_I(buf, n - 16, sa.spi)
        buf[n - 12:] = sa.mnha_auth(c.coa, hoa, buf[40:n - 12])     # (a copy: cheaper than a memoryview here)
        _pack_H(buf, 44, self._mh_checksum(hoa, buf[40:]))
        return bytes(buf)

    def _mh_checksum(self, hoa, mh, value=None):
        """checksum6 of an MH between the HA and hoa (either way: the sum is symmetric), with the
        addresses' part of the pseudo-header summed once per HoA. Computed as a remainder: 2^16 is 1
        modulo 0xFFFF, so a big-endian number is congruent to the sum of its 16-bit words, which is
        what the ones' complement sum folds to (RFC 1071 §2); one C call instead of a word per
        int. `value`: int.from_bytes(mh, "big") if the caller already has it. Same result as
        checksum6 (the sum is never 0: next header 135 is in it)."""
        acc = self._psum.get(hoa)
        if acc is None:
            if len(self._psum) > 100000:
                self._psum.clear()
            acc = self._psum[hoa] = (_int(self.ha + hoa, "big") + C.NH_MH) % 0xFFFF
        n = len(mh)
        if value is None:
            value = _int(mh, "big")
        if n & 1:
            value <<= 8                     # an odd tail is padded with a zero byte
        r = (value + acc + n) % 0xFFFF
        return 0xFFFF - r if r else 0

    def _learn_shape(self, c):
        shape = _Shape(c)
        known = self._shapes.setdefault(shape.length, [])
        if shape.nai_off and all(k.masked != shape.masked for k in known) and len(known) < 8:
            known.append(shape)


def _ba_t(cache, c, status):
    """The BA's flags byte: T (RFC 5555 TLV header, roam6_codec/udptlv.py) when an accepted udp4 BU
    asked for it and this HA has IPv4 home addresses (its listener filter keeps TLV frames then)."""
    return C.BA_T if (status < 128 and c.flags & C.BU_T and c.source[0] == "udp4"
                      and cache.v4homes is not None) else 0


def _ip6_from_scoped(host):
    return ip6_from_text(host.split("%")[0])      # a link-local source may carry its %zone


_int = int.from_bytes
_HHH = struct.Struct(">HHH").unpack_from
_Q = struct.Struct(">Q").unpack_from
_I = struct.Struct(">I").unpack_from
_pack_H = struct.Struct(">H").pack_into
_pack_BBHH = struct.Struct(">BBHH").pack_into
_pack_I = struct.Struct(">I").pack_into
_pack_Q = struct.Struct(">Q").pack_into


def _walk_options(mh, off=12):
    """(type, offset) of each option of an MH the codec has already decoded (so it is well formed)."""
    out = []
    n = len(mh)
    while off < n:
        t = mh[off]
        out.append((t, off))
        off += 1 if t == 0 else 2 + mh[off + 1]
    return out


class _Shape:
    """An authenticated BU's layout: the MH with its variable fields zeroed, and where they are."""

    __slots__ = ("length", "masked", "var", "nai_off", "nai_end", "ts_off", "v4_off", "v4hoa_off", "mask", "fixed")

    def __init__(self, c):
        mh = c.mh
        n = len(mh)
        self.nai_off = self.nai_end = self.ts_off = self.v4_off = self.v4hoa_off = 0
        # checksum, seq, lifetime, SPI + authenticator
        var = [(4, 6), (6, 8), (10, 12), (n - 16, n)]
        for t, off in _walk_options(mh):
            if t == C.MO_REPLAY:
                self.ts_off = off + 2
                var.append((off + 2, off + 10))
            elif t == C.MO_IPV4_COA:
                self.v4_off = off + 4
                var.append((off + 4, off + 8))
            elif t == C.MO_IPV4_HOA:
                self.v4hoa_off = off + 4
                var.append((off + 4, off + 8))
            elif t == C.MO_MN_ID and not self.nai_off:
                self.nai_off, self.nai_end = off + 3, off + 2 + mh[off + 1]
                var.append((self.nai_off, self.nai_end))
        self.var = [(s, e, bytes(e - s)) for s, e in var]
        m = bytearray(mh)
        for s, e, z in self.var:
            m[s:e] = z
        self.masked = bytes(m)
        self.length = 40 + n
        # the same as numbers: value & mask == fixed  <=>  the MH with its variable fields zeroed == masked
        mask = bytearray(b"\xff" * n)
        for s, e, z in self.var:
            mask[s:e] = z
        self.mask = _int(mask, "big")
        self.fixed = _int(self.masked, "big")


class _BATemplate:
    """A BA over UDP laid out once by the codec for one NAI length and option set."""

    __slots__ = ("packet", "nai_off", "ts_off", "refresh_off", "bra_off")

    def __init__(self, cache, nai, has_ts, has_bra):
        from .sa import SA
        dummy = SA(bytes(len(nai)), 0, bytes(16))
        opts = cache._ba_options(dummy, 0 if has_ts else None, 0, 1 if has_bra else 0)
        mh = BindingAck(0, 0, 0, 0, opts).encode(mac=lambda prefix: bytes(12))
        self.packet = build_ipv6(cache.ha, bytes(16), C.NH_MH, mh)
        self.nai_off = self.ts_off = self.refresh_off = self.bra_off = 0
        for t, off in _walk_options(mh):
            if t == C.MO_MN_ID:
                self.nai_off = 40 + off + 3
            elif t == C.MO_REPLAY:
                self.ts_off = 40 + off + 2
            elif t == C.MO_NAT_DETECTION:
                self.refresh_off = 40 + off + 4
            elif t == C.MO_BRA:
                self.bra_off = 40 + off + 2
