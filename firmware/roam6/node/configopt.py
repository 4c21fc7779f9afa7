"""The checks of config.json's optional fields a base MN (IPv6 HoA, RFC 4285, static or
link-learnt CoA) does not use: "ha" as a list, "probe", "ro" (CONTRACTS.md §5). ("wifi" stays in
config.py: the MCU boards' configs have it, and loading this module would cost them its qstrs.)

roam6.node.config loads this module only when the config has one of them: every name a loaded
module holds stays on the heap for good as a qstr (docs/ARCHITECTURE.md "Heap"), and these are
names the base registration never needs. Errors are the caller's ConfigError, as config.py words
them."""
from roam6.wire.addr import ip4_from_text, ip6_from_text


def parse_config(c, raw, ConfigError, ha_list):
    """ha_list: "ha" is a list: c.has = [(ha, ha_ipv4 or None)]; returns raw with the first pair as
    "ha"/"ha_ipv4" for the checks that follow. Else: check "probe" and "ro" (c.probe, c.ro)."""
    if ha_list:
        return _ha_list(c, raw, ConfigError)
    if "probe" in raw:
        p = raw["probe"]
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
    if "ro" in raw:
        from roam6.core.ro_policy import policy_from_config    # route optimisation (CONTRACTS §12)
        try:
            policy_from_config(raw["ro"])
        except ValueError as e:
            raise ConfigError("ro", "is wrong: %s" % e)
        c.ro = raw["ro"]
    return raw


def _ha_list(c, raw, ConfigError):
    v, v4 = raw["ha"], raw.get("ha_ipv4")
    if not v or (v4 is not None and (not isinstance(v4, list) or len(v4) != len(v))):
        raise ConfigError("ha", "as a list needs one or more addresses, and ha_ipv4 then a list as long (or none)")
    has = []
    for i in range(len(v)):
        try:
            has.append((ip6_from_text(v[i]), ip4_from_text(v4[i]) if v4 else None))
        except (ValueError, IndexError, TypeError, AttributeError):
            raise ConfigError("ha", "entry %d is not an address pair: %r / %r" % (i, v[i], v4[i] if v4 else None))
    c.has = has
    raw = dict(raw)
    raw["ha"] = v[0]
    if v4:
        raw["ha_ipv4"] = v4[0]
    try:
        from . import halist      # noqa: F401 (the node will start the watch for the next HA)
    except ImportError:
        raise ConfigError("ha", "as a list is not in this board's firmware (board.json excludes halist)")
    return raw
