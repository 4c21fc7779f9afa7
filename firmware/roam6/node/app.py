"""The MN program every board's main.py runs: config -> node -> link -> asyncio forever.

usage: main.py CONFIG.json [--coa ADDR] [--transport udp4|udp6] [--iface wlan0] [--home]
--coa (or "coa" in the config) gives a fixed care-of address instead of a link adapter; without
it the board's `link` module (boards/<name>/link.py) and roam6.core.movement choose.
"""
import asyncio
import sys

from roam6.wire.addr import ip4_from_text, ip6_from_text

from .config import ConfigError, load_config
from .driver import EventLog, MobileNode


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
        raise UsageError("usage: main.py CONFIG.json [--coa ADDR] [--transport udp4|udp6] [--iface IF]")
    return opts


def static_coa(text, transport, cfg):
    """(coa bytes, transport) for a fixed care-of address."""
    try:
        if ":" in text:
            coa = ip6_from_text(text)
            t = transport or ("udp6" if "udp6" in cfg.transports else None)
        else:
            coa = ip4_from_text(text)
            t = transport or "udp4"
    except (ValueError, IndexError):
        raise UsageError("care-of address %r is not an IPv4 or IPv6 address" % text)
    if t is None or t not in cfg.transports:
        raise UsageError("transport for care-of address %s is not allowed by config 'transports' %s"
                         % (text, cfg.transports))
    return coa, t


async def link_task(node, link, mv):
    def apply(d):
        if d is None:
            return
        kind, addr, transport = d
        if kind == "moved":
            node.moved(addr, transport)
        elif kind == "home":
            node.at_home(addr)
        else:
            node.detached()

    for ev in link.start():
        apply(mv.feed(ev, node.now()))
    while True:
        for ev in await link.next_events():
            apply(mv.feed(ev, node.now()))


async def amain(opts, cfg, log):
    node = MobileNode(cfg, log)
    tasks = [asyncio.create_task(node.timer_loop())]
    if cfg.probe:
        from . import probe
        probe.start(node, cfg.probe, asyncio.create_task)
    coa_text = opts["coa"] or cfg.coa
    if opts["home"]:
        node.at_home()
    elif coa_text:
        coa, t = static_coa(coa_text, opts["transport"], cfg)
        node.moved(coa, t)
    else:
        try:
            from link import Link
        except ImportError:
            raise UsageError("no link adapter (link.py) on the path: give --coa ADDR")
        from roam6.core.movement import Movement
        transports = [t for t in cfg.transports if t in node.transports]
        mv = Movement(transports, cfg.home_prefix)
        tasks.append(asyncio.create_task(link_task(node, Link(opts["iface"]), mv)))
    node.heap()
    while True:
        await asyncio.sleep(3600)


def main(argv=None, log=None):
    """Returns an exit status: 2 for a config or usage mistake (message on stderr-ish stdout)."""
    if argv is None:
        argv = sys.argv[1:]
    log = log or EventLog()
    try:
        opts = parse_args(argv)
        cfg = load_config(opts["config"])
        if opts["coa"] is not None:
            static_coa(opts["coa"], opts["transport"], cfg)      # check it before starting
        asyncio.run(amain(opts, cfg, log))
    except (ConfigError, UsageError) as e:
        log("error", reason=str(e), fatal=True)
        print("roam6: %s" % e)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
