"""IPv4 home addresses at the home agent (RFC 5555 §3.1.1, §3.2.1, §4.3; docs/PROTOCOL-NOTES.md §4).

An MN asks for an IPv4 home address with the IPv4 Home Address option in its BU (0.0.0.0: "give
me one"); the HA answers in the BA with an IPv4 Address Acknowledgement. The IPv6 binding is
decided by BU_RULES as always: the IPv4 answer never turns an accepted BU into a rejected one.

Where addresses come from (ha.json `ipv4_home_prefix`, `ipv4_pool`; keys file `ipv4_hoa` per SA):
- a static assignment for the MN's NAI (keys file), else
- the pool: the first free address, leased to the NAI. A lease is never given to two NAIs, is
  freed when the binding ends (deregistration, expiry, revoked SA) and survives an HA restart:
  the leases live in a small JSON file next to the keys file (`<keys_file>.ipv4-leases.json`,
  written whole to a temporary file and renamed: a crash leaves the old or the new file, never
  half of one). A lease kept over a restart stays its NAI's until the binding it had would have
  expired (its `expires`, wall clock); then it may go to another NAI.

Statuses (IPv4 Address Acknowledgement, RFC 5555 §3.2.1), first match wins:
    129 administratively prohibited  this HA has no IPv4 home prefix, or the address asked for is
                                     inside the prefix but neither in the pool nor this NAI's
    133 prefix allocation unauthorized  P flag set or Prefix-len other than 32 (no mobile networks)
    131 invalid IPv4 address         outside the IPv4 home prefix (or its network/broadcast address)
    130 incorrect IPv4 home address  bound or assigned to another NAI, or not this NAI's static one
    132 dynamic assignment not available  0.0.0.0 asked and the pool is exhausted (or absent)
    0   success                      the address is bound to this binding

sans-IO like the cache: `answer` and `release` change memory and set `dirty`; the driver calls
`save()` after each input (ha/driver.py `_flush`). The data plane reads `bound` ({IPv4 HoA:
Binding}) per packet.
"""
import ipaddress
import json
import os
from typing import NamedTuple

from ..errors import UserError

V4_PROHIBITED, V4_INCORRECT, V4_INVALID, V4_NO_DYNAMIC, V4_PREFIX = 129, 130, 131, 132, 133
ZERO4 = bytes(4)


def _text(a):
    return str(ipaddress.IPv4Address(a)) if a is not None else None


class IPv4Bound(NamedTuple):
    kind: str                   # "ipv4_bound"
    binding: object
    hoa4: bytes

    def as_dict(self):
        d = self.binding.as_dict()
        d.update(ev=self.kind, hoa4=_text(self.hoa4))
        return d


class IPv4Released(NamedTuple):
    kind: str                   # "ipv4_released"
    binding: object
    hoa4: bytes
    reason: str                 # dereg | expired | revoked | shutdown | moved | not asked

    def as_dict(self):
        d = self.binding.as_dict()
        d.update(ev=self.kind, hoa4=_text(self.hoa4), reason=self.reason)
        return d


class IPv4Refused(NamedTuple):
    kind: str                   # "ipv4_refused"
    binding: object
    status: int
    asked: bytes

    def as_dict(self):
        d = self.binding.as_dict()
        d.update(ev=self.kind, status=self.status, asked=_text(self.asked))
        return d


