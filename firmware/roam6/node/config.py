"""The device's config.json (CONTRACTS.md §5): read, check every field, turn addresses into bytes.

A wrong or missing field raises ConfigError naming the field and what to write instead; the
driver prints it and stops. Nothing else escapes `load_config`/`parse_config` for bad input.
"""
import json

from roam6.wire.addr import ip4_from_text, ip6_from_text

from .settings import Config

TRANSPORTS = ("udp4", "udp6", "ip6")
BOOTSTRAP = ("dhcpv6", "dns", "static")
KNOWN = ("nai", "spi", "key", "hoa", "home_prefix", "ha", "ha_ipv4", "domain", "bootstrap",
         "transports", "lifetime", "timestamps", "state_file", "wifi", "probe", "coa", "ro")
MAX_LIFETIME_S = 0xFFFF * 4


class ConfigError(ValueError):
    def __init__(self, field, message):
        super().__init__("config: field %r %s" % (field, message))
        self.field = field


def _need(d, field):
    if field not in d:
        raise ConfigError(field, "is missing")
    return d[field]


def _str(d, field, what):
    v = d[field]
    if not isinstance(v, str) or not v:
        raise ConfigError(field, "must be %s (a non-empty string), got %r" % (what, v))
    return v


def _ip6(d, field, allow_bootstrap):
    v = _need(d, field)
    if allow_bootstrap and v == "bootstrap":
        return None
    if not isinstance(v, str):
        raise ConfigError(field, "must be an IPv6 address as text, got %r" % (v,))
    try:
        return ip6_from_text(v)
    except (ValueError, IndexError):
        raise ConfigError(field, "is not an IPv6 address: %r (write it like \"2001:db8:aa::100\")" % v)


def _int(d, field, lo, hi):
    v = d[field]
    if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > hi:
        raise ConfigError(field, "must be an integer from %d to %d, got %r" % (lo, hi, v))
    return v


def _choices(d, field, allowed):
    v = d[field]
    if not isinstance(v, list) or not v:
        raise ConfigError(field, "must be a non-empty list drawn from %s" % (", ".join(allowed),))
    for x in v:
        if x not in allowed:
            raise ConfigError(field, "has %r; allowed: %s" % (x, ", ".join(allowed)))
    return list(v)


def _in_prefix(addr, prefix, plen):
    full = plen // 8
    if addr[:full] != prefix[:full]:
        return False
    rest = plen % 8
    if rest:
        mask = (0xFF << (8 - rest)) & 0xFF
        return (addr[full] & mask) == (prefix[full] & mask)
    return True


