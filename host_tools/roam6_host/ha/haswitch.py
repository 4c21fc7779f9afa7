"""Home Agent Switch (RFC 5142), the HA's side: move devices off this HA on purpose.

`SwitchJob` (sans-IO) sends each target MN a Home Agent Switch message (MH type 12) naming the
HA address(es) to use, with a Binding Refresh Advice, and sends it again (INITIAL 5 s, doubling
to MAX 20 s; never more than one a second to one MN: MAX-HA-SWITCH-TRANSMIT-RATE) until the MN's
binding here is gone (it registered elsewhere and deregistered here) or the deadline passes.
All targets together are paced at `per_second` messages a second.

Authentication (docs/PROTOCOL-NOTES.md §14.4): RFC 5142 assumes IPsec; under RFC 4285 the message
carries what a BA carries - an MN-ID option (the NAI) and the MN-HA authentication option last,
its authenticator HMAC-SHA1-96 over care-of address | home address | MH data (checksum zero),
with the MN's SA - so the MN checks it exactly as it checks a BA. It reaches the MN on the
binding's path (udp4/udp6: the inner packet to the binding's peer; ip6: with a type 2 routing
header to the care-of address).

`Switcher` runs the jobs `roam6 ha switch` asks for over the HA's one control socket
(ha/control.py: root or the HA's own user only): one JSON command per connection, progress back
as JSON lines on that connection.
"""
import json
import socket

from roam6.wire.addr import ip6_to_text
from roam6.wire.ipv6 import build_ipv6
from roam6_codec import consts as C
from roam6_codec import mhopts as mo
from roam6_codec.mh import HomeAgentSwitch

from .control import socket_name

INITIAL_MS = 5000          # INITIAL-HA-SWITCH-TIMEOUT
MAX_MS = 20000             # MAX-HA-SWITCH-TIMEOUT
MIN_GAP_MS = 1000          # MAX-HA-SWITCH-TRANSMIT-RATE: 1 per second per MN


def switch_message(cache, binding, ha_addrs, bra_units):
    """(datagram, destination) of one signed Home Agent Switch to `binding`'s MN."""
    sa = cache.sas[binding.spi]
    hoa, coa = binding.hoa, binding.coa
    opts = [mo.MNIdentifier(C.MNID_NAI, sa.nai)]
    if bra_units:
        opts.append(mo.BindingRefreshAdvice(bra_units))
    opts.append(mo.MobilityAuth(C.AUTH_MN_HA, sa.spi, None))
    mh = HomeAgentSwitch(list(ha_addrs), opts).encode(src=cache.ha, dst=hoa,
                                                      mac=lambda prefix: sa.mnha_auth(coa, hoa, prefix))
    if binding.transport == "ip6":
        return build_ipv6(cache.ha, coa, C.NH_MH, mh, rh2=hoa), ("ip6", ip6_to_text(coa), 0)
    host, port = binding.peer
    return build_ipv6(cache.ha, hoa, C.NH_MH, mh), (binding.transport, host, port)


