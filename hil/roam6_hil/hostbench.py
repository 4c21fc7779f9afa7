"""The bench on the host's own interfaces (a bench file, benchfile.py): `roam6 hil up|down --bench FILE`.

    hb = HostBench(load("bench.toml"))
    hb.up()        # addresses, sysctls, nftables NAT, radvd/Kea/dnsmasq, the HA; every change recorded
    hb.down()      # undoes exactly what up() did, newest first (also from the state file, another process)

The daemons are the virtual bench's: the same config writers and daemons.Daemon (daemons.py),
started here on the bench file's interfaces instead of in namespaces. Every change is written to
the state file before the next one is made, so an interrupted `up` (or a killed one, through
`hil down --bench`) restores the host as it was: addresses and links it added, sysctls it changed,
its nft table, the processes it started.
"""
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time

from roam6_host.errors import UserError

from . import daemons
from .topology import HA_DAD_MS

STATE_DIR = "/run/roam6-hil"
SPI = 4096


def state_path(bench):
    return os.path.join(STATE_DIR, "bench-%s.json" % bench["name"])


class HostBench:
    """Look-alike of topology.Bench for the pieces that start processes (daemons.Daemon, the
    scenarios' CN traffic): `short` (the namespace of the virtual bench) is ignored, every process
    runs on this host."""

    def __init__(self, bench, workdir=None, cn_probe_ms=None, with_cn=False):
        self.spec = bench
        # `roam6 cn` on the CN address: for `hil up --bench` (with_cn) and, probing the HoA every N
        # ms with its events in self.cn, for `hil run ro` (realro.py); the other runs have their own CN
        self.with_cn = with_cn or bool(cn_probe_ms)
        self.cn_probe_ms = cn_probe_ms
        self.cn = None
        self.workdir = workdir or os.path.join(STATE_DIR, "bench-%s-work" % bench["name"])
        self.state_file = state_path(bench)
        self.state = {"bench": bench["path"], "workdir": self.workdir, "undo": []}
        self.owns_state = False           # the state file is ours to remove (we wrote it, or took it over)
        self.ha_log = os.path.join(self.workdir, "ha", "ha.log")

    # -- the Bench look-alike ------------------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.workdir, *parts)

    def popen(self, short, argv, **kw):
        """Started and recorded with Ctrl-C/SIGTERM held back (handled right after), so an
        interrupt never leaves a process that is not in the record. Its own session: it outlives
        `hil up`, and down() stops its whole group."""
        if threading.current_thread() is not threading.main_thread():
            p = subprocess.Popen(argv, start_new_session=True, **kw)
            self._did("proc", p.pid)
            return p
        pending = []
        old = {sig: signal.signal(sig, lambda *a: pending.append(a)) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            p = subprocess.Popen(argv, start_new_session=True, **kw)
            self._did("proc", p.pid)
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
        if pending:
            handler = old[pending[0][0]]
            if callable(handler):
                handler(*pending[0])
            elif handler != signal.SIG_IGN:
                raise KeyboardInterrupt()
        return p

    def run(self, short, argv, check=True, timeout=10, input=None):
        return subprocess.run(argv, check=check, timeout=timeout, input=input, capture_output=True, text=True)

    # -- the record of what changed --------------------------------------------------------------
    def _did(self, *undo):
        self.state["undo"].append(list(undo))
        self.owns_state = True
        os.makedirs(os.path.dirname(self.state_file), exist_ok=True)
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=1)
        os.replace(tmp, self.state_file)

    def _ip(self, *args):
        r = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout

    def _sysctl(self, key, value):
        path = "/proc/sys/" + key.replace(".", "/")
        with open(path) as f:
            old = f.read().strip()
        if old != str(value):
            with open(path, "w") as f:
                f.write(str(value))
            self._did("sysctl", key, old)

    def _addr(self, iface, cidr):
        have = self._ip("-j", "addr", "show", "dev", iface)
        ip, plen = cidr.split("/")
        if any(a.get("local") == ip and str(a.get("prefixlen")) == plen
               for link in json.loads(have or "[]") for a in link.get("addr_info", [])):
            return                                  # already there: not ours to remove
        self._ip("addr", "add", cidr, "dev", iface, *(["nodad"] if ":" in cidr else []))
        self._did("addr", iface, cidr)

    def _link_up(self, iface):
        info = json.loads(self._ip("-j", "link", "show", "dev", iface))[0]
        if "UP" not in info.get("flags", []):
            self._ip("link", "set", "dev", iface, "up")
            self._did("link_down", iface)

    # -- up and down ---------------------------------------------------------------------------
    def up(self):
        """Configure the host; on any failure or interrupt, undo what was done and re-raise."""
        if os.path.exists(self.state_file):
            raise UserError("a bench %s is already up (state %s)" % (self.spec["name"], self.state_file),
                            hint="roam6 hil down --bench %s" % self.spec["path"])
        os.makedirs(self.workdir, exist_ok=True)
        self._did("workdir", self.workdir)
        try:
            self._configure()
            self._start_daemons()
            cn = self._start_cn() if self.with_cn else None
            self._start_ha()
            if cn:
                self._cn_ready(cn)
        except BaseException:
            self.down()
            raise
        return self

    def _configure(self):
        s = self.spec
        self._sysctl("net.ipv6.conf.all.forwarding", 1)
        self._sysctl("net.ipv4.ip_forward", 1)
        # the CN's (and the HA's IPv4) addresses: host addresses, on the loopback link
        lo = "lo"
        self._addr(lo, s["cn"]["address6"] + "/128")
        for a in (s["cn"]["address4"], s["ha"]["ipv4"]):
            if a:
                self._addr(lo, a + "/32")
        home = s["home"]["interface"]
        self._link_up(home)
        self._addr(home, "%s/%s" % (s["ha"]["address"], s["home"]["prefix"].split("/")[1]))
        nat = []
        for ap in s["aps"]:
            self._sysctl("net.ipv6.conf.%s.accept_dad" % ap["interface"], 0)
            self._link_up(ap["interface"])
            if ap["ipv6"]:
                self._addr(ap["interface"], ap["ipv6"]["router"] + "/64")
            if ap["ipv4"]:
                self._addr(ap["interface"], "%s/%s" % (ap["ipv4"]["router"], ap["ipv4"]["subnet"].split("/")[1]))
                if ap["ipv4"]["nat"]:
                    nat.append('  ip saddr %s oifname != "%s" masquerade' % (ap["ipv4"]["subnet"], ap["interface"]))
        if nat:
            table = "r6b_" + s["name"].replace("-", "_")
            rules = ("table ip %s {\n chain postrouting {\n  type nat hook postrouting priority srcnat; "
                     "policy accept;\n%s\n }\n}\n" % (table, "\n".join(nat)))
            r = subprocess.run(["nft", "-f", "-"], input=rules, capture_output=True, text=True)
            if r.returncode:
                raise RuntimeError("nft: %s" % r.stderr.strip())
            self._did("nft", table)

    def plan_daemons(self):
        """The virtual bench's daemons (daemons.py writers) for the bench file's interfaces."""
        s = self.spec
        ha4, ha6, prefix = s["ha"]["ipv4"], s["ha"]["address"], s["home"]["prefix"]
        out = []

        def folder(kind, iface):
            d = self.path("%s-%s" % (kind, iface))
            os.makedirs(d, exist_ok=True)
            return d

        def radvd(iface, pfx, rdnss, ha):
            d = folder("radvd", iface)
            conf = os.path.join(d, "radvd.conf")
            with open(conf, "w") as f:
                f.write(daemons.radvd_conf(iface, pfx, rdnss, ha, domain=s["domain"]))
            out.append(daemons.Daemon("radvd", iface, ["radvd", "-n", "-C", conf, "-p", os.path.join(d, "radvd.pid"),
                                                       "-m", "stderr", "-d", "1"], [("raw6", "003A")], d))

        radvd(s["home"]["interface"], prefix, None, True)
        v6aps = [ap for ap in s["aps"] if ap["ipv6"]]
        for ap in v6aps:
            radvd(ap["interface"], ap["ipv6"]["prefix"], ap["ipv6"]["router"], False)
        if v6aps:
            # one Kea for every IPv6 AP (two on one host do not both get their sockets): stateless,
            # so one set of options, with every AP's router as a DNS server (all are this host)
            d = folder("kea", "aps")
            conf = os.path.join(d, "kea-dhcp6.json")
            kea = daemons.kea_conf(v6aps[0]["interface"], d, ", ".join(ap["ipv6"]["router"] for ap in v6aps),
                                   home_prefix=prefix, ha_addr=ha6, domain=s["domain"])
            kea["Dhcp6"]["interfaces-config"].update({
                "interfaces": [ap["interface"] for ap in v6aps],
                # a link-local address may still be tentative when Kea starts: it retries
                "service-sockets-max-retries": 40, "service-sockets-retry-wait-time": 100})
            with open(conf, "w") as f:
                json.dump(kea, f, indent=1)
            out.append(daemons.Daemon("kea-dhcp6", "aps", daemons.kea_argv(conf), [("udp6", "0223")], d,
                                      env={"KEA_PIDFILE_DIR": d, "KEA_LOCKFILE_DIR": d, "KEA_LOG_FILE_DIR": d}))
        for ap in s["aps"]:
            iface, v6, v4 = ap["interface"], ap["ipv6"], ap["ipv4"]
            listen = ([v4["router"]] if v4 else []) + ([v6["router"]] if v6 else [])
            rng = tuple(v4["dhcp"]) if v4 else None
            d = folder("dnsmasq", iface)
            conf = os.path.join(d, "dnsmasq.conf")
            with open(conf, "w") as f:
                # one dnsmasq per AP on one host: none on the loopback link, which dnsmasq adds by default
                f.write(daemons.dnsmasq_conf(iface, listen, rng, v4["router"] if v4 else None, d, ha_addrs=(ha4, ha6),
                                            domain=s["domain"])
                        + "except-interface=lo\n")
            ready = sorted({("udp6" if ":" in a else "udp", "0035") for a in listen})
            ready += [("udp", "0043")] if rng else []
            out.append(daemons.Daemon("dnsmasq", iface, ["dnsmasq", "-k", "-C", conf], ready, d))
        return out

    def _start_daemons(self, timeout=8.0):
        for tool in ("radvd", "kea-dhcp6", "dnsmasq"):
            daemons._need(tool)
        from . import hostapd
        aps = hostapd.plan(self)          # the APs the host runs itself, up before their addressing
        for d in aps:
            d.start(self)
        daemons.wait_ready(aps, timeout, "on")
        pending = self.plan_daemons()
        for d in pending:
            d.start(self)
        daemons.wait_ready(pending, timeout, "on")

    def _start_cn(self):
        """`roam6 cn` on the bench file's CN address (every link: the board's packets come in on
        the AP ports), started before the HA and waited for after it (hostcn.py)."""
        from .hostcn import start_cn
        return start_cn(self)

    def _cn_ready(self, cn):
        from .hostcn import wait_ready
        wait_ready(self, cn)

    def _start_ha(self, timeout=15.0):
        """`roam6 ha` with one SA, the board's; the board's config.json (CONTRACTS §5) beside it,
        for `roam6 deploy --config`."""
        s = self.spec
        d = self.path("ha")
        os.makedirs(d, exist_ok=True)
        key = secrets.token_hex(16)
        nai = "board1@" + s["domain"]
        keys = os.path.join(d, "ha-keys.json")
        fd = os.open(keys, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"sas": [{"nai": nai, "spi": SPI, "key": key, "hoa": s["home"]["hoa"]}]}, f)
        conf = os.path.join(d, "ha.json")
        with open(conf, "w") as f:
            json.dump({"home_prefix": s["home"]["prefix"], "address": s["ha"]["address"], "ipv4": s["ha"]["ipv4"],
                       "port": 4191, "home_link": s["home"]["interface"], "tun": "r6tun", "keys_file": keys,
                       "dad_ms": HA_DAD_MS}, f, indent=1)
        board = {"nai": nai, "spi": SPI, "key": key, "hoa": s["home"]["hoa"], "home_prefix": s["home"]["prefix"],
                 "ha": s["ha"]["address"], "ha_ipv4": s["ha"]["ipv4"], "domain": s["domain"],
                 "bootstrap": ["static"], "transports": ["udp6", "udp4"], "lifetime": 600, "timestamps": True,
                 "probe": {"port": 9000}}
        fd = os.open(self.path("board-config.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({k: v for k, v in board.items() if v is not None}, f, indent=1)
        log = open(self.ha_log, "wb")
        p = self.ha_proc = self.popen("ha", [sys.executable, "-u", "-m", "roam6_host", "ha", "--config", conf],
                                      stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.ha_log, errors="replace") as f:
                text = f.read()
            if '"ev": "ready"' in text:
                return
            if p.poll() is not None or '"ev": "error"' in text:
                break
            time.sleep(0.05)
        raise RuntimeError("the home agent did not start:\n" + text[-800:])

    def down(self):
        """Undo every recorded change, newest first; one that fails does not stop the others."""
        undo = self.state["undo"]
        errors = []
        # the processes (started last, so undone first) all at once: radvd takes ~2 s to send its
        # final Router Advertisements, one after the other they added up to seconds
        procs = []
        while undo and undo[-1][0] == "proc":
            procs.append(undo.pop()[1])
        try:
            _stop_groups(procs)
        except Exception as exc:
            errors.append("processes %s: %s" % (procs, exc))
        while undo:
            step = undo.pop()
            try:
                _undo(step)
            except Exception as exc:
                errors.append("%s: %s" % (step, exc))
        # not the state of a bench another `hil up` made (our up() refused to replace it)
        for p in (self.state_file, self.state_file + ".tmp") if self.owns_state else ():
            if os.path.exists(p):
                os.remove(p)
        return errors

    @classmethod
    def from_state(cls, bench):
        hb = cls(bench)
        with open(hb.state_file) as f:
            hb.state = json.load(f)
        hb.owns_state = True
        return hb


def _undo(step):
    kind, args = step[0], step[1:]
    if kind == "proc":
        _stop_group(args[0])
    elif kind == "sysctl":
        with open("/proc/sys/" + args[0].replace(".", "/"), "w") as f:
            f.write(args[1])
    elif kind == "addr":
        subprocess.run(["ip", "addr", "del", args[1], "dev", args[0]], capture_output=True)
    elif kind == "link_down":
        subprocess.run(["ip", "link", "set", "dev", args[0], "down"], capture_output=True)
    elif kind == "nft":
        subprocess.run(["nft", "delete", "table", "ip", args[0]], capture_output=True)
    elif kind == "workdir":
        import shutil
        shutil.rmtree(args[0], ignore_errors=True)


def _stop_group(pid, grace=3.0):
    _stop_groups([pid], grace)


def _stop_groups(pids, grace=3.0):
    """SIGTERM to each process group, then wait for all of them together; SIGKILL after `grace`."""
    left = []
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
            left.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while left and time.monotonic() < deadline:
        for pid in list(left):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            try:
                os.killpg(pid, 0)               # the whole group: radvd's privsep child too
            except ProcessLookupError:
                left.remove(pid)
        time.sleep(0.02)
    for pid in left:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def snapshot():
    """What `down` must give back, for tests and `hil up --bench` users: addresses, links, nft
    tables and the forwarding sysctls of this host (network namespace)."""
    addrs = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True).stdout
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    sysctls = {}
    for k in ("net/ipv6/conf/all/forwarding", "net/ipv4/ip_forward"):
        with open("/proc/sys/" + k) as f:
            sysctls[k] = f.read().strip()
    return {"addrs": sorted(addrs.splitlines()), "nft": sorted(nft.splitlines()), "sysctls": sysctls}


def cmd_up_bench(args):
    from .benchfile import check_host, load
    from .netns import require_root_and_tools
    bench = load(args.bench)
    require_root_and_tools(("ip", "nft"))
    check_host(bench, args.i_mean_it)
    from .interrupts import sigterm_as_interrupt
    sigterm_as_interrupt()             # Ctrl-C during up: up() undoes what it did
    hb = HostBench(bench, with_cn=True)
    try:
        hb.up()
    except RuntimeError as exc:      # a daemon or a step that failed: said, host restored, no traceback
        raise UserError(str(exc), hint="the host is as it was; logs were in %s" % hb.workdir, exit_code=1)
    print("bench %s is up on %s: HA %s, CN %s (roam6 cn); the board's config: %s" % (
        bench["name"], ", ".join([bench["home"]["interface"]] + [a["interface"] for a in bench["aps"]]),
        bench["ha"]["address"], bench["cn"]["address6"], hb.path("board-config.json")))
    print("remove it with: roam6 hil down --bench %s" % args.bench)
    return 0


def cmd_down_bench(args):
    from .benchfile import load
    bench = load(args.bench)
    if not os.path.exists(state_path(bench)):
        print("nothing to remove: bench %s is not up" % bench["name"])
        return 0
    errors = HostBench.from_state(bench).down()
    for e in errors:
        print("roam6: could not undo %s" % e, file=sys.stderr)
    print("bench %s is down: the host is as it was" % bench["name"] if not errors else "bench %s: partly undone"
          % bench["name"])
    return 1 if errors else 0
