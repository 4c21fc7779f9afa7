"""The MN program every board's main.py runs: config -> node -> link -> asyncio forever.

usage: main.py CONFIG.json [--coa ADDR] [--transport udp4|udp6|ip6] [--iface wlan0] [--home]
--coa (or "coa" in the config) gives a fixed care-of address instead of a link adapter; without
it the board's `link` module (boards/<name>/link.py) and roam6.core.movement choose.
"""
import gc
import json
import sys

from roam6.compat import ticks_ms
from roam6.wire.addr import ip4_from_text, ip6_from_text

from . import forget


class UsageError(ValueError):
    pass


def parse_args(argv):
    opts = {"config": None, "coa": None, "transport": None, "iface": "wlan0", "home": False}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--coa", "--transport", "--iface"):
            if i + 1 >= len(argv):
                raise UsageError("%s needs a value" % a)
            opts[a[2:]] = argv[i + 1]
            i += 2
            continue
        if a == "--home":
            opts["home"] = True
        elif a.startswith("-"):
            raise UsageError("unknown option %s" % a)
        elif opts["config"] is None:
            opts["config"] = a
        else:
            raise UsageError("one config file only, got %s too" % a)
        i += 1
    if opts["config"] is None:
        raise UsageError("usage: main.py CONFIG.json [--coa ADDR] [--transport udp4|udp6|ip6] [--iface IF] [--home]")
    return opts


def static_coa(text, transport, cfg):
    """(coa bytes, transport) for a fixed care-of address."""
    try:
        if ":" in text:
            coa = ip6_from_text(text)
            t = transport or ("udp6" if "udp6" in cfg.transports else ("ip6" if "ip6" in cfg.transports else None))
        else:
            coa = ip4_from_text(text)
            t = transport or "udp4"
    except (ValueError, IndexError):
        raise UsageError("care-of address %r is not an IPv4 or IPv6 address" % text)
    if t is None or t not in cfg.transports:
        raise UsageError("transport for care-of address %s is not allowed by config 'transports' %s"
                         % (text, cfg.transports))
    if (t == "udp4") != (len(coa) == 4):
        raise UsageError("transport %s does not go with care-of address %s (udp4: IPv4; udp6, ip6: IPv6)"
                         % (t, text))
    return coa, t


def _fail(code, msg):
    print(json.dumps({"t_ms": ticks_ms(), "ev": "error", "fatal": True, "reason": msg}))
    print("roam6: %s" % msg)
    return code, None, None


def setup(argv=None):
    """Check the arguments and config.json -> (exit status, config or None, plan). plan says how
    the node learns its care-of address: ("moved", coa, transport), ("home",) or ("link", Link,
    Movement class, iface). A mistake is logged and printed: status 2 for the user's
    (arguments, config), 1 for the system's (no such interface). The node itself is built after
    `trim()`, so this module's code is gone before the node's loads (a small heap's peak)."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        opts = parse_args(argv)
        cfg = _load(opts["config"])
        _drop_accel()             # before the rest loads: the peak is what a small heap must hold
        coa_text = opts["coa"] or cfg.coa
        if opts["home"]:
            plan = ("home",)
        elif coa_text:
            coa, t = static_coa(coa_text, opts["transport"], cfg)
            plan = ("moved", coa, t)
        else:
            try:
                from link import Link
            except ImportError:
                raise UsageError("no link adapter (link.py) on the path: give --coa ADDR")
            from roam6.core.movement import Movement
            plan = ("link", _link(Link, opts["iface"]), Movement, opts["iface"])
        cfg.iface = opts["iface"]
        if _needs_bootstrap(cfg):
            if plan[0] != "link":
                raise UsageError("the config says \"bootstrap\" for the HA: that needs the link "
                                 "adapter (no --coa)")
            from . import boot
            seen = []
            err = boot.run(cfg, plan[1], plan[2], seen)
            plan = plan + (seen,)
            forget("roam6.node.boot")
            if err:
                return _fail(1, err)
    except ValueError as e:       # UsageError, or the config's ConfigError (a ValueError)
        return _fail(2, str(e))
    except OSError as e:
        return _fail(1, "cannot start: %s" % e)
    return 0, cfg, plan


def _link(cls, iface):
    """The board's link adapter. The unix one reads netlink into a 4 KB buffer (`buffer_size`):
    the node's packet buffer grows to that size and serves both (each read is handled before the next await), one
    buffer fewer on a small heap. Allocated before the node's code fragments the heap."""
    n = getattr(cls, "buffer_size", 0)       # MCU boards' adapters poll WLAN: no buffer
    if not n:
        return cls(iface)
    from roam6 import node
    buf = bytearray(max(n, len(node.RX)))
    link = cls(iface, buf)
    node.RX = node.TX = buf
    return link


def _needs_bootstrap(cfg):
    return cfg.ha is None or cfg.home_prefix is None or (cfg.transports == ["udp4"] and cfg.ha_ipv4 is None)


def _load(path):
    """Check config.json, then drop the checker: its code is needed once."""
    from . import config
    try:
        return config.load_config(path)
    finally:
        del config
        forget("roam6.node.config")
        gc.collect()


def _drop_accel():
    """Load the hot paths, then drop the chooser: its picks are bound in roam6.crypto and
    roam6.wire.checksum, and its own code is not needed any more."""
    from roam6 import crypto
    from roam6.wire import checksum
    for m in (crypto, checksum):
        if hasattr(m, "_accel"):
            m._accel = None
    forget("roam6.accel")
    gc.collect()


def trim():
    """After start-up: drop this module and the address parser (the node formats addresses with
    the socket module), so a 64 KB heap keeps only what runs."""
    forget("roam6.node.app")
    forget("roam6.wire.addr")
    gc.collect()


def main(argv=None, log=None):
    """setup, run forever. Returns an exit status (2: a mistake in config or arguments).
    (boards' main.py call setup/trim and start the node themselves, so this module is freed.)"""
    rc, cfg, plan = setup(argv)
    if cfg is None:
        return rc
    from .driver import MobileNode
    return MobileNode(cfg, log).start(plan)