class SwitchJob:
    """Events: ("switch_sent", hoa, tries), ("switch_done", hoa, ms), ("switch_failed", hoa, tries)."""

    def __init__(self, cache, hoas, ha_addrs, now, deadline_ms, bra_units=0, per_second=100,
                 initial_ms=INITIAL_MS):
        self.cache = cache
        self.ha_addrs = [bytes(a) for a in ha_addrs]
        self.bra = bra_units
        self.start = now
        self.deadline = now + deadline_ms
        self.gap = max(1, 1000 // per_second)
        self.initial = max(MIN_GAP_MS, initial_ms)
        self.pending = {bytes(h): [0, now] for h in hoas}     # hoa -> [tries, next send at]
        self.done, self.failed = [], []
        self._next_any = now
        self._poll = now
        self._out = []
        self._events = []

    def finished(self):
        return not self.pending

    def get_timer(self):
        if not self.pending:
            return None
        t = min(n for _tries, n in self.pending.values())
        # wake at least every 200 ms: a target that deregistered is reported done at once
        return min(max(t, self._next_any), self.deadline, self._poll)

    def handle_timer(self, now):
        self._poll = now + 200
        for hoa in list(self.pending):
            if hoa not in self.cache.bindings:          # moved away (deregistered here)
                del self.pending[hoa]
                self.done.append(hoa)
                self._events.append(("switch_done", hoa, now - self.start))
        if now >= self.deadline:
            for hoa, (tries, _n) in self.pending.items():
                self.failed.append(hoa)
                self._events.append(("switch_failed", hoa, tries))
            self.pending.clear()
            return
        for hoa, st in sorted(self.pending.items(), key=lambda kv: kv[1][1]):
            if st[1] > now or self._next_any > now:
                continue
            b = self.cache.bindings[hoa]
            self._out.append(switch_message(self.cache, b, self.ha_addrs, self.bra))
            st[0] += 1
            st[1] = now + min(self.initial << (st[0] - 1), MAX_MS)
            self._next_any = now + self.gap
            self._events.append(("switch_sent", hoa, st[0]))

    def datagrams_to_send(self, now):
        out, self._out = self._out, []
        return out

    def next_event(self):
        return self._events.pop(0) if self._events else None


class Switcher:
    """The running HA's Home Agent Switch jobs, one at a time; `HomeAgent` polls its timer."""

    def __init__(self, ha):
        self.ha = ha
        self.job = None
        self.client = None

    def command(self, conn, cmd, now):
        """A JSON command from the control socket (ha/control.py); conn stays open for progress."""
        try:
            if self.job is not None:
                return self._reply(conn, {"ev": "error", "reason": "a switch is already running"})
            self._start(conn, cmd, now)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._reply(conn, {"ev": "error", "reason": "bad command: %s" % exc})

    def _reply(self, conn, d, close=True):
        try:
            conn.sendall((json.dumps(d) + "\n").encode())
        except OSError:
            pass
        if close:
            conn.close()

    def _start(self, conn, cmd, now):
        cache = self.ha.cache
        to = [socket.inet_pton(socket.AF_INET6, a) for a in cmd["to"]]
        if cmd.get("all"):
            hoas = list(cache.bindings)
        else:
            nai = cmd["nai"].encode()
            hoas = [h for h, b in cache.bindings.items() if cache.sas.get(b.spi) is not None
                    and cache.sas[b.spi].nai == nai]
        if not hoas:
            return self._reply(conn, {"ev": "error", "reason": "no binding matches (nai %r)" % cmd.get("nai")})
        self.job = SwitchJob(cache, hoas, to, now, int(cmd.get("deadline_ms", 60000)), int(cmd.get("bra", 0)),
                             int(cmd.get("per_second", 100)), int(cmd.get("initial_ms", INITIAL_MS)))
        self.client = conn
        self._reply(conn, {"ev": "switch_started", "devices": len(hoas)}, close=False)
        self.ha.log("switch_started", devices=len(hoas), to=cmd["to"])

    def get_timer(self):
        return self.job.get_timer() if self.job is not None else None

    def handle_timer(self, now):
        job = self.job
        if job is None:
            return
        job.handle_timer(now)
        self.ha._send(job.datagrams_to_send(now))
        while True:
            ev = job.next_event()
            if ev is None:
                break
            kind, hoa, n = ev
            d = {"ev": kind, "hoa": ip6_to_text(hoa), ("ms" if kind == "switch_done" else "tries"): n}
            self.ha.log(kind, **{k: v for k, v in d.items() if k != "ev"})
            if self.client is not None:
                self._reply(self.client, d, close=False)
        if job.finished():
            summary = {"ev": "switch_finished", "moved": len(job.done),
                       "not_moved": [ip6_to_text(h) for h in job.failed]}
            self.ha.log("switch_finished", moved=len(job.done), not_moved=summary["not_moved"])
            if self.client is not None:
                self._reply(self.client, summary)
            self.job = self.client = None

    def close(self):
        if self.client is not None:
            self.client.close()


def run_switch(cfg, to, nai=None, everyone=False, deadline_s=60, bra=0, per_second=100, out=None):
    """`roam6 ha switch`: ask the HA running in this namespace (its control socket) to move
    devices; print its progress as JSON lines; 0 when every device moved, 1 otherwise."""
    import sys
    from ..errors import UserError
    out = out or sys.stdout
    for a in to:
        try:
            socket.inet_pton(socket.AF_INET6, a)
        except OSError:
            raise UserError("--to %r is not an IPv6 address" % a,
                            hint="the HA address(es) the devices should use") from None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(socket_name(cfg.tun))
    except OSError:
        s.close()
        raise UserError("no HA with TUN %r runs in this network namespace" % cfg.tun,
                        hint="run `roam6 ha switch` where `roam6 ha` runs (ip netns exec NS ...), with its ha.json")
    s.settimeout(deadline_s + 30)
    cmd = {"to": to, "all": everyone, "nai": nai, "deadline_ms": int(deadline_s * 1000), "bra": bra,
           "per_second": per_second}
    s.sendall(json.dumps(cmd).encode())
    rc = 1
    with s, s.makefile("r") as f:
        for line in f:
            out.write(line)
            out.flush()
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if d.get("ev") == "switch_finished":
                rc = 0 if not d["not_moved"] else 1
            elif d.get("ev") == "error":
                raise UserError("the HA refused the switch: %s" % d.get("reason"))
    return rc
