"""Movement detection: from link events to "send a BU now" (sans-IO, no timers).

Fed the link adapter's events (docs/CONTRACTS.md §10.1) and `now`, it keeps the usable addresses
and picks the care-of address: the first transport of the allowed list (in preference order)
with a usable address of its family; among several addresses the one most recently added or
confirmed (after a roam the old network's address can linger until it expires). A decision is
returned at once when the choice changes, when the link comes back, or when the default router
of the CoA's family is replaced by another — the MN does not wait for a timer or an RA to
announce itself.

`feed(ev, now)` (now: int ms, last) returns None or a decision, kind first:
    ("moved", coa, transport)    a new care-of address (raw bytes) on "udp4" | "udp6" | "ip6"
    ("home", addr, None)         an address of the home prefix: back on the home link
    ("detached", None, None)     link down or no usable address
An event of a kind it does not know is ignored and counted in `ignored`.
"""
from roam6.compat import const

_TENTATIVE = const(0x40)
_DEPRECATED = const(0x20)
_DADFAILED = const(0x08)
_OPTIMISTIC = const(0x04)


def usable(family, addr, flags):
    """Can this address be a care-of address? (global scope, DAD done or optimistic)"""
    if flags & _DADFAILED or (flags & _TENTATIVE and not flags & _OPTIMISTIC):
        return False
    if family == 4:
        return (len(addr) == 4 and addr[0] not in (0, 127) and addr[:2] != b"\xa9\xfe"
                and addr[0] < 224)
    if len(addr) != 16 or addr[0] == 0xFF or addr == bytes(15) + b"\x01" or addr == bytes(16):
        return False
    return not (addr[0] == 0xFE and addr[1] & 0xC0 == 0x80)  # fe80::/10


def in_prefix(addr, prefix, plen):
    n, r = plen // 8, plen % 8
    if addr[:n] != prefix[:n]:
        return False
    return not r or (addr[n] ^ prefix[n]) & (0xFF << (8 - r)) & 0xFF == 0


class Movement:
    def __init__(self, transports=("udp6", "udp4", "ip6"), home_prefix=None):
        self.transports = list(transports)
        self.home_prefix = home_prefix  # (16 bytes, plen) or None
        self.up = False
        self.coa = None
        self.transport = None
        self.kind = "detached"
        self.since = None  # `now` of the last decision
        self._addrs = {}  # addr -> [family, flags, order]; order grows as addresses become usable
        self._n = 0
        self._routers = {4: None, 6: None}  # current default router per family
        self.ignored = 0  # adapter events of a kind this machine does not know

    def feed(self, ev, now):
        """One adapter event -> None or a decision ("moved", coa, transport) /
        ("home", addr, None) / ("detached", None, None)."""
        kind = ev[0]
        force = False
        if kind == "link":
            force = ev[1] and not self.up
            self.up = bool(ev[1])
        elif kind == "addr":
            fam, addr, flags = ev[1], bytes(ev[2]), ev[5]
            if not ev[4]:
                self._addrs.pop(addr, None)
            else:
                old = self._addrs.get(addr)
                now_ok = usable(fam, addr, flags)
                if old is None or (now_ok and not usable(fam, addr, old[1])):
                    self._n += 1  # new, or just confirmed (DAD done): the freshest
                    self._addrs[addr] = [fam, flags, self._n]
                else:
                    old[1] = flags
        elif kind == "router":
            # a router REPLACED by another (not one arriving after the old one went away, as after
            # a flush on roaming, where the new address already triggered the BU) means another
            # network behind the same address: announce again
            fam, r = ev[1], ev[2]
            r = None if r is None else bytes(r)
            old = self._routers.get(fam)
            self._routers[fam] = r
            force = (old is not None and r is not None and old != r and self.coa is not None
                     and len(self.coa) == (4 if fam == 4 else 16))
        else:
            self.ignored += 1
            return None
        return self._decide(now, force)

    def best(self):
        """(kind, address, transport) the MN should use now."""
        if not self.up:
            return "detached", None, None
        v6 = self._newest(6) if "udp6" in self.transports or "ip6" in self.transports else None
        if v6 and self.home_prefix and in_prefix(v6, self.home_prefix[0], self.home_prefix[1]):
            return "home", v6, None  # whatever the transport order: at home no tunnel is needed
        for t in self.transports:
            a = v6 if t != "udp4" else self._newest(4)
            if a:
                return "moved", a, t
        return "detached", None, None

    def _newest(self, fam):
        top = None
        for a, (f, fl, n) in self._addrs.items():
            if f == fam and usable(f, a, fl):
                rank = (not fl & _DEPRECATED, n)
                if top is None or rank > top[0]:
                    top = (rank, a)
        return top and top[1]

    def _decide(self, now, force):
        kind, coa, t = self.best()
        same = ((kind, coa, t) == (self.kind, self.coa, self.transport)
                or kind == self.kind == "home")
        if same and not (force and coa):
            return None  # (at home, another home-prefix address changes nothing for the MN)
        self.kind, self.coa, self.transport, self.since = kind, coa, t, now
        return kind, coa, t
