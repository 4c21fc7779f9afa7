"""`roam6 ha --config FILE`: run the home agent until SIGTERM/SIGINT (then every binding, route,
proxy entry and the TUN device are removed); SIGHUP reloads the keys file. One JSON event per
line on stdout."""
from .errors import UserError


def register(sub):
    p = sub.add_parser("ha", help="run the home agent (RFC 6275/4285/5555, udp4/udp6/ip6)",
                       description="Run the roam6 home agent until SIGTERM/SIGINT; SIGHUP reloads the keys file. "
                                   "Config format: docs/CONTRACTS.md §6.")
    p.add_argument("what", nargs="?", default="run", choices=("run", "status", "switch"),
                   help="run (default): the home agent; status: the running HA's binding cache (root; run it in "
                        "the HA's network namespace); switch: move devices to other HAs (RFC 5142) through the "
                        "HA running in this namespace")
    p.add_argument("--nai", metavar="NAI", help="switch: the device to move")
    p.add_argument("--all", action="store_true", help="switch: every device bound here")
    p.add_argument("--to", metavar="ADDR[,ADDR]", help="switch: the HA(s) to use, IPv6, preferred first")
    p.add_argument("--deadline", type=int, default=120, metavar="S",
                   help="switch: stop retransmitting after S seconds (default 120)")
    p.add_argument("--config", metavar="FILE",
                   help="the HA's JSON config, e.g. ha.json (start from examples/ha.json)")
    p.add_argument("--check", nargs="?", const="", metavar="FILE",
                   help="only check FILE (or --config's) and its keys file: print OK or each error, exit 0 or 1, "
                        "start nothing (like kea-dhcp6 -t)")
    p.add_argument("--tun", default=None, metavar="NAME", help="status: the HA whose TUN is NAME (default: "
                   "the config's, else r6tun)")
    p.add_argument("--json", action="store_true", help="status: JSON instead of a table")
    g = p.add_argument_group("hot standby (ha.json 'replica')")
    g.add_argument("--keepalived-config", action="store_true",
                   help="print the keepalived.conf (VRRPv3) for this HA of a hot-standby pair and exit")
    g.add_argument("--priority", type=int, default=100, help="VRRP priority of this HA (default 100; the other 90)")
    g.add_argument("--ipv4-dev", metavar="IFNAME", help="interface of the shared IPv4 address (udp4)")
    g.add_argument("--ipv4-plen", type=int, default=24, help="prefix length of the shared IPv4 address (default 24)")
    g.add_argument("--vrid", type=int, default=51, help="VRRP virtual router id (default 51)")
    g.add_argument("--advert-ms", type=int, default=10, help="VRRP advert interval in ms (default 10)")
    p.set_defaults(func=run, ha_parser=p)


def run(args):
    if args.what == "status":
        import json

        from .ha.control import query, table
        tun = args.tun
        if tun is None:
            tun = "r6tun"
            if args.config:
                from .ha.config import load_config
                tun = load_config(args.config).tun
        doc = query(tun)
        print(json.dumps(doc, indent=1, sort_keys=True) if args.json else table(doc))
        return 0
    if args.what == "switch":
        from .ha.switchcli import run_switch
        return run_switch(args)
    if args.check is not None:
        from .ha_check import check
        if not (args.check or args.config):
            raise UserError("--check needs the config: roam6 ha --check FILE", hint="roam6 ha --help")
        return check(args.check or args.config)
    if not args.config:    # required unless `status` or `--check` (said as argparse says a missing option)
        args.ha_parser.error("the following arguments are required: --config")
    from .ha.config import load_config
    from .ha.driver import HomeAgent

    cfg = load_config(args.config)
    if getattr(args, "keepalived_config", False):
        from .ha.vrrp import keepalived_binary, keepalived_config
        print(keepalived_config(cfg, args.priority, args.ipv4_dev, args.ipv4_plen, args.vrid, args.advert_ms), end="")
        keepalived_binary()             # the config is printed; a missing keepalived is still said
        return 0
    ha = HomeAgent(cfg)
    try:
        ha.open()
        ha.run()
    except KeyboardInterrupt:
        pass
    finally:
        ha.close()
    return 0


__all__ = ["register", "run", "UserError"]