class IPv4Homes:
    def __init__(self, prefix=None, pool=(), static=None, leases_path=None, gateway=None):
        self.prefix = prefix                    # ipaddress.IPv4Network or None
        self.pool = [ipaddress.IPv4Address(a).packed for a in pool]
        self.pool_set = set(self.pool)
        self.static = dict(static or {})        # {NAI bytes: IPv4 bytes}
        self.static_owner = {a: n for n, a in self.static.items()}
        self.keys_static = dict(self.static)    # the keys file's part of `static` (SIGHUP replaces it)
        self.aaa_static = {}                    # the AAA server's part (Framed-IP-Address per NAI)
        self.pool_all = list(self.pool)         # the configured pool, static addresses included
        self.gateway = gateway                  # the HA's own address on the home link (never given)
        self.leases_path = leases_path
        self.leases = {}                        # {NAI bytes: [IPv4 bytes, expires wall ms]}
        self.lease_owner = {}                   # {IPv4 bytes: NAI bytes}
        self.bound = {}                         # {IPv4 bytes: Binding}: the data plane's table
        self.dirty = False
        self.last_status = None

    # ---- persistence ---------------------------------------------------------------------------
    def load(self, wall_ms):
        """Leases kept by an earlier run; the ones past their expiry or no longer in the pool go."""
        if not self.leases_path or not os.path.exists(self.leases_path):
            return
        try:
            with open(self.leases_path) as f:
                raw = json.load(f)
            rows = raw["leases"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError("IPv4 leases file %s cannot be read: %s" % (self.leases_path, exc),
                            hint="fix or remove it (the HA writes it; removing it forgets the leases)") from None
        for row in rows:
            try:
                nai, addr, exp = row["nai"].encode(), ipaddress.IPv4Address(row["addr"]).packed, int(row["expires"])
            except (KeyError, ValueError, TypeError, AttributeError):
                continue
            if addr in self.pool_set and exp > wall_ms and addr not in self.lease_owner:
                self.leases[nai] = [addr, exp]
                self.lease_owner[addr] = nai

    def save(self):
        """Write the leases if they changed: temporary file, fsync, rename (atomic)."""
        if not self.dirty or not self.leases_path:
            return
        self.dirty = False
        rows = [{"nai": n.decode(errors="replace"), "addr": _text(a), "expires": e}
                for n, (a, e) in sorted(self.leases.items())]
        tmp = self.leases_path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"leases": rows}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.leases_path)

    # ---- decisions -----------------------------------------------------------------------------
    def _check(self, nai, want, plen, p, wall_ms):
        if self.prefix is None:
            return V4_PROHIBITED, ZERO4
        if p or plen != 32:
            return V4_PREFIX, ZERO4
        mine = self.static.get(nai)
        if want != ZERO4:
            a = ipaddress.IPv4Address(want)
            if (a not in self.prefix or a in (self.prefix.network_address, self.prefix.broadcast_address)
                    or want == self.gateway):
                return V4_INVALID, want
            owner = self.static_owner.get(want) or self._lease_holder(want, wall_ms)
            if (mine is not None and want != mine) or (owner is not None and owner != nai):
                return V4_INCORRECT, want
            if mine is None and want not in self.pool_set:
                return V4_PROHIBITED, want
            return 0, want
        if mine is not None:
            return 0, mine
        lease = self.leases.get(nai)
        if lease is not None:
            return 0, lease[0]
        for a in self.pool:
            if self._lease_holder(a, wall_ms) is None and a not in self.static_owner:
                return 0, a
        return V4_NO_DYNAMIC, ZERO4

    def _lease_holder(self, addr, wall_ms):
        """The NAI holding addr (bound now, or leased and not yet past its expiry)."""
        b = self.bound.get(addr)
        if b is not None:
            return b.nai
        nai = self.lease_owner.get(addr)
        if nai is None:
            return None
        if self.leases[nai][1] <= wall_ms:          # a lease from before a restart, run out
            del self.leases[nai]
            del self.lease_owner[addr]
            self.dirty = True
            return None
        return nai

    def answer(self, b, nai, want, plen, p, lifetime_s, wall_ms, events):
        """An accepted (non-deregistration) BU of binding b carried the IPv4 HoA option: bind,
        keep or refuse. Returns (status, address) for the BA's acknowledgement."""
        status, addr = self._check(nai, bytes(want), plen, p, wall_ms)
        self.last_status = status
        old = getattr(b, "v4", None)
        if status >= 128:
            if old is not None:
                self.release(b, "refused", events)
            events.append(IPv4Refused("ipv4_refused", b, status, bytes(want)))
            return status, addr
        if old is not None and old != addr:
            self.release(b, "moved", events)
        b.nai = nai
        expires = wall_ms + lifetime_s * 1000
        if addr in self.pool_set:
            lease = self.leases.get(nai)
            if lease is None or lease[0] != addr:
                if lease is not None:
                    self.lease_owner.pop(lease[0], None)
                self.leases[nai] = [addr, expires]
                self.lease_owner[addr] = nai
                self.dirty = True
            elif expires - lease[1] > 60000 or expires < lease[1]:
                lease[1] = expires                  # written again only when it moved a minute
                self.dirty = True
        if old != addr:
            b.v4 = addr
            self.bound[addr] = b
            events.append(IPv4Bound("ipv4_bound", b, addr))
        return status, addr

    def release(self, b, reason, events):
        """Binding b no longer holds its IPv4 HoA. The lease ends too, except at "shutdown"
        (kept for the next run of the HA)."""
        addr = getattr(b, "v4", None)
        if addr is None:
            return
        b.v4 = None
        if self.bound.get(addr) is b:
            del self.bound[addr]
        if reason != "shutdown":
            nai = self.lease_owner.get(addr)
            if nai is not None and nai == getattr(b, "nai", None):
                del self.lease_owner[addr]
                del self.leases[nai]
                self.dirty = True
        events.append(IPv4Released("ipv4_released", b, addr, reason))


