"""Per-correspondent route optimisation policy: always / never / auto (RFC 4882 location privacy).

Config (config.json, optional): `"ro": {"default": "auto", "cns": {"2001:db8:f3::2": "never"}}`.
- never:  no return routability with that CN, so it never learns a care-of address (privacy).
- always: route optimisation with that CN as soon as the MN talks to it.
- auto:   only for CNs the device talks to often (AUTO_PACKETS packets within AUTO_WINDOW_MS),
          and a binding is not refreshed for a CN that went quiet (AUTO_IDLE_MS).
"""
from roam6.compat import const
from roam6.wire.addr import ip6_from_text

MODES = ("always", "never", "auto")
AUTO_PACKETS = const(5)
AUTO_WINDOW_MS = const(10000)
AUTO_IDLE_MS = const(120000)


class RoPolicy:
    def __init__(self, default="auto", cns=None):
        self.default = default
        self.cns = cns or {}  # raw 16-byte address -> mode

    def mode(self, cn):
        return self.cns.get(bytes(cn), self.default)


def policy_from_config(ro):
    """RoPolicy from the config's "ro" value (None -> auto for every CN); ValueError names the
    field."""
    if ro is None:
        return RoPolicy()
    if not isinstance(ro, dict):
        raise ValueError('config "ro" must be an object like {"default": "auto", "cns": {}}')
    for k in ro:
        if k not in ("default", "cns"):
            raise ValueError('config "ro": unknown key %r (known: default, cns)' % k)
    default = ro.get("default", "auto")
    if default not in MODES:
        raise ValueError('config "ro.default": %r is not one of always, never, auto' % (default,))
    cns = ro.get("cns", {})
    if not isinstance(cns, dict):
        raise ValueError('config "ro.cns" must map CN addresses to always/never/auto')
    table = {}
    for text, mode in cns.items():
        try:
            a = ip6_from_text(text)
        except ValueError:
            raise ValueError('config "ro.cns": %r is not an IPv6 address' % (text,))
        if mode not in MODES:
            raise ValueError('config "ro.cns.%s": %r is not one of always, never, auto'
                             % (text, mode))
        table[a] = mode
    return RoPolicy(default, table)
