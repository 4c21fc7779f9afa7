"""Renumbering the home network at the HA (RFC 6275 §10.6, §11.4.3): ha.json "renumber"
(CONTRACTS.md §6, docs/PROTOCOL-NOTES.md §11.16).

    "home_prefix": "2001:db8:aa::/64",                         the old prefix (and the HA's address)
    "renumber": {"new_prefix": "2001:db8:bb::/64", "old_valid_s": 3600}

While the section is there the HA serves both prefixes:
- BUs for HoAs in either prefix pass rule home_subnet; the old one only for `old_valid_s` seconds
  counted from when the HA read the section (start or SIGHUP; a restart counts again), after
  which a BU for an old HoA gets BA 132 (not home subnet); a binding in the old prefix is granted
  no longer than the old prefix's remaining validity (§10.3.1).
- A keys file entry pinning an old HoA ("hoa") pins the same interface identifier in the new
  prefix too (rule home_reg), and its new HoA may be bound beside the old binding although
  max_bindings_per_sa is 1 (rule capacity): the new one replaces the old.
- When a device's new HoA is bound (after DAD) its binding in the old prefix with the same
  interface identifier and SA ends ("binding_removed", reason "renumbered": route and proxy ND
  entry go); bindings of devices that do not move stay until their lifetime ends.
- Routes into the TUN and proxy ND are per HoA (/128): the same for both prefixes. The operator
  puts the new prefix on the home link and routes it there (the HA does not change addresses).
- Mobile Prefix Advertisements (ha/dhaad.py) name the new prefix first (A, valid 86400 s,
  preferred 14400 s; R clear: the HA has no address in it) and then the old one, deprecated
  (preferred 0, valid: what is left of old_valid_s; R, the HA's address), as long as it is valid.
  roam6's MN tries the first prefix that is not its own (node/mobprefix.py).
- At SIGHUP the section is read again; a renumbering that starts then sends an unsolicited MPA
  through the tunnel to every device bound in the old prefix (§11.4.3: "when ... the home
  prefixes change"); under RFC 4285 roam6's MN takes it only as a prompt to solicit (its MPS and
  the answer to it are what it acts on: node/mobprefix.py), so a forged one costs one MPS.
"""
import ipaddress
import json
import struct

from roam6_codec import consts as C
from roam6.wire.checksum import checksum6
from roam6.wire.ipv6 import build_ipv6

from ..errors import UserError

NEW_VALID_S = 86400
NEW_PREFERRED_S = 14400
OLD_VALID_DEFAULT_S = 3600


