"""An IPv4-only correspondent on the bench (RFC 5555 IPv4 home addresses, docs/CONTRACTS.md §8).

    add_cn4(bench)                       # namespace <prefix>cn4, IPv4 only, linked to `core`
    bench.run("cn4", ["ping", "-c1", ipv4_hoa])

`cn4` has no IPv6 at all (disabled before its link exists) and one link to the core router,
198.18.4.0/24; it reaches the home network's IPv4 prefix (topology.HOME4_PREFIX, routed by core
to the HA) through core, as an IPv4-only monitoring system on the Internet would. Made only by the
runs that ask for it (the IPv4 HoA scenarios), so every other bench costs nothing more; it goes
with the bench's namespaces at teardown (same prefix).
"""
import subprocess

CN4_ADDR = "198.18.4.2"
CN4_CORE = "198.18.4.1"
CN4_PLEN = 24


def add_cn4(bench):
    """Build the cn4 namespace on a running bench (once); returns its address."""
    if "cn4" in bench.ns.names:
        return CN4_ADDR
    bench.ns.add("cn4")
    bench.ns.sysctls("cn4", [("net.ipv6.conf.all.disable_ipv6", 1), ("net.ipv6.conf.default.disable_ipv6", 1)])
    subprocess.run(["ip", "link", "add", "name", "cn4", "netns", bench.full("core"), "type", "veth",
                    "peer", "name", "up", "netns", bench.full("cn4")], check=True, capture_output=True)
    bench.ns.batch("core", ["addr add %s/%d dev cn4" % (CN4_CORE, CN4_PLEN), "link set dev cn4 up"])
    bench.ns.batch("cn4", ["addr add %s/%d dev up" % (CN4_ADDR, CN4_PLEN), "link set dev up up",
                           "-4 route add default via %s" % CN4_CORE])
    return CN4_ADDR
