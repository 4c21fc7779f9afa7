"""The real daemons of the access networks, with generated configs (see BENCH-NOTES.md).

  radvd      apA (brA), apC (brC), ha (home link: H flag, Home Agent Information option)
  Kea        DHCPv6 stateless on apA and apC, with the RFC 6610 home network information
  dnsmasq    apB, apC: DHCPv4 + DNS; apA: DNS only. DNS answers the RFC 5026 records
  nftables   random loss on the access networks' forwarding path (`set_loss`)

`start_daemons(bench)` launches them all at once and waits (bounded) until each listens.
Every process runs in the foreground under the bench's Namespaces, so teardown stops it.
"""
import json
import os
import shutil
import subprocess
import time

from roam6_host.errors import UserError

from .netns import TOOL_PACKAGES
from .topology import DOMAIN, HA_ADDR, HA_IPV4, HOME_PREFIX

HA_FQDN = "ha." + DOMAIN

RADVD = {
    # namespace: (interface, prefix, rdnss or None, home agent?)
    "apA": ("brA", "2001:db8:a1::/64", "2001:db8:a1::1", False),
    "apC": ("brC", "2001:db8:c1::/64", "2001:db8:c1::1", False),
    "ha": ("home", HOME_PREFIX, None, True),
}
KEA = {"apA": "brA", "apC": "brC"}
DNSMASQ = {
    # namespace: (interface, listen addresses (the first is the DHCPv4 DNS option), DHCPv4 range or None, router)
    "apA": ("brA", ["2001:db8:a1::1"], None, None),
    "apB": ("brB", ["192.0.2.1"], ("192.0.2.100", "192.0.2.199"), "192.0.2.1"),
    # dual stack: DNS on both, as the RAs and DHCPv6 name 2001:db8:c1::1
    "apC": ("brC", ["198.51.100.1", "2001:db8:c1::1"], ("198.51.100.100", "198.51.100.199"), "198.51.100.1"),
}
ACCESS = ("apA", "apB", "apC")


def radvd_conf(iface, prefix, rdnss, home_agent, domain=DOMAIN):
    # Sub-second intervals need a Mobile IPv6 option on (AdvIntervalOpt); the router lifetime must
    # be set, or it is 3 x 0.07 s, rounded to 0 (not a default router).
    lines = ["interface %s {" % iface, " AdvSendAdvert on;", " MinRtrAdvInterval 0.03;", " MaxRtrAdvInterval 0.07;",
             " MinDelayBetweenRAs 0.03;", " AdvIntervalOpt on;", " AdvDefaultLifetime 1800;",
             " AdvOtherConfigFlag on;"]
    if home_agent:
        lines += [" AdvHomeAgentFlag on;", " AdvHomeAgentInfo on;", " HomeAgentLifetime 1800;",
                  " HomeAgentPreference 10;"]
    lines += [" prefix %s { AdvOnLink on; AdvAutonomous on; AdvRouterAddr on; };" % prefix]
    if rdnss:
        lines += [" RDNSS %s { AdvRDNSSLifetime 600; };" % rdnss, " DNSSL %s { AdvDNSSLLifetime 600; };" % domain]
    lines += ["};", ""]
    return "\n".join(lines)