class Renumbering:
    def __init__(self, old, new, old_valid_s):
        self.old, self.new = old, new                      # ipaddress.IPv6Network, same length
        self.n = old.prefixlen // 8
        self.old_b = old.network_address.packed[:self.n]
        self.new_b = new.network_address.packed[:self.n]
        self.old_valid_ms = old_valid_s * 1000
        self.started = None                                 # ms (the HA's clock) when it was read

    def start(self, now):
        if self.started is None:
            self.started = now

    def old_left_ms(self, now):
        if self.started is None:
            return self.old_valid_ms
        return max(0, self.started + self.old_valid_ms - now)

    def in_old(self, hoa):
        return hoa[:self.n] == self.old_b

    def in_new(self, hoa):
        return hoa[:self.n] == self.new_b

    def serves(self, hoa, now):
        """Is `hoa` a home address here now (rule home_subnet)?"""
        p = hoa[:self.n]
        return p == self.new_b or (p == self.old_b and self.old_left_ms(now) > 0)

    def twin(self, hoa):
        """The same interface identifier in the other prefix (None outside both)."""
        p = hoa[:self.n]
        if p == self.old_b:
            return self.new_b + bytes(hoa[self.n:])
        if p == self.new_b:
            return self.old_b + bytes(hoa[self.n:])
        return None

    def may_own(self, sa_hoa, hoa):
        """May an SA pinned to `sa_hoa` (keys file) sign for `hoa`?"""
        return sa_hoa is None or sa_hoa == hoa or self.twin(sa_hoa) == bytes(hoa)

    # ---- the cache's hooks (ha/cache.py), only while renumbering --------------------------------
    def home_reg(self, cache, c):
        """Rule home_reg with both prefixes: H set; the SA pinned to this HoA or its twin; no other
        SA pinned to either, nor bound to this HoA."""
        if not c.flags & C.BU_H or not self.may_own(c.sa.hoa, c.hoa):
            return False
        spi = c.sa.spi
        for h in (bytes(c.hoa), self.twin(c.hoa)):
            owner = cache._pinned.get(h)
            if owner is not None and owner != spi:
                return False
        b = c.b
        return b is None or b.spi == spi

    def replaces(self, cache, c):
        """Rule capacity: a new HoA whose twin is bound under the same SA replaces that binding."""
        t = self.twin(c.hoa)
        b = cache.bindings.get(t) if t is not None else None
        return b is not None and b.spi == c.sa.spi

    def cap_units(self, hoa, units, now):
        """§10.3.1: a binding in the old prefix no longer than the prefix stays valid (4 s units)."""
        if hoa[:self.n] != self.old_b:
            return units
        return min(units, self.old_left_ms(now) // 4000)

    def added(self, cache, b):
        """A new binding: the device's binding in the other prefix ends (it renumbered)."""
        t = self.twin(b.hoa)
        if t is None or not self.in_new(b.hoa):
            return
        old = cache.bindings.get(t)
        if old is not None and old.spi == b.spi:
            del cache.bindings[t]
            from .cache import BindingRemoved
            cache._events.append(BindingRemoved("binding_removed", old, "renumbered"))
            cache._v4_gone(old, "renumbered")

    # ---- Mobile Prefix Advertisements (ha/dhaad.py) ---------------------------------------------
    def pios(self, ha, now):
        """The Prefix Information options of an MPA: new first, then the old one while valid."""
        out = struct.pack(">BBBBIII", 3, 4, self.new.prefixlen, 0x40, NEW_VALID_S, NEW_PREFERRED_S, 0)
        out += self.new.network_address.packed
        left = self.old_left_ms(now) // 1000
        if left > 0:
            out += struct.pack(">BBBBIII", 3, 4, self.old.prefixlen, 0x40 | 0x20, left, 0, 0) + ha
        return out


def parse_renumber(v, c, source):
    """ha.json "renumber" -> Renumbering (or None); c: the HAConfig with home_prefix parsed."""
    if v is None:
        return None
    hint = "\"renumber\": {\"new_prefix\": \"2001:db8:bb::/64\", \"old_valid_s\": 3600}"
    if not isinstance(v, dict):
        raise UserError("%s: field 'renumber' must be an object or null, got %r" % (source, v), hint=hint)
    unknown = sorted(set(v) - {"new_prefix", "old_valid_s"})
    if unknown:
        raise UserError("%s: field 'renumber.%s' is not a known field (known: new_prefix, old_valid_s)"
                        % (source, unknown[0]), hint=hint)
    try:
        if not isinstance(v.get("new_prefix"), str):
            raise TypeError
        new = ipaddress.IPv6Network(v["new_prefix"], strict=True)
    except (ValueError, TypeError):
        raise UserError("%s: field 'renumber.new_prefix' must be an IPv6 prefix with the host bits zero, got %r"
                        % (source, v.get("new_prefix")), hint=hint) from None
    old = c.home_prefix
    if new.prefixlen != old.prefixlen:
        raise UserError("%s: field 'renumber.new_prefix' %s must have the length of home_prefix %s"
                        % (source, new, old), hint="a device keeps its interface identifier: same length")
    if new.overlaps(old):
        raise UserError("%s: field 'renumber.new_prefix' %s is home_prefix %s" % (source, new, old),
                        hint="name the prefix the home link moves to")
    s = v.get("old_valid_s", OLD_VALID_DEFAULT_S)
    if not isinstance(s, int) or isinstance(s, bool) or not 10 <= s <= 30 * 86400:
        raise UserError("%s: field 'renumber.old_valid_s' must be an integer from 10 to 2592000, got %r" % (source, s),
                        hint="how long the old prefix is still served (deprecated), counted from start or SIGHUP")
    return Renumbering(old, new, s)


def attach(ha, renum, now):
    """Make `renum` (or None) the HA's renumbering: cache rules, MPAs. Returns the HoAs bound in
    the old prefix when a renumbering starts (to be told by an unsolicited MPA)."""
    prev = getattr(ha.cfg, "renumber", None)
    if renum is not None and prev is not None and (prev.new, prev.old_valid_ms) == (renum.new, renum.old_valid_ms):
        return []                       # the same section: its clock runs on
    if renum is not None:
        renum.start(now)
    ha.cfg.renumber = renum
    ha.cache.renum = renum
    if renum is None:
        if prev is not None:
            ha.log("renumbering", state="off", prefixes=[str(ha.cfg.home_prefix)])
        return []
    ha.log("renumbering", state="on", old=str(renum.old), new=str(renum.new), old_valid_s=renum.old_valid_ms // 1000)
    return [h for h in ha.cache.bindings if renum.in_old(h)]


def reload(ha, now):
    """SIGHUP: read ha.json's "renumber" again (the rest of ha.json needs a restart); a renumbering
    that starts sends an unsolicited MPA to each device bound in the old prefix."""
    path = getattr(ha.cfg, "path", None)
    if not path:
        return
    try:
        with open(path) as f:
            raw = json.load(f)
        if not isinstance(raw, dict):
            raise UserError("%s: must be a JSON object" % ha.cfg.source)
        renum = parse_renumber(raw.get("renumber"), ha.cfg, ha.cfg.source)
    except (OSError, ValueError) as exc:
        ha.log("error", reason="renumbering not reloaded: %s cannot be read: %s" % (path, exc))
        return
    except UserError as exc:
        ha.log("error", reason="renumbering not reloaded: %s" % exc)
        return
    for hoa in attach(ha, renum, now):
        unsolicited_mpa(ha, hoa, now)


def mpa(ha_addr, hoa, ident, pios):
    """An MPA (ICMPv6 147) HA -> HoA: the inner packet for the tunnel."""
    icmp = bytearray(struct.pack(">BBHHH", 147, 0, 0, ident, 0) + pios)
    struct.pack_into(">H", icmp, 2, checksum6(ha_addr, hoa, 58, icmp))
    return build_ipv6(ha_addr, hoa, 58, bytes(icmp))


def unsolicited_mpa(ha, hoa, now):
    """§11.4.3: an MPA nobody asked for, through the binding's tunnel (UDP transports; ip6: 41)."""
    b = ha.cache.bindings.get(hoa)
    renum = ha.cfg.renumber
    if b is None or renum is None:
        return
    pkt = mpa(ha.cfg.address, hoa, 0, renum.pios(ha.cfg.address, now))
    if b.transport == "ip6":
        try:
            ha.s41.sendto(pkt, b.peer)
        except (OSError, AttributeError):
            pass
        return
    ha._send([(pkt, (b.transport, b.peer[0], b.peer[1]))])
