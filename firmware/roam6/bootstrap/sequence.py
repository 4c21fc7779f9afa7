"""Runs the bootstrap methods in the configured order until one finds a home agent (sans-IO).

cfg["bootstrap"] lists "dhcpv6" (RFC 6610, IPv6 links only; with cfg["nai"] the Identified Home
Network Information of the NAI's realm is asked for beside the Unrestricted one), "dns" (RFC 5026
SRV, any link with a DNS server: the way from IPv4-only networks) and "static" (cfg's own
values). Each method gets BUDGET_MS; then the next one runs. What a method does not give (home prefix, an
IPv4 HA address) is filled from cfg when cfg has it. CONTRACTS.md §10.3 shows the driver loop
(roam6.node.boot runs it with sockets).

The machines' contract: `now` is int ms (the caller's monotonic clock) and the last positional
argument; options follow it as keywords.
- in: `receive(data, src, sport, now)`: a UDP datagram (src: raw address bytes, sport: its port);
  `handle_timer(now)` once `get_timer()` (an int ms deadline, or None when done) has come.
- out: `datagrams_to_send(now)` -> [(bytes, (dst address bytes, dst port, src port))], src port
  0 = any; when `done`: `result` (a dict, see `_finish`) or `error` and `notes`.
- A datagram from a port the running method does not listen to, or after the end, is ignored and
  counted in `ignored`. No events: the outcome is one result, read once `done`.
"""
from roam6.compat import const
from roam6.wire.addr import ip4_from_text, ip6_from_text

BUDGET_MS = const(4000)
_DHCP6_SERVER_PORT = const(547)
_DNS_PORT = const(53)


def _dns_client(servers, rand, now, domain=None, name=None):
    # imported on first use: a board on an IPv4 network never loads the DHCPv6 code, and one
    # that found its HA by DHCPv6 never loads DNS (each is ~8 KB of heap on the unix port)
    from roam6.bootstrap.dns import DnsClient
    return DnsClient(servers, rand, now, domain, name)


def _cfg_value(cfg, key):
    v = cfg.get(key)
    return None if v in (None, "", "bootstrap") else v


def static_info(cfg):
    """cfg's HA and home prefix as a result dict (addresses as bytes); ValueError names the field."""
    info = {"ha": [], "ha_ipv4": [], "home_prefix": None, "ha_fqdn": None, "refresh_s": None}
    for key, parse, lst in (("ha", ip6_from_text, info["ha"]), ("ha_ipv4", ip4_from_text, info["ha_ipv4"])):
        v = _cfg_value(cfg, key)
        if v:
            try:
                lst.append(parse(v))
            except ValueError as e:
                raise ValueError("config field %r: %s" % (key, e))
    v = _cfg_value(cfg, "home_prefix")
    if v:
        try:
            p, n = v.split("/")
            n = int(n)
            if not 0 < n <= 128:
                raise ValueError("prefix length must be 1..128")
            info["home_prefix"] = (ip6_from_text(p), n)
        except ValueError as e:
            raise ValueError("config field 'home_prefix': %r is not addr/len (%s)" % (v, e))
    return info


def link_has_ip6(events, transports=("udp6", "ip6")):
    """`have_ip6` for Bootstrap from the link adapter's events: an IPv6 transport is allowed and
    the link has a global IPv6 address or an IPv6 default router. A link-local alone does not
    count: on an IPv4-only network DHCPv6 would only wait out its budget."""
    if "udp6" not in transports and "ip6" not in transports:
        return False
    v6 = False
    for e in events:
        if e[0] == "router" and e[1] == 6:
            v6 = v6 or e[2] is not None
        elif e[0] == "addr" and e[1] == 6 and e[4] and not (e[2][0] == 0xFE and e[2][1] & 0xC0 == 0x80):
            v6 = True
    return v6


