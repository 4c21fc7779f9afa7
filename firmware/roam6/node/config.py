"""The device's config.json (CONTRACTS.md §5): read, check every field, turn addresses into bytes.

A wrong or missing field raises ConfigError naming the field and what to write instead; the
driver prints it and stops. Nothing else escapes `load_config`/`parse_config` for bad input.

Written for a small heap: the MN drops this module once the config is checked, but every name
it defines (functions, globals, arguments) and every string constant of up to 10 characters
stays in the heap for good as a qstr. So the checks are one function walking tables of
constants (a string inside a constant tuple is an ordinary object, freed with the module), not
a helper per kind of value.
"""
import json

from roam6.wire.addr import ip4_from_text, ip6_from_text


class Config:
    """The checked configuration, filled by parse_config and read by the driver. Addresses are
    raw bytes; None where the value is "bootstrap". Deliberately no methods: the instance
    outlives this module, and a method (its function) would keep the whole checker alive."""


class ConfigError(ValueError):
    def __init__(self, field, message):
        super().__init__("config: field %r %s" % (field, message))
        self.field = field


def parse_config(raw):
    """Check a config dict (config.json as read); returns Config or raises ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError("(top level)", "must be a JSON object")
    known = ("nai", "spi", "key", "hoa", "home_prefix", "ha", "ha_ipv4", "domain", "bootstrap",
             "transports", "lifetime", "timestamps", "state_file", "wifi", "probe", "coa", "ro",
             "max_bindack_timeout", "ipv4_hoa", "addressing", "ha_liveness_s", "security", "psk",
             "ipsec_data", "standby_retry_ms", "prefix_solicit_s", "esp", "ipsec_pfs", "ipv4_tlv_header",
             "more_hoas")
    for k in raw:
        if k not in known and not k.startswith("_"):
            raise ConfigError(k, "is not a config field (known: %s)" % ", ".join(known))
    sec = raw.get(known[21])      # "security" (the names in a constant tuple: no qstr on the heap)
    for i, mod in ((24, "roam6.node.standbyretry"), (25, "roam6.node.mobprefix"), (28, "roam6.node.tlvhdr")):
        if known[i] in raw:       # "standby_retry_ms", "prefix_solicit_s": their modules check them (lazy)
            try:
                m = __import__(mod, None, None, ("parse_config",))
            except ImportError:
                raise ConfigError(known[i], "is not in this board's firmware (board.json excludes it)")
            m.parse_config(raw, ConfigError)
    for field in ("nai", "spi", "key", "hoa", "home_prefix", "ha"):
        if field not in raw and (sec is None or field not in ("spi", "key")):
            raise ConfigError(field, "is missing (a field every config needs)")
    c = Config()
    if isinstance(raw["ha"], list):       # several HAs, the first preferred (CONTRACTS.md §5)
        # the optional fields' checks, node/configopt.py (by a long name: no qstr unless loaded)
        raw = __import__("roam6.node.configopt", None, None, ("parse_config",)).parse_config(c, raw, ConfigError, True)
    c.raw = raw                   # the dict as read (the bootstrap sequencer wants it)
    c.nai = c.key = b""
    c.spi = 0
    c.hoa = c.ha = c.ha_ipv4 = None
    c.home_prefix = None          # (16 bytes, prefix length)
    c.bootstrap = ["static"]
    c.transports = ["udp4", "udp6", "ip6"]
    c.lifetime = 600
    c.timestamps = True
    c.state_file = "roam6.state"
    c.probe = None
    c.coa = None                  # static care-of address (text) until a link adapter
    c.iface = "wlan0"             # the board's interface (from main.py's --iface)
    c.ro = None                   # route optimisation policy (CONTRACTS.md §12)
    # (no "domain": the bootstrap reads it from raw, and at 17 attributes an instance's
    # attribute table is one size smaller on MicroPython)

    # the fields of a plain kind: (field, kind, detail), detail being what a "str" names, an
    # "int"'s (lowest, highest) or the values a "list" may hold; an absent optional field keeps
    # the default above
    for field, kind, detail in (
            ("nai", "str", "the MN identifier user@realm"),
            ("spi", "int", (256, 0xFFFFFFFF)),
            ("domain", "str", "a DNS domain"),
            ("bootstrap", "list", ("dhcpv6", "dns", "static")),
            ("transports", "list", ("udp4", "udp6", "ip6")),
            ("lifetime", "int", (4, 0xFFFF * 4)),     # the BU's lifetime: 16 bits of 4 s units
            ("timestamps", "bool", None),
            ("state_file", "str", "a file path"),
            ("coa", "str", "a care-of address"),
            ("max_bindack_timeout", "int", (1, 32)),
            ("ha_liveness_s", "int", (1, 3600))):   # RFC 6275 MAX_BINDACK_TIMEOUT, s
        if field not in raw:
            continue
        v = raw[field]
        if kind == "str":
            if not isinstance(v, str) or not v:
                raise ConfigError(field, "must be %s (a non-empty string), got %r" % (detail, v))
        elif kind == "int":
            if not isinstance(v, int) or isinstance(v, bool) or v < detail[0] or v > detail[1]:
                raise ConfigError(field, "must be an integer from %d to %d, got %r" % (detail[0], detail[1], v))
        elif kind == "list":
            if not isinstance(v, list) or not v:
                raise ConfigError(field, "must be a non-empty list drawn from %s" % (", ".join(detail),))
            for x in v:
                if x not in detail:
                    raise ConfigError(field, "has %r; allowed: %s" % (x, ", ".join(detail)))
            v = list(v)
        elif not isinstance(v, bool):
            raise ConfigError(field, "must be true or false")
        if field not in ("domain", "max_bindack_timeout"):   # checked only: read from c.raw
            setattr(c, field, v)
    if raw.get("addressing", "stack") not in ("stack", "dhcp", "dna"):
        raise ConfigError("addressing", "must be stack, dhcp or dna (RFC 4436/6059; docs/CONTRACTS.md §5)")
    if "@" not in c.nai or len(c.nai) > 255:
        raise ConfigError("nai", "must look like user@realm (RFC 4283), up to 255 bytes, got %r" % c.nai)
    c.nai = c.nai.encode()

    key = raw.get("key", "00" * 16)       # (with "security": "ipsec" absent and unused)
    if not isinstance(key, str) or len(key) != 32:
        raise ConfigError("key", "must be 32 hex digits (the 16-byte RFC 4285 MN-HA key)")
    try:
        c.key = bytes.fromhex(key)
    except ValueError:
        raise ConfigError("key", "must be 32 hex digits (0-9, a-f)")

    if sec is not None or known[29] in raw:   # ipsecconf.py (by a long name: no qstr in an RFC 4285
        # heap; "more_hoas" without "security": it refuses it by name)
        try:
            m = __import__("roam6.node.ipsecconf", None, None, ("parse_config",))
        except ImportError:
            raise ConfigError("security", "\"ipsec\" is not in this board's firmware (board.json excludes it)")
        m.parse_config(c, raw, ConfigError)
        del m
        from . import forget                # checked once: its code goes (the 32-bit footprint run's
        forget("roam6.node.ipsecconf")      # corruption when it did was its GC's, bench_footprint32.GC_PRELUDE)

    for field in ("hoa", "ha"):           # an IPv6 address, or "bootstrap" (None)
        v = raw[field]
        if v == "bootstrap":
            continue
        if not isinstance(v, str):
            raise ConfigError(field, "must be an IPv6 address as text, got %r" % (v,))
        try:
            setattr(c, field, ip6_from_text(v))
        except (ValueError, IndexError):
            raise ConfigError(field, "is not an IPv6 address: %r (write it like \"2001:db8:aa::100\")" % v)

    hp = raw["home_prefix"]
    if hp != "bootstrap":
        if not isinstance(hp, str) or hp.count("/") != 1:
            raise ConfigError("home_prefix", "must look like \"2001:db8:aa::/64\", got %r" % (hp,))
        a, n = hp.split("/")
        if not n.isdigit() or not 1 <= int(n) <= 128:
            raise ConfigError("home_prefix", "has a bad prefix length %r (1-128)" % n)
        try:
            a, n = c.home_prefix = (ip6_from_text(a), int(n))
        except (ValueError, IndexError):
            raise ConfigError("home_prefix", "is not an IPv6 prefix: %r" % hp)
        if c.hoa is not None:             # the home address inside the home prefix: its first n bits
            full, rest = n // 8, n % 8
            if c.hoa[:full] != a[:full] or (rest and (c.hoa[full] ^ a[full]) >> (8 - rest)):
                raise ConfigError("hoa", "is not inside home_prefix %s" % hp)

    if raw.get("ha_ipv4") is not None:
        v = raw["ha_ipv4"]
        try:
            c.ha_ipv4 = ip4_from_text(v) if isinstance(v, str) else None
        except ValueError:
            c.ha_ipv4 = None
        if c.ha_ipv4 is None:
            raise ConfigError("ha_ipv4", "is not an IPv4 address: %r (write it like \"198.18.1.2\")" % (v,))
    if "ipv4_hoa" in raw:                 # RFC 5555 §3.1.1; absent: no attribute (IPv6-only heap)
        v = raw["ipv4_hoa"]
        try:
            c.ipv4_hoa = ip4_from_text(v) if isinstance(v, str) else None
        except ValueError:
            c.ipv4_hoa = None
        if c.ipv4_hoa is None:
            raise ConfigError("ipv4_hoa", "is not an IPv4 address: %r (write it like \"198.18.50.100\", or "
                                          "\"0.0.0.0\" to ask the HA for one)" % (v,))
    if known[28] in raw:                  # "ipv4_tlv_header" (checked by node/tlvhdr.py above)
        setattr(c, known[28], raw[known[28]])
    if "wifi" in raw:
        w = raw["wifi"]
        if not isinstance(w, list):
            raise ConfigError("wifi", "must be a list of {\"ssid\": ..., \"psk\": ...}")
        for i in range(len(w)):
            if not isinstance(w[i], dict) or not isinstance(w[i].get("ssid"), str):
                raise ConfigError("wifi", "entry %d needs an \"ssid\" string" % i)
    if known[14] in raw or known[16] in raw:      # "probe", "ro"
        __import__("roam6.node.configopt", None, None, ("parse_config",)).parse_config(c, raw, ConfigError, False)

    # what each transport needs to reach the HA without bootstrapping
    if c.bootstrap == ["static"]:
        if c.ha is None:
            raise ConfigError("ha", "is \"bootstrap\" but bootstrap is only [\"static\"]: give the HA address")
        if c.transports == ["udp4"] and c.ha_ipv4 is None:
            raise ConfigError("ha_ipv4", "is needed for the udp4 transport (the HA's IPv4 address)")
        if c.hoa is None:
            raise ConfigError("hoa", "is \"bootstrap\" but bootstrap is only [\"static\"]: give the home address")
    return c


def load_config(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError("(config file)", "cannot be read from %s: %s" % (path, e))
    try:
        d = json.loads(text)
    except ValueError as e:
        raise ConfigError("(config file)", "%s is not valid JSON: %s" % (path, e))
    return parse_config(d)
