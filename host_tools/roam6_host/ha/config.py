"""The home agent's configuration (`ha.json`) and keys file (CONTRACTS.md §6).

Every mistake becomes a one-line UserError naming the file ("HA config /path/ha.json: ...",
"keys file /path: ...") and the field, and saying what to do; nothing here raises anything else
for bad input. Addresses are turned into raw bytes here, once, so the binding cache
never parses text.
"""
import ipaddress
import json
import os
import stat

from ..errors import UserError

DEFAULTS = {
    "port": 4191,
    "tun": "r6tun",
    "home_link": None,
    "ipv4": None,
    "max_lifetime": 3600,
    "replay_window": 7,
    "nat_refresh": 110,
    "require_timestamps": False,
    "transports": ["udp4", "udp6", "ip6"],
    "dad_ms": 1000,
    "dad_skip_pinned": False,       # no DAD for a HoA the keys file pins to the BU's SA (PROTOCOL-NOTES §11.14)
    "max_bindings": 65536,          # in all (ha/limits.py); beyond: BA 130
    "max_bindings_per_sa": 1,       # per keys-file entry (credential); beyond: BA 130
    "home_agents": None,            # DHAAD's answer, preferred first (ha/dhaad.py); None: this HA
}
KNOWN = set(DEFAULTS) | {"home_prefix", "address", "keys_file", "aaa", "journal", "journal_max", "journal_sync",
                            "replica", "ipv4_home_prefix", "ipv4_pool", "security", "ipv4_leases_file", "renumber"}
SA_FIELDS = ("nai", "spi", "key", "hoa", "ipv4_hoa", "security", "psk", "more_hoas")   # what a keys-file entry holds
KEYS_FIELDS = ("sas",)                       # what the keys file itself may hold
TRANSPORTS = ("udp4", "udp6", "ip6")


class SAConfig:
    """One MN-HA mobility security association (RFC 4285) as read from the keys file."""

    def __init__(self, nai, spi, key, hoa):
        self.nai = nai          # bytes (the MN-ID option carries bytes)
        self.spi = spi
        self.key = key          # 16 bytes
        self.hoa = hoa          # 16 bytes or None (any HoA of the home prefix)
        self.ipv4_hoa = None    # 4 bytes: this NAI's static IPv4 home address (RFC 5555, ha/ipv4home.py)


class HAConfig:
    def __init__(self):
        self.home_prefix = None     # ipaddress.IPv6Network
        self.prefix_bytes = b""     # the network's leading bytes, for a quick "inside?" test
        self.address = None         # 16 bytes
        self.address_text = ""
        self.ipv4 = None            # text or None
        self.port = 4191
        self.home_link = None
        self.tun = "r6tun"
        self.keys_file = ""
        self.max_lifetime = 3600
        self.replay_window = 7
        self.nat_refresh = 110
        self.require_timestamps = False
        self.transports = list(TRANSPORTS)
        self.dad_ms = 1000          # DAD wait for a new binding's HoA on the home link; 0: none
        self.dad_skip_pinned = False    # a HoA pinned to the BU's SA in the keys file: no DAD
        self.max_bindings = 65536
        self.max_bindings_per_sa = 1
        self.sas = []
        self.aaa = None             # aaa.config.AaaConfig: the "aaa" section (RADIUS), or None
        self.journal = None         # continuity.py: binding journal path, its size and sync policy
        self.journal_max = 10000
        self.journal_sync = False
        self.replica = None         # replica.py: the hot standby pair (ReplicaConfig) or None
        self.ipv4_homes = None      # ha/ipv4home.IPv4Homes when ipv4_home_prefix is set
        self.source = "HA config"   # "HA config /path/ha.json": what messages about a field name
        self.security = ["rfc4285"]  # what the HA accepts: "rfc4285" and/or "ipsec" (ha/ipsecconf.py)
        self.ipsec_peers = []       # ipsecconf.IpsecPeer: the keys file's IPsec devices
        self.renumber = None        # prefixes.Renumbering: ha.json "renumber", the new home prefix
        self.path = None            # ha.json's path (load_config)


def _err(source, field, what, hint):
    return UserError("%s: field %r %s" % (source, field, what), hint=hint)


def _int(d, field, lo, hi, source="HA config"):
    v = d[field]
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise UserError("%s: field %r must be an integer from %d to %d, got %r" % (source, field, lo, hi, v),
                        hint="fix %r in the file" % field)
    return v


