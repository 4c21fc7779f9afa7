"""Home Agent Switch (RFC 5142) from the HA: `roam6 ha switch` moves devices to other HAs.

The message (MH type 12) is signed under RFC 4285 as docs/PROTOCOL-NOTES.md §11.14 says: options
Binding Refresh Advice, Replay Protection (the HA's NTP clock), MN-HA authentication last, whose
MAC is HMAC-SHA1(key, HoA | HoA | MH data through the SPI) -- the HoA in the care-of address's
place. It goes to the device as a BA would (udp4/udp6: the inner packet HA -> HoA in UDP to the
binding's outer address and port; ip6: to the CoA with a type 2 routing header naming the HoA).

`Switcher` is sans-IO (int ms `now` last): `start(hoas, targets, now, deadline_ms)`;
`datagrams_to_send(now)` paces the messages: each device at most once per
MAX-HA-SWITCH-TRANSMIT-RATE (1/s) and retransmitted after INITIAL-HA-SWITCH-TIMEOUT (5 s),
doubling up to MAX-HA-SWITCH-TIMEOUT (20 s), all devices together at most `rate` a second; a
device is done when its binding here is gone (deregistered or expired); `get_timer()`;
`progress(now)` for the control socket.
"""
import json
import time

from roam6_codec import consts as C
from roam6_codec import mhopts as mo
from roam6_codec.mh import HomeAgentSwitch
from roam6.wire.addr import ip6_from_text, ip6_to_text
from roam6.wire.ipv6 import build_ipv6

INITIAL_TIMEOUT_MS = 5000        # RFC 5142 INITIAL-HA-SWITCH-TIMEOUT
MAX_TIMEOUT_MS = 20000           # RFC 5142 MAX-HA-SWITCH-TIMEOUT
MIN_GAP_MS = 1000                # RFC 5142 MAX-HA-SWITCH-TRANSMIT-RATE: 1 a second per device
_NTP_UNIX_DELTA = 2208988800