def parse_config(d):
    """Check a config dict; returns Config or raises ConfigError."""
    if not isinstance(d, dict):
        raise ConfigError("(top level)", "must be a JSON object")
    for k in d:
        if k not in KNOWN and not k.startswith("_"):
            raise ConfigError(k, "is not a config field (known: %s)" % ", ".join(KNOWN))
    c = Config(d)
    _need(d, "nai")
    nai = _str(d, "nai", "the MN identifier user@realm")
    if "@" not in nai or len(nai) > 255:
        raise ConfigError("nai", "must look like user@realm (RFC 4283), up to 255 bytes, got %r" % nai)
    c.nai = nai.encode()
    _need(d, "spi")
    c.spi = _int(d, "spi", 256, 0xFFFFFFFF)
    key = _need(d, "key")
    if not isinstance(key, str) or len(key) != 32:
        raise ConfigError("key", "must be 32 hex digits (the 16-byte RFC 4285 MN-HA key)")
    try:
        c.key = bytes.fromhex(key)
    except ValueError:
        raise ConfigError("key", "must be 32 hex digits (0-9, a-f)")
    c.hoa = _ip6(d, "hoa", True)
    hp = _need(d, "home_prefix")
    if hp != "bootstrap":
        if not isinstance(hp, str) or hp.count("/") != 1:
            raise ConfigError("home_prefix", "must look like \"2001:db8:aa::/64\", got %r" % (hp,))
        a, n = hp.split("/")
        if not n.isdigit() or not 1 <= int(n) <= 128:
            raise ConfigError("home_prefix", "has a bad prefix length %r (1-128)" % n)
        try:
            c.home_prefix = (ip6_from_text(a), int(n))
        except (ValueError, IndexError):
            raise ConfigError("home_prefix", "is not an IPv6 prefix: %r" % hp)
    if c.hoa is not None and c.home_prefix is not None and not _in_prefix(c.hoa, *c.home_prefix):
        raise ConfigError("hoa", "is not inside home_prefix %s" % hp)
    c.ha = _ip6(d, "ha", True)
    if "ha_ipv4" in d and d["ha_ipv4"] is not None:
        v = d["ha_ipv4"]
        try:
            c.ha_ipv4 = ip4_from_text(v) if isinstance(v, str) else None
        except ValueError:
            c.ha_ipv4 = None
        if c.ha_ipv4 is None:
            raise ConfigError("ha_ipv4", "is not an IPv4 address: %r (write it like \"198.18.1.2\")" % (v,))
    if "domain" in d:
        c.domain = _str(d, "domain", "a DNS domain")
    if "bootstrap" in d:
        c.bootstrap = _choices(d, "bootstrap", BOOTSTRAP)
    if "transports" in d:
        c.transports = _choices(d, "transports", TRANSPORTS)
    if "lifetime" in d:
        c.lifetime = _int(d, "lifetime", 4, MAX_LIFETIME_S)
    if "timestamps" in d:
        if not isinstance(d["timestamps"], bool):
            raise ConfigError("timestamps", "must be true or false")
        c.timestamps = d["timestamps"]
    if "state_file" in d:
        c.state_file = _str(d, "state_file", "a file path")
    if "wifi" in d:
        w = d["wifi"]
        if not isinstance(w, list):
            raise ConfigError("wifi", "must be a list of {\"ssid\": ..., \"psk\": ...}")
        for i in range(len(w)):
            if not isinstance(w[i], dict) or not isinstance(w[i].get("ssid"), str):
                raise ConfigError("wifi", "entry %d needs an \"ssid\" string" % i)
    if "probe" in d:
        p = d["probe"]
        if not isinstance(p, dict) or not isinstance(p.get("port"), int):
            raise ConfigError("probe", "must be {\"port\": N, ...} (CONTRACTS.md §8.2)")
        s = p.get("sensor")
        if s is not None:
            if not isinstance(s, dict) or not isinstance(s.get("port"), int):
                raise ConfigError("probe", "sensor needs \"dst\", \"port\" and \"interval_ms\"")
            try:
                ip6_from_text(s.get("dst"))
            except (ValueError, IndexError, TypeError, AttributeError):
                raise ConfigError("probe", "sensor dst is not an IPv6 address: %r" % (s.get("dst"),))
        c.probe = p
    if "coa" in d:
        c.coa = _str(d, "coa", "a care-of address")
    if "ro" in d:
        from roam6.core.ro_policy import policy_from_config    # route optimisation (CONTRACTS §12)
        try:
            policy_from_config(d["ro"])
        except ValueError as e:
            raise ConfigError("ro", "is wrong: %s" % e)
        c.ro = d["ro"]
    # what each transport needs to reach the HA without bootstrapping
    static_only = c.bootstrap == ["static"]
    if static_only and c.ha is None:
        raise ConfigError("ha", "is \"bootstrap\" but bootstrap is only [\"static\"]: give the HA address")
    if static_only and c.transports == ["udp4"] and c.ha_ipv4 is None:
        raise ConfigError("ha_ipv4", "is needed for the udp4 transport (the HA's IPv4 address)")
    if static_only and c.hoa is None:
        raise ConfigError("hoa", "is \"bootstrap\" but bootstrap is only [\"static\"]: give the home address")
    return c


def load_config(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError("(file)", "cannot be read from %s: %s" % (path, e))
    try:
        d = json.loads(text)
    except ValueError as e:
        raise ConfigError("(file)", "%s is not valid JSON: %s" % (path, e))
    return parse_config(d)