def kea_conf(iface, workdir, dns, home_prefix=HOME_PREFIX, ha_addr=HA_ADDR, domain=DOMAIN):
    """home_prefix, ha_addr, domain: the bench's by default; a bench file's (hostbench.py) otherwise."""
    home_net, plen = home_prefix.split("/")
    info = [
        {"space": "%s", "name": "hnp", "data": "%s, %s" % (plen, home_net)},
        {"space": "%s", "name": "haa", "data": ha_addr},
        {"space": "%s", "name": "haf", "data": "ha.%s." % domain},
    ]
    defs = [
        {"space": "dhcp6", "name": "mip6-hnidf", "code": 49, "type": "fqdn"},
        {"space": "dhcp6", "name": "mip6-idinf", "code": 69, "type": "empty", "encapsulate": "mip6-idinf"},
        {"space": "dhcp6", "name": "mip6-udinf", "code": 70, "type": "empty", "encapsulate": "mip6-udinf"},
        {"space": "mip6-idinf", "name": "hnidf", "code": 49, "type": "fqdn"},
    ]
    for space in ("mip6-udinf", "mip6-idinf"):
        defs += [
            {"space": space, "name": "hnp", "code": 71, "type": "record", "record-types": "uint8, ipv6-address"},
            {"space": space, "name": "haa", "code": 72, "type": "ipv6-address"},
            {"space": space, "name": "haf", "code": 73, "type": "fqdn"},
        ]
    data = [{"space": "dhcp6", "name": "mip6-udinf"}, {"space": "dhcp6", "name": "mip6-idinf"},
            {"space": "mip6-idinf", "name": "hnidf", "data": domain + "."},
            {"name": "dns-servers", "data": dns}, {"name": "domain-search", "data": domain},
            {"name": "information-refresh-time", "data": "600"}]
    for space in ("mip6-udinf", "mip6-idinf"):
        data += [dict(d, space=space) for d in info]
    return {"Dhcp6": {
        "interfaces-config": {"interfaces": [iface]},
        "lease-database": {"type": "memfile", "persist": False},
        "server-id": {"type": "LL", "persist": False},
        "option-def": defs,
        "option-data": data,
        "loggers": [{"name": "kea-dhcp6", "severity": "WARN",
                     "output_options": [{"output": os.path.join(workdir, "kea.log")}]}],
    }}


def dnsmasq_conf(iface, listen, dhcp_range, router, workdir, ha_addrs=(HA_IPV4, HA_ADDR), domain=DOMAIN):
    """`listen`: an address or a list of them (the first is the DHCPv4 DNS option); ha_addrs and
    domain: the HA's addresses the DNS names, in which domain (the bench's by default; a bench
    file's in hostbench.py)."""
    if isinstance(listen, str):
        listen = [listen]
    fqdn = "ha." + domain
    lines = ["interface=%s" % iface, "bind-interfaces", "listen-address=%s" % ",".join(listen), "no-resolv", "no-hosts",
             "user=root", "pid-file=", "domain=%s" % domain, "local=/%s/" % domain,
             "srv-host=_mip6._ipv6.%s,%s,0" % (domain, fqdn),
             "host-record=%s" % ",".join([fqdn] + [a for a in ha_addrs if a]),
             "log-facility=%s" % os.path.join(workdir, "dnsmasq.log")]
    if dhcp_range:
        lines += ["dhcp-range=%s,%s,255.255.255.0,1h" % dhcp_range, "dhcp-option=option:router,%s" % router,
                  "dhcp-option=option:dns-server,%s" % listen[0], "dhcp-rapid-commit", "dhcp-authoritative",
                  "no-ping", "dhcp-leasefile=%s" % os.path.join(workdir, "dnsmasq.leases")]
    return "\n".join(lines) + "\n"


def _proc_has_socket(pid, table, port_hex):
    """Does process `pid` (seen from its own network namespace) have a socket on this port?"""
    try:
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            next(f)
            return any(line.split()[1].endswith(":" + port_hex) for line in f)
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return False


