"""The MN program every board's main.py runs: config -> node -> link -> asyncio forever.

usage: main.py CONFIG.json [--coa ADDR] [--transport udp4|udp6|ip6] [--iface wlan0] [--home]
--coa (or "coa" in the config) gives a fixed care-of address instead of a link adapter; without
it the board's `link` module (boards/<name>/link.py) and roam6.core.movement choose.

Written for a small heap: this module is dropped after start-up (`trim`), but every name it
defines (functions, globals, arguments) and every string constant of up to 10 characters stays in
the heap for good as a qstr. So the steps start-up takes once are written out in `setup`, not
split into helpers, and short strings used only here sit in constant tuples (ordinary objects).
A mistake in the arguments is a ValueError, as is the config checker's ConfigError.
"""
import gc
import json
import sys

from roam6.compat import ticks_ms
from roam6.wire.addr import ip4_from_text, ip6_from_text

from . import forget


def parse_args(argv):
    """The command line -> dict of the options; ValueError says what is wrong."""
    opts = {"config": None, "coa": None, "transport": None, "iface": "wlan0", "home": False}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--coa", "--transport", "--iface"):
            if i + 1 >= len(argv):
                raise ValueError("%s needs a value" % a)
            opts[a[2:]] = argv[i + 1]
            i += 2
            continue
        if a in ("--home",):
            opts["home"] = True
        elif a.startswith("-"):
            raise ValueError("unknown option %s" % a)
        elif opts["config"] is None:
            opts["config"] = a
        else:
            raise ValueError("one config file only, got %s too" % a)
        i += 1
    if opts["config"] is None:
        raise ValueError("usage: main.py CONFIG.json [--coa ADDR] [--transport udp4|udp6|ip6] [--iface IF] [--home]")
    return opts


def static_coa(text, transport, cfg):
    """(coa bytes, transport) for a fixed care-of address; ValueError says what is wrong."""
    try:
        if ":" in text:
            coa = ip6_from_text(text)
            t = transport or ("udp6" if "udp6" in cfg.transports else ("ip6" if "ip6" in cfg.transports else None))
        else:
            coa = ip4_from_text(text)
            t = transport or "udp4"
    except (ValueError, IndexError):
        raise ValueError("care-of address %r is not an IPv4 or IPv6 address" % text)
    if t is None or t not in cfg.transports:
        raise ValueError("transport for care-of address %s is not allowed by config 'transports' %s"
                         % (text, cfg.transports))
    if (t == "udp4") != (len(coa) == 4):
        raise ValueError("transport %s does not go with care-of address %s (udp4: IPv4; udp6, ip6: IPv6)"
                         % (t, text))
    return coa, t


def setup(argv=None):
    """Check the arguments and config.json -> (exit status, config or None, plan). plan says how
    the node learns its care-of address: ("moved", coa, transport), ("home",) or ("link", Link,
    Movement class, iface[, link events seen while bootstrapping]). A mistake is logged and
    printed: status 2 for the user's (arguments, config), 1 for the system's (no such interface).
    The node itself is built after `trim()`, so this module's code is gone before the node's
    loads (a small heap's peak)."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        opts = parse_args(argv)
        # the config checker: its code is needed once, and is freed before the rest loads
        from . import config
        try:
            cfg = config.load_config(opts["config"])
        finally:
            del config
            forget("roam6.node.config")
            if "roam6.node.configopt" in sys.modules:    # the optional fields' checks, if loaded
                forget("roam6.node.configopt")
            gc.collect()
        # the hot paths: roam6.accel's picks are bound in roam6.crypto and roam6.wire.checksum
        # (which keep no reference to it), and the chooser's own code is freed before the rest
        # loads (a small heap's peak)
        import roam6.crypto
        import roam6.wire.checksum  # noqa: F401 (its accel picks, bound at import)
        forget("roam6.accel")
        gc.collect()

        cfg.iface = opts["iface"]
        coa_text = opts["coa"] or cfg.coa
        # an HA, home prefix or (udp4 only) HA IPv4 address the config leaves to "bootstrap"
        boot = cfg.ha is None or cfg.home_prefix is None or (cfg.transports == ["udp4"] and cfg.ha_ipv4 is None)
        reason = None
        if opts["home"]:
            plan = ("home",)
        elif coa_text:
            coa, t = static_coa(coa_text, opts["transport"], cfg)
            plan = ("moved", coa, t)
        else:
            # the link adapter, its addressing and the bootstrap (linkstart.py): a node with a
            # static care-of address never loads their names
            from . import linkstart
            plan, reason = linkstart.plan(cfg, boot)
            forget("roam6.node.linkstart")
            forget("roam6.node.boot")
        if boot and plan[0] != "link":
            raise ValueError("the config says \"bootstrap\" for the HA: that needs the link "
                             "adapter (no --coa)")
        m = cfg.raw.get("max_bindack_timeout")    # a bench's shorter back-off (CONTRACTS.md §5):
        if m:                                     # on the class, so a board without it pays nothing
            from roam6.core.bul import HomeBinding
            HomeBinding.max_bindack_ms = m * 1000
        cfg.raw = None            # the dict as read: only the bootstrap (above) reads it
        if not reason:
            return 0, cfg, plan
        status = 1                # the bootstrap found no HA (or no address to look from)
    except ValueError as e:       # a mistake in the arguments, or the config's ConfigError
        status, reason = 2, str(e)
    except OSError as e:
        status, reason = 1, "cannot start: %s" % e
    # one format string for both lines: its short parts would each be a qstr for good
    print('{"t_ms": %d, "ev": "error", "fatal": true, "reason": %s}\nroam6: %s'
          % (ticks_ms(), json.dumps(reason), reason))
    return status, None, None


def trim():
    """After start-up: drop this module and the address parser (the node formats addresses with
    the socket module), so a 64 KB heap keeps only what runs."""
    forget("roam6.node.app")
    forget("roam6.wire.addr")
    forget("roam6.wire.addrtext")   # (a port without inet_ntop keeps its functions in the transport)
    gc.collect()


def main(argv=None, log=None):
    """setup, run forever. Returns an exit status (2: a mistake in config or arguments).
    (boards' main.py call setup/trim and start the node themselves, so this module is freed.)"""
    status, cfg, plan = setup(argv)
    if cfg is None:
        return status
    from .driver import MobileNode
    return MobileNode(cfg, log).start(plan)