def ntp_timestamp(wall_ms):
    s, ms = divmod(wall_ms, 1000)
    return ((s + _NTP_UNIX_DELTA) & 0xFFFFFFFF) << 32 | ((ms << 32) // 1000)


def build_switch(sa, ha, hoa, targets, bra_units, wall_ms):
    """The signed Home Agent Switch MH (bytes, checksum set) from ha (16 bytes) to hoa. For an IPsec
    device (ha/ipsecmh.CacheSA) no RFC 4285 options: the driver seals it with its CHILD_SA."""
    if getattr(sa, "esp", False):
        return HomeAgentSwitch([bytes(t) for t in targets], [mo.BindingRefreshAdvice(bra_units)]).encode(src=ha,
                                                                                                         dst=hoa)
    opts = [mo.BindingRefreshAdvice(bra_units), mo.ReplayProtection(ntp_timestamp(wall_ms)),
            mo.MobilityAuth(C.AUTH_MN_HA, sa.spi, None)]
    return HomeAgentSwitch([bytes(t) for t in targets], opts).encode(
        src=ha, dst=hoa, mac=lambda prefix: sa.mnha_auth(hoa, hoa, prefix))


class _Job:
    __slots__ = ("hoa", "sent", "next_at", "timeout", "done", "last_peer")

    def __init__(self, hoa, now):
        self.hoa = hoa
        self.sent = 0
        self.next_at = now
        self.timeout = INITIAL_TIMEOUT_MS
        self.done = None          # None | "moved" | "gone"
        self.last_peer = None


class Switcher:
    def __init__(self, cache, rate=50):
        self.cache = cache
        self.rate = rate          # messages a second, all devices together
        self.jobs = {}
        self.targets = ()
        self.deadline = None
        self.started = None
        self._tokens = float(rate)
        self._t = None
        self._next = None

    def start(self, hoas, targets, now, deadline_ms):
        self.targets = [bytes(t) for t in targets]
        self.jobs = {h: _Job(h, now) for h in hoas}
        self.deadline = now + deadline_ms
        self.started = now
        self._t = now
        self._next = now

    def active(self):
        return self.deadline is not None and any(j.done is None for j in self.jobs.values())

    def _check_done(self, now):
        b = self.cache.bindings
        for j in self.jobs.values():
            if j.done is None and j.hoa not in b:
                j.done = "moved" if j.sent else "gone"
                j.next_at = now

    def datagrams_to_send(self, now, wall_ms):
        t = self._next
        if t is None or now < t:      # (called on every turn of the HA's loop: cheap when idle)
            return []
        self._check_done(now)
        if now >= self.deadline:
            self._next = None
            return []
        self._tokens = min(float(self.rate), self._tokens + (now - self._t) * self.rate / 1000)
        self._t = now
        out = []
        for j in self.jobs.values():
            if j.done is not None or j.next_at > now or self._tokens < 1:
                continue
            b = self.cache.bindings.get(j.hoa)
            sa = self.cache.sas.get(b.spi)
            if sa is None:
                continue
            left_s = max(0, (b.expires - now) // 1000)
            mh = build_switch(sa, self.cache.ha, j.hoa, self.targets, min(0xFFFF, left_s // 4), wall_ms)
            if b.transport == "ip6":       # as a BA: to the CoA with a type 2 routing header
                out.append((build_ipv6(self.cache.ha, b.coa, C.NH_MH, mh, rh2=j.hoa),
                            ("ip6", ip6_to_text(b.coa), 0)))
            else:
                out.append((build_ipv6(self.cache.ha, j.hoa, C.NH_MH, mh), (b.transport,) + tuple(b.peer)))
            self._tokens -= 1
            j.sent += 1
            j.next_at = now + max(MIN_GAP_MS, j.timeout)
            j.timeout = min(MAX_TIMEOUT_MS, j.timeout * 2)
        self._next = self._timer()
        return out

    def _timer(self):
        if not self.active():
            return None
        t = min(j.next_at for j in self.jobs.values() if j.done is None)
        return min(max(t, self._t + 20) if self._tokens < 1 else t, self.deadline)

    def get_timer(self):
        return self._next

    def progress(self, now):
        if self.started is None:
            return None
        self._check_done(now)
        if not self.active():
            self._next = None
        jobs = list(self.jobs.values())
        return {"devices": len(jobs), "moved": sum(j.done == "moved" for j in jobs),
                "gone": sum(j.done == "gone" for j in jobs), "messages": sum(j.sent for j in jobs),
                "elapsed_ms": now - self.started, "over": now >= self.deadline or not self.active(),
                "targets": [ip6_to_text(t) for t in self.targets],
                "not_moved": sorted(ip6_to_text(j.hoa) for j in jobs if j.done is None)}




def control_request(ha, body):
    """The control socket's "switch" request (control.py): JSON {"progress": true} -> the
    progress; {"nai": NAI} or {"all": true}, "to": [IPv6 address...], "deadline_s": N -> start."""
    now = time.monotonic_ns() // 1_000_000
    try:
        req = json.loads(body.strip() or b"{}")
    except ValueError:
        return {"error": "switch: the request is not JSON"}
    if req.get("progress"):
        return {"switch": ha.switcher.progress(now) if ha.switcher is not None else None}
    try:
        targets = [ip6_from_text(a) for a in req.get("to", [])]
    except (ValueError, IndexError, TypeError, AttributeError):
        return {"error": "switch: \"to\" must be IPv6 addresses, got %r" % (req.get("to"),)}
    cache = ha.cache
    nai = req.get("nai")
    hoas = []
    for b in cache.bindings.values():
        sa = cache.sas.get(b.spi)
        if sa is not None and (req.get("all") or sa.nai.decode("utf-8", "replace") == nai):
            hoas.append(b.hoa)
    if not hoas:
        return {"error": "switch: no device bound here%s" % (" with NAI %s" % nai if nai else "")}
    if ha.switcher is not None and ha.switcher.active():
        return {"error": "switch: one is running (roam6 ha switch --progress)"}
    ha.switcher = Switcher(cache)
    ha.switcher.start(hoas, targets, now, int(req.get("deadline_s", 120)) * 1000)
    ha.log("ha_switch", devices=len(hoas), to=[ip6_to_text(t) for t in targets])
    return {"switch": ha.switcher.progress(now)}