class Daemon:
    def __init__(self, name, short, argv, ready, workdir, env=None):
        self.name, self.short, self.argv, self.ready, self.workdir, self.env = name, short, argv, ready, workdir, env
        self.proc = None

    def start(self, bench):
        env = dict(os.environ, **(self.env or {}))
        self.log = open(os.path.join(self.workdir, "output.log"), "wb")
        self.proc = bench.popen(self.short, self.argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def is_ready(self):
        return all(_proc_has_socket(self.proc.pid, table, port) for table, port in self.ready)

    def failure(self):
        if self.proc.poll() is None:
            return None
        with open(os.path.join(self.workdir, "output.log"), errors="replace") as f:
            tail = f.read()[-800:]
        return "%s in %s exited with %s:\n%s" % (self.name, self.short, self.proc.returncode, tail)


def _need(tool):
    if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
        raise UserError("%s not found: the bench runs the real daemon" % tool,
                        hint="apt-get install %s (or `make setup`)" % TOOL_PACKAGES[tool])


def _apparmor_confines(binary_name):
    """True if AppArmor is on and has a profile for this daemon (Debian ships one for kea-dhcp6
    that only lets it read /etc/kea: a bench's generated config elsewhere would be denied)."""
    try:
        with open("/sys/kernel/security/apparmor/profiles") as f:
            return any(line.split(" ")[0] == binary_name for line in f)
    except OSError:
        return False


def kea_argv(conf):
    argv = ["kea-dhcp6", "-c", conf]
    if _apparmor_confines("kea-dhcp6"):
        if not shutil.which("aa-exec"):
            raise UserError("AppArmor confines kea-dhcp6 to /etc/kea; the bench's generated config is elsewhere",
                            hint="apt-get install apparmor (it has aa-exec), or `aa-complain /usr/sbin/kea-dhcp6`")
        argv = ["aa-exec", "-p", "unconfined", "--"] + argv
    return argv


def plan(bench):
    """The daemons of a bench, with their configs written into bench.workdir."""
    out = []
    for short, (iface, prefix, rdnss, ha) in RADVD.items():
        d = bench.path("radvd-" + short)
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "radvd.conf")
        with open(conf, "w") as f:
            f.write(radvd_conf(iface, prefix, rdnss, ha))
        out.append(Daemon("radvd", short, ["radvd", "-n", "-C", conf, "-p", os.path.join(d, "radvd.pid"),
                                           "-m", "stderr", "-d", "1"], [("raw6", "003A")], d))
    for short, iface in KEA.items():
        d = bench.path("kea-" + short)
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "kea-dhcp6.json")
        with open(conf, "w") as f:
            json.dump(kea_conf(iface, d, RADVD[short][2]), f, indent=1)
        out.append(Daemon("kea-dhcp6", short, kea_argv(conf), [("udp6", "0223")], d,
                          env={"KEA_PIDFILE_DIR": d, "KEA_LOCKFILE_DIR": d, "KEA_LOG_FILE_DIR": d}))
    for short, (iface, listen, rng, router) in DNSMASQ.items():
        d = bench.path("dnsmasq-" + short)
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "dnsmasq.conf")
        with open(conf, "w") as f:
            f.write(dnsmasq_conf(iface, listen, rng, router, d))
            if rng:     # reservations the bench can add while it runs (SIGHUP): roam --dna-nak (dnanak.py)
                f.write("dhcp-hostsfile=%s\n" % os.path.join(d, "hosts"))
        if rng:
            open(os.path.join(d, "hosts"), "w").close()
        ready = sorted({("udp6" if ":" in a else "udp", "0035") for a in listen}) + ([("udp", "0043")] if rng else [])
        out.append(Daemon("dnsmasq", short, ["dnsmasq", "-k", "-C", conf], ready, d))
    return out


def start_daemons(bench, timeout=5.0):
    """Start every daemon at once; return when all listen. Raises RuntimeError naming the one that
    failed (with the tail of its log) or did not come up in time."""
    for tool in ("radvd", "kea-dhcp6", "dnsmasq"):
        _need(tool)
    daemons = plan(bench)
    for d in daemons:
        d.start(bench)
    wait_ready(daemons, timeout)
    return daemons


def wait_ready(daemons, timeout, where="in"):
    """Return once every started daemon listens; RuntimeError naming the one that failed (with
    the tail of its log) or those not up within `timeout` s (`where`: "in" a namespace, "on" a
    host interface)."""
    deadline = time.monotonic() + timeout
    pending = list(daemons)
    while pending:
        for d in pending:
            err = d.failure()
            if err:
                raise RuntimeError(err)
        pending = [d for d in pending if not d.is_ready()]
        if not pending:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("daemons not listening after %.0fs: %s" % (
                timeout, ", ".join("%s %s %s" % (d.name, where, d.short) for d in pending)))
        time.sleep(0.01)


def set_loss(bench, percent):
    """Drop `percent` % of the packets forwarded by each access network (both directions), with
    nftables' random number generator (this kernel has no netem)."""
    if not 0 <= percent <= 100:
        raise UserError("--loss must be a percentage between 0 and 100, got %s" % percent)
    per_mille = int(round(percent * 10))
    for short in ACCESS:
        bench.run(short, ["nft", "delete", "table", "inet", "r6loss"], check=False)
        if per_mille:
            rules = ("table inet r6loss {\n chain loss {\n  type filter hook forward priority -10; policy accept;\n"
                     "  numgen random mod 1000 < %d drop\n }\n}\n" % per_mille)
            bench.run(short, ["nft", "-f", "-"], input=rules)
