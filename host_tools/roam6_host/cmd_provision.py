"""`roam6 provision`: give a device its identity and key, and register the same SA with the HA.

    roam6 provision --nai board1@example.test --hoa 2001:db8:aa::100 --ha 2001:db8:aa::1 \\
        --ha-ipv4 198.18.1.2 --board esp32 --wifi apA:secret --keys-file ha-keys.json --out config.json
    roam6 provision --nai pico1@example.test --bootstrap --domain example.test --board rp2040 \\
        --wifi-ssid "Cafe: 2nd floor" --wifi-psk secret --keys-file ha-keys.json --out pico1.json
    roam6 provision --list --keys-file ha-keys.json
    roam6 provision --revoke board1@example.test --keys-file ha-keys.json
    roam6 provision --aaa /var/lib/roam6/radius.sqlite --nai board2@example.test --hoa 2001:db8:aa::101 \\
        --ha 2001:db8:aa::1 --out board2.json
"""
import argparse
import sys

from . import boards, provision
from .errors import UserError


WIFI_PORTS = ("esp32", "rp2")     # MicroPython ports whose boards are online through Wi-Fi only


def register(sub):
    p = sub.add_parser("provision", help="write a device's config.json and add its key to the HA's keys file",
                       description="Create a device identity (NAI, fresh SPI and 16-byte key), write its config.json\n"
                                   "(CONTRACTS.md §5) and add the same SA to the home agent's keys file (§6).\n"
                                   "Keys are never printed unless --show-key.",
                       epilog="examples:\n" + __doc__.split("\n\n", 1)[1].rstrip(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys-file", metavar="FILE", help="the HA's keys file (created 0600 if absent)")
    p.add_argument("--aaa", metavar="DBFILE",
                   help="FreeRADIUS's SQLite store instead of a keys file (CONTRACTS.md §14)")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--nai", metavar="NAI", help="the device's identity, user@realm")
    act.add_argument("--list", action="store_true", help="list the devices in the keys file")
    act.add_argument("--revoke", metavar="NAI", help="remove a device's SA")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--hoa", metavar="ADDR", help="the device's home address")
    where.add_argument("--bootstrap", action="store_true", help="let the device learn HoA and HA (DHCPv6, DNS)")
    p.add_argument("--ha", metavar="ADDR", help="the HA's IPv6 address (or 'bootstrap')")
    p.add_argument("--ha-ipv4", metavar="ADDR", help="the HA's IPv4 address, for the udp4 transport")
    p.add_argument("--ipv4-hoa", metavar="ADDR",
                   help="an RFC 5555 IPv4 home address too: this address (the HA's keys file / the AAA server's "
                        "Framed-IP-Address assign it) or 0.0.0.0 (one from the HA's ipv4_pool)")
    p.add_argument("--home-prefix", metavar="PREFIX", help="the home network's prefix (default: the HoA's /64)")
    p.add_argument("--domain", help="DNS domain for RFC 5026 bootstrapping")
    p.add_argument("--board", metavar="BOARD",
                   help="narrow the transports to what this board supports: " + ", ".join(boards.board_names()))
    p.add_argument("--transports", metavar="LIST",
                   help="comma-separated, in order of preference (default udp6,udp4,ip6)")
    p.add_argument("--bootstrap-methods", metavar="LIST", help="comma-separated, from dhcpv6,dns,static")
    p.add_argument("--wifi", action=WifiPair, dest="wifi", default=[], metavar="SSID:PSK",
                   help="a Wi-Fi network, split at the first ':' (the PSK may hold ':'; an open network: SSID:). "
                        "Repeat for more")
    p.add_argument("--wifi-ssid", action=WifiSsid, dest="wifi", metavar="SSID",
                   help="a Wi-Fi network by name, any characters (':' too); "
                        "its --wifi-psk follows (none: open network)")
    p.add_argument("--wifi-psk", action=WifiPsk, dest="wifi", metavar="PSK",
                   help="the passphrase of the --wifi-ssid just before")
    p.add_argument("--lifetime", type=int, default=600, metavar="S",
                   help="binding lifetime to request, seconds (default 600)")
    p.add_argument("--no-timestamps", action="store_true", help="leave out RFC 4285 replay protection")
    p.add_argument("--security", choices=("rfc4285", "ipsec"), default="rfc4285",
                   help="how BUs are protected: the RFC 4285 option (default) or IPsec ESP keyed by IKEv2 with a "
                        "fresh pre-shared key (the HA's ha.json must list \"ipsec\" in 'security')")
    p.add_argument("--ipsec-data", action="store_true", help="with --security ipsec: the payload in ESP too")
    p.add_argument("--out", metavar="FILE",
                   help="where to write the device's config.json (deploy it with --config FILE)")
    p.add_argument("--force", action="store_true",
                   help="re-provision an NAI that is already there (new SPI and key), or overwrite --out holding "
                        "another device's config")
    p.add_argument("--show-key", action="store_true", help="print keys (they are secrets: off by default)")
    p.set_defaults(func=run)


# argparse actions so --wifi and --wifi-ssid/--wifi-psk keep their order in one list of [ssid, psk]
class WifiPair(argparse.Action):
    def __call__(self, parser, ns, value, option=None):
        ssid, sep, psk = value.partition(":")
        if not ssid or not sep:
            raise UserError("--wifi %r must be SSID:PSK" % value,
                            hint="e.g. --wifi apA:secret (an open network: --wifi apA:); an SSID holding ':': "
                                 "--wifi-ssid NAME --wifi-psk PSK")
        ns.wifi = list(ns.wifi) + [[ssid, psk]]


class WifiSsid(argparse.Action):
    def __call__(self, parser, ns, value, option=None):
        if not value:
            raise UserError("--wifi-ssid is empty", hint="give the network's name")
        ns.wifi = list(ns.wifi) + [[value, None]]      # None: its --wifi-psk may follow


class WifiPsk(argparse.Action):
    def __call__(self, parser, ns, value, option=None):
        if not ns.wifi or ns.wifi[-1][1] is not None:
            raise UserError("--wifi-psk %s has no --wifi-ssid before it" % ("*" * len(value)),
                            hint="give each network as --wifi-ssid NAME --wifi-psk PSK, in that order")
        ns.wifi[-1][1] = value


def _csv(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def run(args):
    if args.aaa:
        from .aaa.provision_sql import run_cli
        return run_cli(args)
    if not args.keys_file:
        raise UserError("--keys-file is missing", hint="the HA's keys file, or --aaa DBFILE for FreeRADIUS's SQL store")
    if args.list:
        sas = provision.list_sas(args.keys_file)
        print("%-32s %10s  %-28s%s" % ("NAI", "SPI", "HoA", "  key" if args.show_key else ""))
        for e in sas:
            print("%-32s %10s  %-28s%s" % (e.get("nai"), e.get("spi", e.get("security")), e.get("hoa", "(bootstrap)"),
                                           "  " + e.get("key", e.get("psk", "")) if args.show_key else ""))
        print("%d device(s) in %s" % (len(sas), args.keys_file))
        return 0
    if args.revoke:
        e = provision.revoke(args.keys_file, args.revoke)
        print("revoked %s (SPI %s) from %s; the HA drops the SA on SIGHUP (kill -HUP <pid of roam6 ha>) "
              "or at its next start" % (e.get("nai"), e.get("spi"), args.keys_file))
        return 0
    if not args.nai:
        raise UserError("say what to do: --nai NAI (provision), --list or --revoke NAI")
    if not args.out:
        raise UserError("--out is missing", hint="where to write the device's config.json, e.g. --out config.json")
    if args.ipsec_data and args.security != "ipsec":
        raise UserError("--ipsec-data needs --security ipsec")
    board = boards.load_board(args.board) if args.board else None
    wifi = [(ssid, psk or "") for ssid, psk in args.wifi]
    cfg = provision.provision(
        args.keys_file, args.out, force=args.force, nai=args.nai, hoa=args.hoa, bootstrap=args.bootstrap,
        ha=args.ha, ha_ipv4=args.ha_ipv4, home_prefix=args.home_prefix, domain=args.domain,
        transports=_csv(args.transports), lifetime=args.lifetime, timestamps=not args.no_timestamps, wifi=wifi,
        methods=_csv(args.bootstrap_methods), board=board, security=args.security, ipsec_data=args.ipsec_data,
        ipv4_hoa=args.ipv4_hoa)
    print("provisioned %s: %s, HoA %s, HA %s, transports %s"
          % (cfg["nai"], "SPI %d" % cfg["spi"] if "spi" in cfg else "IPsec (IKEv2 PSK)", cfg["hoa"], cfg["ha"],
             ",".join(cfg["transports"])))
    print("  config  -> %s (mode 0600: it holds the key)" % args.out)
    print("  SA      -> %s (the HA loads it on SIGHUP: kill -HUP <pid of roam6 ha>, or at its next start)"
          % args.keys_file)
    if args.show_key:
        print("  key     %s" % cfg.get("key", cfg.get("psk")))
    if board and board["port"] in WIFI_PORTS and not wifi:
        print("roam6: warning: no Wi-Fi network given: a %s board reaches the network only through Wi-Fi, so this "
              "device will not connect\n  -> add --wifi SSID:PSK (or --wifi-ssid NAME --wifi-psk PSK) and provision "
              "again with --force" % board["name"], file=sys.stderr)
    return 0
