"""A bench made of real parts: the bench description file (TOML, docs/CONTRACTS.md §8.3).

    bench = load("examples/bench.toml")               # UserError on anything wrong, host untouched
    check_host(bench, i_mean_it=False)                 # interfaces exist, none carries the default route

The file names what the host has: the home link, the HA's and CN's addresses, and one [[ap]]
per access point (the host interface behind it: an AP in bridge mode on a port or VLAN, or a
hostapd the host runs), its SSID/PSK and its addressing (IPv6: RA + DHCPv6 with the RFC 6610
options; IPv4: router address, DHCPv4 range, NAT, DNS with the RFC 5026 SRV record; or both).
Every address must lie in a documentation/benchmark range unless --i-mean-it.
"""
import ipaddress
import json
import os
import subprocess
import tomllib

from roam6_host.errors import UserError

# RFC 3849, RFC 5737, RFC 2544 (benchmarking)
SAFE_RANGES = [ipaddress.ip_network(n) for n in ("2001:db8::/32", "192.0.2.0/24", "198.51.100.0/24",
                                                 "203.0.113.0/24", "198.18.0.0/15")]
KINDS = ("bridge", "hostapd")


def _err(path, msg, hint=None):
    return UserError("bench file %s: %s" % (path, msg),
                     hint=hint or "see examples/bench.toml and docs/CONTRACTS.md §8.3")


def _need(path, table, key, where, kind=str):
    if key not in table:
        raise _err(path, "%s needs `%s`" % (where, key))
    v = table[key]
    if not isinstance(v, kind):
        raise _err(path, "%s.%s must be a %s, got %r" % (where, key, kind.__name__, v))
    return v


def _addr(path, text, where, family=None):
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        raise _err(path, "%s: %r is not an IP address" % (where, text))
    if family and a.version != family:
        raise _err(path, "%s: %s is not an IPv%d address" % (where, text, family))
    return a


def _net(path, text, where, family):
    try:
        n = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise _err(path, "%s: %r is not a network (%s)" % (where, text, exc))
    if n.version != family:
        raise _err(path, "%s: %s is not an IPv%d network" % (where, text, family))
    return n


