"""The `aaa` section of ha.json (docs/CONTRACTS.md §14): which RADIUS servers the HA asks.

    "aaa": {"servers": [{"host": "2001:db8:f4::2", "auth_port": 1812, "acct_port": 1813}, ...],
            "secret_file": "radius-secret", "timeout_ms": 1000, "retries": 2,
            "nas_identifier": "ha1", "cache_s": 3600, "reject_s": 10, "max_pending": 1024,
            "requests_per_s": 1000, "accounting": true, "dae_port": 3799, "dae_clients": []}

Every mistake is a one-line UserError naming the field. The secret file must be 0600 (like the
keys file): it is the shared secret that hides MN-HA keys on the wire.
"""
import ipaddress
import os
import stat

from ..errors import UserError

FIELDS = {"servers": None, "secret_file": None, "timeout_ms": 1000, "retries": 2, "nas_identifier": "roam6-ha",
          "cache_s": 3600, "reject_s": 10, "max_pending": 1024,
          "requests_per_s": 1000, "accounting": True, "dae_port": 0, "dae_clients": []}
SERVER_FIELDS = {"host": None, "auth_port": 1812, "acct_port": 1813}


class Server:
    def __init__(self, host, auth_port, acct_port):
        self.host = host                # address text (IPv4 or IPv6)
        self.family_v6 = ":" in host
        self.auth_port = auth_port
        self.acct_port = acct_port

    def __repr__(self):
        return "[%s]:%d" % (self.host, self.auth_port) if self.family_v6 else "%s:%d" % (self.host, self.auth_port)


class AaaConfig:
    def __init__(self):
        self.servers = []
        self.secret = b""
        self.secret_file = ""
        self.timeout_ms = 1000          # one try's wait for an answer
        self.retries = 2                # tries per server before the next one
        self.nas_identifier = "roam6-ha"
        self.cache_s = 3600             # an Accept's SA is asked again after this (refresh)
        self.reject_s = 10              # a Reject is remembered this long (no new request)
        self.max_pending = 1024         # BUs held for an answer at once; more get BA 130
        self.requests_per_s = 1000      # new Access-Requests per second (burst: as many); more get BA 130
        self.accounting = True
        self.dae_port = 0               # RFC 5176 Disconnect-Requests on this UDP port (3799); 0: off
        self.dae_clients = []           # who may send them, beside the servers themselves


def _int(d, field, lo, hi, where):
    v = d[field]
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise UserError("%s: field %r must be an integer from %d to %d, got %r" % (where, field, lo, hi, v),
                        hint="fix %r in the file" % field)
    return v


def parse_aaa(raw, base_dir=".", source="HA config"):
    where = "%s: aaa" % source
    if not isinstance(raw, dict):
        raise UserError("%s must be an object" % where, hint="see CONTRACTS.md §14")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise UserError("%s: field %r is not a known field (known: %s)"
                        % (where, unknown[0], ", ".join(sorted(FIELDS))))
    for field in ("servers", "secret_file"):
        if field not in raw:
            raise UserError("%s: field %r is missing" % (where, field), hint="see CONTRACTS.md §14")
    d = dict(FIELDS)
    d.update(raw)
    a = AaaConfig()
    if not isinstance(d["servers"], list) or not 1 <= len(d["servers"]) <= 8:
        raise UserError("%s: field 'servers' must be a list of 1-8 servers" % where,
                        hint='e.g. [{"host": "2001:db8:f4::2"}, {"host": "198.18.4.3"}]')
    for i, s in enumerate(d["servers"]):
        w = "%s.servers[%d]" % (where, i)
        if not isinstance(s, dict):
            raise UserError("%s must be an object" % w, hint='{"host": ..., "auth_port": 1812, "acct_port": 1813}')
        unknown = sorted(set(s) - set(SERVER_FIELDS))
        if unknown:
            raise UserError("%s: field %r is not a known field (known: host, auth_port, acct_port)" % (w, unknown[0]))
        e = dict(SERVER_FIELDS)
        e.update(s)
        try:
            host = str(ipaddress.ip_address(e["host"]))
        except (ValueError, TypeError):
            raise UserError("%s: field 'host' must be an IPv4 or IPv6 address, got %r" % (w, e["host"]),
                            hint="the RADIUS server's address (no names: the HA must not wait for DNS)") from None
        a.servers.append(Server(host, _int(e, "auth_port", 1, 65535, w), _int(e, "acct_port", 1, 65535, w)))
    sf = d["secret_file"]
    if not isinstance(sf, str) or not sf:
        raise UserError("%s: field 'secret_file' must be a path" % where)
    a.secret_file = os.path.join(base_dir, sf)
    a.secret = load_secret(a.secret_file)
    a.timeout_ms = _int(d, "timeout_ms", 10, 60000, where)
    a.retries = _int(d, "retries", 1, 10, where)
    a.cache_s = _int(d, "cache_s", 10, 7 * 86400, where)
    a.reject_s = _int(d, "reject_s", 0, 3600, where)
    a.max_pending = _int(d, "max_pending", 1, 65536, where)
    a.requests_per_s = _int(d, "requests_per_s", 1, 1000000, where)
    nas = d["nas_identifier"]
    if not isinstance(nas, str) or not 1 <= len(nas) <= 64 or not nas.isprintable():
        raise UserError("%s: field 'nas_identifier' must be 1-64 printable characters" % where)
    a.nas_identifier = nas
    if not isinstance(d["accounting"], bool):
        raise UserError("%s: field 'accounting' must be true or false" % where)
    a.accounting = d["accounting"]
    a.dae_port = _int(d, "dae_port", 0, 65535, where)
    if not isinstance(d["dae_clients"], list):
        raise UserError("%s: field 'dae_clients' must be a list of addresses" % where)
    for i, h in enumerate(d["dae_clients"]):
        try:
            a.dae_clients.append(str(ipaddress.ip_address(h)))
        except (ValueError, TypeError):
            raise UserError("%s: dae_clients[%d] is not an IPv4 or IPv6 address: %r" % (where, i, h)) from None
    return a


def load_secret(path):
    """The RADIUS shared secret: the file's first line. Refused if group or others may read it."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UserError("RADIUS secret file %s cannot be opened: %s" % (path, exc.strerror),
                        hint="field 'aaa.secret_file' of ha.json names it (relative to that file's folder)") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UserError("RADIUS secret file %s is readable by group or others (mode %o)"
                        % (path, stat.S_IMODE(st.st_mode)),
                        hint="chmod 600 %s" % path)
    try:
        with open(path, "rb") as f:
            secret = f.read().split(b"\n")[0].strip()
    except OSError as exc:
        raise UserError("RADIUS secret file %s cannot be read: %s" % (path, exc.strerror)) from None
    if not secret:
        raise UserError("RADIUS secret file %s is empty" % path, hint="write the shared secret on its first line")
    return secret