def leases_path(d, keys_file, source, base_dir="."):
    """Where the pool's leases live: ha.json `ipv4_leases_file` (relative to ha.json's folder),
    else beside the keys file (`<keys_file>.ipv4-leases.json`). An HA with no keys file (AAA only)
    must name it. Raises UserError naming the field."""
    v = d.get("ipv4_leases_file")
    if v is not None:
        if not isinstance(v, str) or not v or any(ch < " " for ch in v):
            raise UserError("%s: field 'ipv4_leases_file' must be a path, got %r" % (source, v),
                            hint="a file the HA may write, e.g. \"/var/lib/roam6/ipv4-leases.json\"")
        return os.path.join(base_dir, v)
    if not keys_file:
        raise UserError("%s: field 'ipv4_leases_file' is missing: an IPv4 pool's leases are kept across restarts "
                        "and this HA has no keys file to keep them beside" % source,
                        hint="add e.g. \"ipv4_leases_file\": \"ipv4-leases.json\" (relative to ha.json's folder)")
    return keys_file + ".ipv4-leases.json"


def parse_config(d, keys_file, sas, source, ha_ipv4=None, base_dir="."):
    """IPv4Homes from ha.json's `ipv4_home_prefix` / `ipv4_pool` / `ipv4_leases_file` and the SAs'
    `ipv4_hoa`, or None when none is configured. Raises UserError naming the field."""
    prefix_t, pool_t = d.get("ipv4_home_prefix"), d.get("ipv4_pool")
    static = {sa.nai: sa.ipv4_hoa for sa in sas if getattr(sa, "ipv4_hoa", None) is not None}
    if prefix_t is None:
        if pool_t is not None or static:
            raise UserError("%s: field 'ipv4_home_prefix' is missing, and %s" % (
                source, "'ipv4_pool' is set" if pool_t is not None else "the keys file assigns IPv4 home addresses"),
                hint="add it, e.g. \"ipv4_home_prefix\": \"198.18.50.0/24\"")
        return None
    try:
        prefix = ipaddress.IPv4Network(prefix_t, strict=True)
    except (ValueError, TypeError):
        raise UserError("%s: field 'ipv4_home_prefix' is not an IPv4 prefix: %r" % (source, prefix_t),
                        hint="write it like \"198.18.50.0/24\" with the host bits zero") from None
    pool = []
    if pool_t is not None:
        try:
            lo, hi = (ipaddress.IPv4Address(x.strip()) for x in pool_t.split("-"))
        except (ValueError, TypeError, AttributeError):
            raise UserError("%s: field 'ipv4_pool' must be a range \"first-last\", got %r" % (source, pool_t),
                            hint="e.g. \"198.18.50.100-198.18.50.199\"") from None
        if not (lo <= hi and lo in prefix and hi in prefix) or int(hi) - int(lo) > 65535:
            raise UserError("%s: field 'ipv4_pool' %s must lie inside ipv4_home_prefix %s (first <= last, "
                            "at most 65536 addresses)" % (source, pool_t, prefix), hint="fix the range")
        pool = [ipaddress.IPv4Address(i) for i in range(int(lo), int(hi) + 1)]
    for nai, a in static.items():
        if ipaddress.IPv4Address(a) not in prefix:
            raise UserError("keys file %s: the IPv4 home address %s of %s is outside ipv4_home_prefix %s"
                            % (keys_file, _text(a), nai.decode(errors="replace"), prefix), hint="fix 'ipv4_hoa'")
    if len(set(static.values())) != len(static):
        raise UserError("keys file %s: one IPv4 home address is assigned to two NAIs" % keys_file,
                        hint="give every SA its own 'ipv4_hoa'")
    full = pool
    pool = [a for a in pool if a.packed not in set(static.values())]
    gw = ipaddress.IPv4Address(ha_ipv4).packed if ha_ipv4 else None
    path = leases_path(d, keys_file, source, base_dir) if full else None     # no pool: no leases
    homes = IPv4Homes(prefix, pool, static, path, gateway=gw)
    homes.pool_all = [a.packed for a in full]       # the configured pool, static addresses included
    return homes