class Bootstrap:
    def __init__(self, cfg, mac, have_ip6, dns_servers, rand, now, dhcp_delay_ms=None,
                 budget_ms=BUDGET_MS):
        self.cfg = cfg
        self.mac = mac
        self.have_ip6 = have_ip6
        self.dns_servers = list(dns_servers or ())
        self.rand = rand
        self.dhcp_delay_ms = dhcp_delay_ms
        self.budget_ms = budget_ms
        self.methods = list(cfg.get("bootstrap") or ("dhcpv6", "dns", "static"))
        self.done = False
        self.ignored = 0
        self.result = None
        self.error = None
        self.notes = []  # why each method that did not succeed did not
        self.method = None
        self._c = None
        self._partial = None  # DHCPv6 info waiting for its HA FQDN to be resolved
        self._deadline = None
        self._start_next(now)

    def _note(self, m, why):
        self.notes.append("%s: %s" % (m, why))

    def _start_next(self, now):
        self._c = None
        while self.methods:
            m = self.methods.pop(0)
            self.method = m
            if m == "dhcpv6":
                if not self.have_ip6:
                    self._note(m, "no IPv6 on this link")
                    continue
                # ask for the Identified Home Network Information of our NAI's realm too (RFC 6610)
                nai = self.cfg.get("nai") or ""
                from roam6.bootstrap.dhcp6 import Dhcp6Client
                self._c = Dhcp6Client(self.mac, self.rand, now, self.dhcp_delay_ms,
                                      nai.split("@")[1] if "@" in nai else None)
            elif m == "dns":
                domain = self.cfg.get("domain")
                if not domain or not self.dns_servers:
                    self._note(m, "no domain configured" if not domain else "no DNS server on this link")
                    continue
                self._c = _dns_client(self.dns_servers, self.rand, now, domain)
            elif m == "static":
                try:
                    info = static_info(self.cfg)
                except ValueError as e:
                    self._note(m, str(e))
                    continue
                if info["ha"] or info["ha_ipv4"]:
                    self._finish(info)
                    return
                self._note(m, "no 'ha' or 'ha_ipv4' in config")
                continue
            else:
                self._note(m, "unknown method (use dhcpv6, dns, static)")
                continue
            self._deadline = now + self.budget_ms
            return
        self.done = True
        self.method = None
        self.error = "no home agent found: " + "; ".join(self.notes)

    def _finish(self, info):
        try:
            fill = static_info(self.cfg)
        except ValueError:
            fill = None
        info.setdefault("home_prefix", None)
        info.setdefault("refresh_s", None)
        if fill:
            for k in ("home_prefix", "ha_ipv4"):
                if not info.get(k) and fill[k]:
                    info[k] = fill[k]
        info["method"] = self.method
        self.result = info
        self.done = True
        self._c = None

    def get_timer(self):
        if self.done:
            return None
        t = self._c.get_timer()
        return self._deadline if t is None or t > self._deadline else t

    def handle_timer(self, now):
        if self.done:
            return
        if now >= self._deadline:
            self._note(self.method, "no answer within %d ms" % self.budget_ms)
            self._start_next(now)
        else:
            self._c.handle_timer(now)
            self._check(now)

    def datagrams_to_send(self, now):
        """[(data, (dst addr bytes, dst port, src port))]; src port 0 = any."""
        if self.done:
            return []
        return self._c.datagrams_to_send(now)

    def receive(self, data, src, sport, now):
        """A UDP datagram for us (from port 547 or 53); anything else is ignored (counted)."""
        if self.done:
            self.ignored += 1
            return
        c = self._c
        is_dhcp = c.kind == "dhcpv6"
        if is_dhcp and sport == _DHCP6_SERVER_PORT:
            c.receive(data, now)
        elif not is_dhcp and sport == _DNS_PORT:
            c.receive(data, src, now)
        else:
            self.ignored += 1
            return
        self._check(now)

    def _check(self, now):
        c = self._c
        if not c.done:
            return
        if self._partial is not None:  # the HA FQDN lookup for a DHCPv6 answer
            info, self._partial = self._partial, None
            if c.result:
                info["ha"], info["ha_ipv4"] = c.result["ha"], c.result["ha_ipv4"]
                self._finish(info)
            else:
                self._note(self.method, "HA FQDN %s: %s" % (info["ha_fqdn"], c.error))
                self._start_next(now)
        elif c.result is None:
            self._note(self.method, c.error)
            self._start_next(now)
        elif not c.result["ha"] and not c.result["ha_ipv4"] and self.dns_servers:
            self._partial = c.result  # only the HA's name: resolve it
            self._c = _dns_client(self.dns_servers, self.rand, now, None, c.result["ha_fqdn"])
        elif c.result["ha"] or c.result["ha_ipv4"]:
            self._finish(c.result)
        else:
            self._note(self.method, "only the HA name %s and no DNS server" % c.result["ha_fqdn"])
            self._start_next(now)