def _ip6(text, field, source="HA config"):
    if not isinstance(text, str):   # ipaddress takes an int too: "address": 1 would become ::1
        raise UserError("%s: field %r must be a string like \"2001:db8:aa::1\", got %r" % (source, field, text),
                        hint="quote the address")
    try:
        return ipaddress.IPv6Address(text)
    except (ValueError, TypeError):
        raise UserError("%s: field %r is not an IPv6 address: %r" % (source, field, text),
                        hint="write it like \"2001:db8:aa::1\"") from None


def load_config(path):
    """Read ha.json and its keys file; returns an HAConfig or raises UserError."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise UserError("HA config %s does not exist" % path, hint="pass --config with the path of ha.json") from None
    except (OSError, ValueError) as exc:
        raise UserError("HA config %s cannot be read: %s" % (path, _one_line(exc)),
                        hint="it must be a JSON object (CONTRACTS.md §6)") from None
    c = parse_config(raw, base_dir=os.path.dirname(os.path.abspath(path)), source="HA config %s" % path)
    c.path = path               # SIGHUP reads "renumber" again (ha/prefixes.py)
    return c


def _one_line(exc):
    return " ".join(str(exc).split())


def parse_config(raw, base_dir=".", source="HA config"):
    """The HAConfig of a decoded ha.json; `source` starts every message ("HA config /path")."""
    def err(field, what, hint):
        return _err(source, field, what, hint)

    if not isinstance(raw, dict):
        raise UserError("%s: must be a JSON object, got %s" % (source, type(raw).__name__),
                        hint="see CONTRACTS.md §6 for the fields")
    unknown = sorted(set(raw) - KNOWN)
    if unknown:
        raise err(unknown[0], "is not a known field (known: %s)" % ", ".join(sorted(KNOWN)),
                  "fix or remove %r (CONTRACTS.md §6)" % unknown[0])
    for field in ("home_prefix", "address") + (() if "aaa" in raw else ("keys_file",)):
        if field not in raw:
            raise err(field, "is missing", "add it (CONTRACTS.md §6)")
    d = dict(DEFAULTS)
    d.update(raw)
    c = HAConfig()
    c.source = source
    for field in ("home_prefix", "ipv4"):   # ipaddress would take an int (1 -> ::1/128, 0.0.0.1)
        if d[field] is not None and not isinstance(d[field], str):
            raise err(field, "must be a string, got %r" % (d[field],), "quote it, e.g. \"2001:db8:aa::/64\"")
    try:
        c.home_prefix = ipaddress.IPv6Network(d["home_prefix"], strict=True)
    except (ValueError, TypeError):
        raise err("home_prefix", "is not an IPv6 prefix: %r" % (d["home_prefix"],),
                   "write it like \"2001:db8:aa::/64\" with the host bits zero") from None
    if c.home_prefix.prefixlen % 8 or not 8 <= c.home_prefix.prefixlen <= 120:
        raise err("home_prefix", "must have a length that is a multiple of 8 (8..120)", "use a /64")
    c.prefix_bytes = c.home_prefix.network_address.packed[: c.home_prefix.prefixlen // 8]
    addr = _ip6(d["address"], "address", source)
    if addr not in c.home_prefix:
        raise err("address", "%s is not inside home_prefix %s" % (addr, c.home_prefix),
                   "the HA's address must be on the home link")
    c.address = addr.packed
    c.address_text = str(addr)
    if d["ipv4"] is not None:
        try:
            c.ipv4 = str(ipaddress.IPv4Address(d["ipv4"]))
        except (ValueError, TypeError):
            raise err("ipv4", "is not an IPv4 address: %r" % (d["ipv4"],),
                      "write it like \"198.18.1.2\" or leave it out") from None
    c.port = _int(d, "port", 1, 65535, source)
    for field in ("tun", "home_link"):
        v = d[field]
        if v is None and field == "home_link":
            continue
        if not isinstance(v, str) or not 1 <= len(v) <= 15 or "/" in v or " " in v:
            raise err(field, "must be an interface name of 1-15 characters, got %r" % (v,), "e.g. \"r6tun\" / \"home\"")
        setattr(c, field, v)
    c.max_lifetime = _int(d, "max_lifetime", 4, 0xFFFF * 4, source)
    c.replay_window = _int(d, "replay_window", 1, 3600, source)
    c.nat_refresh = _int(d, "nat_refresh", 1, 0xFFFFFFFE, source)
    c.dad_ms = _int(d, "dad_ms", 0, 10000, source)
    if not isinstance(d["dad_skip_pinned"], bool):
        raise err("dad_skip_pinned", "must be true or false", "true only if the home link hands no pinned HoA to "
                  "anything else (docs/PROTOCOL-NOTES.md §11.14)")
    c.dad_skip_pinned = d["dad_skip_pinned"]
    c.max_bindings = _int(d, "max_bindings", 1, 10_000_000, source)
    c.max_bindings_per_sa = _int(d, "max_bindings_per_sa", 1, 1 << 20, source)
    if not isinstance(d["require_timestamps"], bool):
        raise err("require_timestamps", "must be true or false", "RFC 4285 replay protection policy")
    c.require_timestamps = d["require_timestamps"]
    tr = d["transports"]
    if not isinstance(tr, list) or not tr or any(t not in TRANSPORTS for t in tr):
        raise err("transports", "must be a non-empty list of %s, got %r" % ("/".join(TRANSPORTS), tr),
                  "e.g. [\"udp4\", \"udp6\"]")
    c.transports = list(tr)
    if "udp4" in c.transports and c.ipv4 is None:
        if "transports" in raw:
            raise err("ipv4", "is missing, and 'transports' lists udp4", "add the HA's IPv4 address or drop udp4")
        c.transports.remove("udp4")      # the default list: no IPv4 address, no udp4
    from .dhaad import parse_home_agents
    c.home_agents = parse_home_agents(d["home_agents"], c, err)
    if raw.get("renumber") is not None:       # serving a second home prefix (ha/prefixes.py)
        from .prefixes import parse_renumber
        c.renumber = parse_renumber(raw["renumber"], c, source)
    if "aaa" in raw:      # SAs from a RADIUS server (CONTRACTS.md §14); a keys file is optional then
        from ..aaa.config import parse_aaa
        c.aaa = parse_aaa(raw["aaa"], base_dir, source)
    if "keys_file" in raw or c.aaa is None:     # with AAA a keys file is optional
        if not isinstance(d["keys_file"], str) or not d["keys_file"] or any(ch < " " for ch in d["keys_file"]):
            raise err("keys_file", "must be a path, got %r" % (d["keys_file"],),
                      "the keys file holds the MN-HA SAs (CONTRACTS.md §6)")
        c.keys_file = os.path.join(base_dir, d["keys_file"])
        c.sas = load_keys(c.keys_file, c.home_prefix, named_by=source, ipsec_out=c.ipsec_peers)
    from .ipsecconf import check_peers, parse_security
    c.security = parse_security(raw.get("security"), source)
    check_peers(c.ipsec_peers, c.sas, c.security, source)
    # with 'aaa' and "ipsec": IKE_AUTHs of NAIs without a keys-file PSK ask the server (ha/ipsecaaa.py)
    from .continuity import parse_fields
    parse_fields(c, raw, source, base_dir)
    from .ipv4home import parse_config as parse_ipv4_homes
    c.ipv4_homes = parse_ipv4_homes(d, c.keys_file, c.sas, source, base_dir=base_dir)
    return c


def load_keys(path, home_prefix=None, named_by="the HA config", ipsec_out=None):
    """Read the keys file; refuse it if group or other may read it (it holds the MN-HA keys).
    named_by: the config that names it, for the hint ("HA config /path/ha.json")."""
    hint = "field 'keys_file' of %s names it (relative to that file's folder)" % named_by
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UserError("keys file %s cannot be opened: %s" % (path, exc.strerror), hint=hint) from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError("keys file %s is a folder" % path, hint=hint)
    if not stat.S_ISREG(st.st_mode):
        raise UserError("keys file %s is not a regular file (a FIFO, socket or device): not read" % path, hint=hint)
    refuse_shared_keys_file(path, st)
    try:
        with _open_regular(path) as f:
            raw = json.load(f)
    except OSError as exc:
        raise UserError("keys file %s cannot be read: %s" % (path, exc.strerror or exc),
                        hint="run as the user that owns it") from None
    except ValueError as exc:
        raise UserError("keys file %s is not valid JSON: %s" % (path, _one_line(exc)),
                        hint="see CONTRACTS.md §6") from None
    return parse_keys(raw, home_prefix, source="keys file %s" % path, ipsec_out=ipsec_out)


def _open_regular(path):
    """Open without blocking (a FIFO swapped in after the stat must not stall the HA's only
    thread on open()) and read only if what was opened is a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "r")
    except BaseException:
        os.close(fd)
        raise