def static_of(sas, keys_file, homes):
    """The static assignments {NAI: IPv4} of reloaded SAs (SIGHUP), checked as at start: inside
    the prefix, none twice. `homes` None (no ipv4_home_prefix) refuses any. Raises UserError."""
    static = {sa.nai: sa.ipv4_hoa for sa in sas if getattr(sa, "ipv4_hoa", None) is not None}
    if static and homes is None:
        raise UserError("keys file %s assigns IPv4 home addresses and ha.json has no 'ipv4_home_prefix'" % keys_file,
                        hint="add ipv4_home_prefix to ha.json (restart the HA), or remove 'ipv4_hoa'")
    for nai, a in static.items():
        if ipaddress.IPv4Address(a) not in homes.prefix:
            raise UserError("keys file %s: the IPv4 home address %s of %s is outside ipv4_home_prefix %s"
                            % (keys_file, _text(a), nai.decode(errors="replace"), homes.prefix), hint="fix 'ipv4_hoa'")
    if len(set(static.values())) != len(static):
        raise UserError("keys file %s: one IPv4 home address is assigned to two NAIs" % keys_file,
                        hint="give every SA its own 'ipv4_hoa'")
    return static


def reassign(homes, static, events):
    """SIGHUP: the keys file's static IPv4 home addresses now read `static` (see apply_static).
    Returns the number of bindings that lost their IPv4 HoA."""
    homes.keys_static = dict(static)
    return apply_static(homes, events)


def aaa_grant(homes, nai, addr, events):
    """An Access-Accept for `nai` carried Framed-IP-Address `addr` (4 bytes; None: it carries
    none any more). Returns None, or why it cannot be this NAI's (then nothing changes): outside
    the IPv4 home prefix, the keys file's or another NAI's (static, or bound now)."""
    if addr is not None:
        a = ipaddress.IPv4Address(addr)
        if a not in homes.prefix or a in (homes.prefix.network_address, homes.prefix.broadcast_address) \
                or addr == homes.gateway:
            return "Framed-IP-Address %s is not a host address of ipv4_home_prefix %s" % (a, homes.prefix)
        owner = homes.static_owner.get(addr)
        b = homes.bound.get(addr)
        if (owner is not None and owner != nai) or (b is not None and getattr(b, "nai", None) != nai):
            return "Framed-IP-Address %s is another NAI's here" % a
    if homes.aaa_static.get(nai) == addr:
        return None
    if addr is None:
        homes.aaa_static.pop(nai, None)
    else:
        homes.aaa_static[nai] = addr
    apply_static(homes, events)
    return None