def load(path):
    """Parse and check the file on its own (no look at the host). Returns a plain dict:
    name, home {interface, prefix, ha, hoa}, ha_ipv4, cn {address6, address4}, aps [...], every
    address as text, and `addresses`: every address/network named (for the range check)."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise UserError("no bench file %s" % path, hint="copy examples/bench.toml and name your interfaces")
    except tomllib.TOMLDecodeError as exc:
        raise _err(path, "not valid TOML: %s" % exc)
    known = {"name", "home", "ha", "cn", "ap", "domain", "board"}
    extra = sorted(set(raw) - known)
    if extra:
        raise _err(path, "unknown section(s) %s (known: %s)" % (", ".join(extra), ", ".join(sorted(known))))
    name = raw.get("name", "bench")
    if not isinstance(name, str) or not name.replace("-", "").isalnum() or len(name) > 8:
        raise _err(path, "name must be 1-8 letters, digits or '-', got %r" % (name,))
    home = _need(path, raw, "home", "the file", dict)
    prefix = _net(path, _need(path, home, "prefix", "[home]"), "[home].prefix", 6)
    hoa = _addr(path, _need(path, home, "hoa", "[home]"), "[home].hoa", 6)
    ha = _need(path, raw, "ha", "the file", dict)
    ha6 = _addr(path, _need(path, ha, "address", "[ha]"), "[ha].address", 6)
    for a, what in ((hoa, "hoa"), (ha6, "[ha].address")):
        if a not in prefix:
            raise _err(path, "%s %s is not in the home prefix %s" % (what, a, prefix))
    ha4 = _addr(path, ha["ipv4"], "[ha].ipv4", 4) if "ipv4" in ha else None
    cn = _need(path, raw, "cn", "the file", dict)
    cn6 = _addr(path, _need(path, cn, "address6", "[cn]"), "[cn].address6", 6)
    cn4 = _addr(path, cn["address4"], "[cn].address4", 4) if "address4" in cn else None
    out = {"name": name, "path": os.path.abspath(path), "domain": raw.get("domain", "example.test"),
           "home": {"interface": _need(path, home, "interface", "[home]"), "prefix": str(prefix), "hoa": str(hoa)},
           "ha": {"address": str(ha6), "ipv4": str(ha4) if ha4 else None},
           "cn": {"address6": str(cn6), "address4": str(cn4) if cn4 else None}, "aps": []}
    out["board"] = _board(path, raw.get("board", {}))
    named = [prefix, hoa, ha6, cn6] + [a for a in (ha4, cn4) if a]
    aps = raw.get("ap")
    if not isinstance(aps, list) or not aps:
        raise _err(path, "no [[ap]]: a bench needs at least one access point")
    seen_if, seen_ssid = {out["home"]["interface"]}, set()
    for i, ap in enumerate(aps):
        where = "[[ap]] #%d" % (i + 1)
        iface = _need(path, ap, "interface", where)
        ssid = _need(path, ap, "ssid", where)
        where = "[[ap]] %s" % ssid
        if iface in seen_if:
            raise _err(path, "%s: interface %s is named twice" % (where, iface))
        if ssid in seen_ssid:
            raise _err(path, "SSID %s is named twice" % ssid)
        seen_if.add(iface)
        seen_ssid.add(ssid)
        kind = ap.get("kind", "bridge")
        if kind not in KINDS:
            raise _err(path, "%s: kind must be one of %s, got %r" % (where, ", ".join(KINDS), kind))
        entry = {"interface": iface, "ssid": ssid, "psk": ap.get("psk", ""), "kind": kind,
                 "switch_to": ap.get("switch_to"), "ipv6": None, "ipv4": None}
        if kind == "hostapd":
            if not 8 <= len(entry["psk"]) <= 63:
                raise _err(path, "%s: a hostapd AP needs a psk of 8-63 characters" % where)
            channel = ap.get("channel", 6)
            if not isinstance(channel, int) or not (1 <= channel <= 14 or 36 <= channel <= 177):
                raise _err(path, "%s: channel must be 1-14 (2.4 GHz) or 36-177 (5 GHz), got %r" % (where, channel))
            entry.update(channel=channel, country=ap.get("country"), hostapd=ap.get("hostapd"))
        if "ipv6" in ap:
            v6 = _need(path, ap, "ipv6", where, dict)
            net = _net(path, _need(path, v6, "prefix", where + ".ipv6"), where + ".ipv6.prefix", 6)
            router = _addr(path, _need(path, v6, "router", where + ".ipv6"), where + ".ipv6.router", 6)
            if router not in net or net.prefixlen != 64:
                raise _err(path, "%s.ipv6: router %s must be in prefix %s, a /64 (SLAAC)" % (where, router, net))
            entry["ipv6"] = {"prefix": str(net), "router": str(router)}
            named += [net, router]
        if "ipv4" in ap:
            v4 = _need(path, ap, "ipv4", where, dict)
            net = _net(path, _need(path, v4, "subnet", where + ".ipv4"), where + ".ipv4.subnet", 4)
            router = _addr(path, _need(path, v4, "router", where + ".ipv4"), where + ".ipv4.router", 4)
            rng = _need(path, v4, "dhcp", where + ".ipv4", list)
            if len(rng) != 2:
                raise _err(path, "%s.ipv4.dhcp: two addresses, first and last" % where)
            lo, hi = (_addr(path, a, where + ".ipv4.dhcp", 4) for a in rng)
            if not (router in net and lo in net and hi in net and lo <= hi):
                raise _err(path, "%s.ipv4: router and DHCP range must be in %s (first <= last)" % (where, net))
            entry["ipv4"] = {"subnet": str(net), "router": str(router), "dhcp": [str(lo), str(hi)],
                             "nat": bool(v4.get("nat", True))}
            named += [net]
        if not entry["ipv6"] and not entry["ipv4"]:
            raise _err(path, "%s: give it `ipv6`, `ipv4` or both" % where)
        out["aps"].append(entry)
    out["addresses"] = [str(a) for a in named]
    return out


def _board(path, board):
    """[board]: power_on / power_off (and power_cycle) commands, for labgrid's ExternalPowerDriver
    (labgrid_place.py): {"power": {"on", "off", "cycle"}} or {}."""
    if not isinstance(board, dict):
        raise _err(path, "[board] must be a table")
    extra = sorted(set(board) - {"power_on", "power_off", "power_cycle"})
    if extra:
        raise _err(path, "[board]: unknown key(s) %s (known: power_on, power_off, power_cycle)" % ", ".join(extra))
    cmds = {k[6:]: _need(path, board, k, "[board]") for k in ("power_on", "power_off", "power_cycle") if k in board}
    if cmds and not ("on" in cmds and "off" in cmds):
        raise _err(path, "[board]: power needs both power_on and power_off (power_cycle is optional)")
    return {"power": cmds} if cmds else {}


def outside_safe_ranges(bench):
    bad = []
    for text in bench["addresses"]:
        a = ipaddress.ip_network(text if "/" in text else text + ("/128" if ":" in text else "/32"))
        if not any(a.version == r.version and a.subnet_of(r) for r in SAFE_RANGES):
            bad.append(text)
    return bad


def _ip_json(args):
    r = subprocess.run(["ip", "-j"] + args, capture_output=True, text=True)
    if r.returncode:
        raise UserError("`ip %s` failed: %s" % (" ".join(args), r.stderr.strip()), hint="apt-get install iproute2")
    return json.loads(r.stdout or "[]")


def default_route_interfaces():
    devs = set()
    for fam in ("-4", "-6"):
        for r in _ip_json([fam, "route", "show", "default"]):
            if r.get("dev"):
                devs.add(r["dev"])
            for nh in r.get("nexthops", []):
                if nh.get("dev"):
                    devs.add(nh["dev"])
    return devs


def interfaces(bench):
    return [bench["home"]["interface"]] + [ap["interface"] for ap in bench["aps"]]


def check_host(bench, i_mean_it=False):
    """Refuse (UserError, nothing changed) a file that names an interface the host lacks, one
    carrying the host's default route, or addresses outside the documentation ranges."""
    have = {link["ifname"] for link in _ip_json(["link", "show"])}
    missing = [i for i in interfaces(bench) if i not in have]
    if missing:
        raise _err(bench["path"], "unknown interface(s) %s on this host" % ", ".join(missing),
                   hint="`ip link` lists the host's interfaces; name the ports your APs hang off")
    carrying = sorted(set(interfaces(bench)) & default_route_interfaces())
    if carrying:
        raise _err(bench["path"], "interface(s) %s carry this host's default route: the bench would cut the "
                                  "host off its network" % ", ".join(carrying),
                   hint="give the APs and the home link their own ports or VLANs")
    from .hostapd import check as check_hostapd
    check_hostapd(bench)              # kind = "hostapd": the binary there, the interface a Wi-Fi card
    bad = outside_safe_ranges(bench)
    if bad and not i_mean_it:
        raise _err(bench["path"], "address(es) outside the documentation/benchmark ranges: %s" % ", ".join(bad),
                   hint="use 2001:db8::/32, 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15; "
                        "or, if these are really yours to configure, add --i-mean-it")