def refuse_shared_keys_file(path, st):
    """The one rule for every reader of a keys file (the HA, `roam6 provision`): it holds MN-HA
    keys, so a file group or others may touch (st: its os.stat) is refused, with the fix."""
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UserError("keys file %s is readable by group or others (mode %o)" % (path, stat.S_IMODE(st.st_mode)),
                        hint="chmod 600 %s" % path)


def parse_keys(raw, home_prefix=None, source="keys file", ipsec_out=None):
    """The RFC 4285 SAs of a keys file; its IPsec entries (ha/ipsecconf.py) are checked too and
    appended to `ipsec_out` when given."""
    unknown = sorted(f for f in raw if f not in KEYS_FIELDS) if isinstance(raw, dict) else []
    if unknown:   # beside "sas" nothing: a typo ("SAs") must not pass unnoticed either
        raise UserError("%s: field %r is not a known field (known: %s)" % (source, unknown[0], ", ".join(KEYS_FIELDS)))
    if not isinstance(raw, dict) or not isinstance(raw.get("sas"), list):
        raise UserError("%s: field 'sas' must be a list of SAs" % source,
                        hint="{\"sas\": [{\"nai\": ..., \"spi\": ..., \"key\": ..., \"hoa\": ...}]}")
    sas, spis = [], set()
    for i, e in enumerate(raw["sas"]):
        where = "%s: sas[%d]" % (source, i)
        if not isinstance(e, dict):
            raise UserError("%s must be an object" % where, hint="see CONTRACTS.md §6")
        unknown = sorted(f for f in e if f not in SA_FIELDS)
        if unknown:   # a typo ("kye") must not pass unnoticed: refused, on one line
            name = e.get("nai")
            raise UserError("%s%s: field %r is not a known field (known: %s)"
                            % (where, " (%s)" % name if isinstance(name, str) and name else "",
                               unknown[0], ", ".join(SA_FIELDS)))
        from .ipsecconf import entry_security, parse_ipsec_entry
        if entry_security(e, where) == "ipsec":
            peer = parse_ipsec_entry(e, where, home_prefix, _ip6)
            if ipsec_out is not None:
                ipsec_out.append(peer)
            continue
        for field in ("nai", "spi", "key"):
            if field not in e:
                raise UserError("%s: field %r is missing" % (where, field),
                                hint="each SA needs nai, spi, key (and hoa)")
        nai = e["nai"]
        if not isinstance(nai, str) or not nai or len(nai.encode()) > 250:
            raise UserError("%s: field 'nai' must be a non-empty NAI like \"board1@example.test\"" % where,
                            hint="fix 'nai'")
        spi = _int(e, "spi", 256, 0xFFFFFFFF, where)   # RFC 4285: SPIs 0-255 are reserved
        if spi in spis:
            raise UserError("%s: field 'spi' %d is used twice" % (where, spi), hint="every MN needs its own SPI")
        spis.add(spi)
        try:
            key = bytes.fromhex(e["key"])
        except (ValueError, TypeError):
            key = b""
        if len(key) != 16:
            raise UserError("%s: field 'key' must be 32 hex digits (16 bytes)" % where,
                            hint="e.g. python3 -c 'import secrets; print(secrets.token_hex(16))'")
        hoa = None
        if e.get("hoa") is not None:
            a = _ip6(e["hoa"], "hoa", where)
            if home_prefix is not None and a not in home_prefix:
                raise UserError("%s: field 'hoa' %s is outside the home prefix %s" % (where, a, home_prefix),
                                hint="fix 'hoa' or 'home_prefix'")
            hoa = a.packed
        sa = SAConfig(nai.encode(), spi, key, hoa)
        if e.get("ipv4_hoa") is not None:
            try:
                sa.ipv4_hoa = ipaddress.IPv4Address(e["ipv4_hoa"]).packed
            except (ValueError, TypeError):
                raise UserError("%s: field 'ipv4_hoa' is not an IPv4 address: %r" % (where, e["ipv4_hoa"]),
                                hint="write it like \"198.18.50.10\" (inside ha.json's ipv4_home_prefix)") from None
        sas.append(sa)
    return sas