def apply_static(homes, events):
    """`static` = the AAA server's assignments overlaid by the keys file's. The pool gives up the
    static ones (and gets back those no longer static); a binding whose IPv4 HoA is no longer
    its NAI's (another static one, or now another NAI's) loses it ("reassigned": route and proxy
    ARP go), as does a lease on an address that became static. The MN gets its new address at
    its next BU. Returns the number of bindings that lost their IPv4 HoA."""
    static = {n: a for n, a in homes.aaa_static.items() if a not in set(homes.keys_static.values())}
    static.update(homes.keys_static)
    homes.static = static
    homes.static_owner = {a: n for n, a in homes.static.items()}
    full = homes.pool_all
    homes.pool = [a for a in full if a not in homes.static_owner]
    homes.pool_set = set(homes.pool)
    n = 0
    for addr, b in list(homes.bound.items()):
        nai = getattr(b, "nai", None)
        mine = homes.static.get(nai)
        owner = homes.static_owner.get(addr)
        if (mine is not None and addr != mine) or (owner is not None and owner != nai) or \
                (mine is None and addr not in homes.pool_set):
            homes.release(b, "reassigned", events)
            n += 1
    for nai, (addr, _exp) in list(homes.leases.items()):
        if addr in homes.static_owner:
            del homes.leases[nai]
            homes.lease_owner.pop(addr, None)
            homes.dirty = True
    return n


def from_mn(ha, data, transport, peer):
    """ha/driver.py: an inner IPv4 packet from an MN over udp4/udp6. Into the TUN only when its
    source is an IPv4 HoA bound to exactly this outer path; else dropped and logged (once per
    source)."""
    b = ha.cache.v4homes.bound.get(data[12:16]) if len(data) >= 20 else None
    if b is not None and b.peer == peer and b.transport == transport:
        try:
            ha.tun.write(data)
        except OSError:
            pass
        return
    src = _text(data[12:16]) if len(data) >= 20 else "?"
    ha.log.once((peer[0], "v4src", src), "dropped", source="%s:%s:%d" % ((transport,) + tuple(peer)),
                reason="inner IPv4 source %s is not an IPv4 home address bound to this path" % src)


def open_4in6(ha):
    """ip6 bindings: a raw IPv6 protocol-4 socket bound to the HA's address carries IPv4-in-IPv6
    both ways (the kernel adds and strips the outer header). Returns it (non-blocking)."""
    import socket
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 4)
    try:
        s.setsockopt(socket.IPPROTO_IPV6, 78, 1)          # IPV6_FREEBIND: the address may come later
        s.bind((ha.cfg.address_text, 0))
    except OSError:
        s.close()
        raise
    s.setblocking(False)
    return s


def on_4in6(ha):
    """IPv4-in-IPv6 from MNs on ip6: into the TUN when the inner source is an IPv4 HoA bound over
    ip6 to exactly the outer source; else dropped and logged once per source."""
    bound = ha.cache.v4homes.bound
    for _ in range(256):
        try:
            inner, addr = ha.s4in6.recvfrom(65536)
        except (BlockingIOError, InterruptedError):
            return
        b = bound.get(inner[12:16]) if len(inner) >= 20 and inner[0] >> 4 == 4 else None
        if b is not None and b.transport == "ip6" and b.peer[0] == addr[0]:
            try:
                ha.tun.write(inner)
            except OSError:
                pass
        else:
            src = _text(inner[12:16]) if len(inner) >= 20 else "?"
            ha.log.once((addr[0], "v4src", src), "dropped", source="ip6:%s:0" % addr[0],
                        reason="inner IPv4 source %s is not an IPv4 home address bound to this path" % src)


def drop_stale_proxies4(ha):
    """Proxy ARP entries inside the IPv4 home prefix left on the home link by an HA that was
    killed (its TUN and routes died with it, proxy entries do not): removed at start."""
    import subprocess
    homes = ha.cache.v4homes
    try:
        out = subprocess.run(["ip", "-4", "neigh", "show", "proxy", "dev", ha.cfg.home_link],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return
    for line in out.splitlines():
        try:
            a = ipaddress.IPv4Address(line.split()[0])
        except (ValueError, IndexError):
            continue
        if a in homes.prefix:
            ha._kernel("proxy_del", a.packed, ha.home_ifindex)
