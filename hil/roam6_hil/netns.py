"""Network namespaces for the bench: create them, run commands and processes inside, tear down.

Every namespace a bench makes is named `<prefix><short>` (e.g. `r6-core`), so a bench left
behind by a killed run is found by its prefix and removed (`cleanup_prefix`). Teardown kills every
process that lives in a namespace (`ip netns pids`), not only the ones we started: daemons that
fork (radvd) are caught too.
"""
import os
import re
import shutil
import signal
import subprocess
import time

from roam6_host.errors import UserError

PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,9}-$")
NETNS_DIR = "/run/netns"


def check_prefix(prefix):
    if not PREFIX_RE.match(prefix or ""):
        raise UserError("bad bench prefix %r" % (prefix,),
                        hint="use 1-10 lowercase letters/digits starting with a letter, ending in '-' (e.g. r6-)")
    return prefix


def require_root_and_tools(tools=("ip",)):
    """The bench needs root (namespaces) and some tools; say which is missing and how to get it."""
    if os.geteuid() != 0:
        raise UserError("the bench needs root (network namespaces)", hint="run it with sudo, or as root")
    for tool in tools:
        if not shutil.which(tool):
            pkg = TOOL_PACKAGES.get(tool, tool)
            raise UserError("%s not found" % tool, hint="apt-get install %s (or `make setup`)" % pkg)


TOOL_PACKAGES = {
    "ip": "iproute2", "nft": "nftables", "radvd": "radvd", "kea-dhcp6": "kea-dhcp6-server",
    "dnsmasq": "dnsmasq-base", "busybox": "busybox", "tcpdump": "tcpdump", "socat": "socat",
}


def list_namespaces():
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def ns_pids(name):
    r = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    return [int(x) for x in r.stdout.split() if x.isdigit()]


def _alive(pid):
    """True if pid exists and is not a zombie (PID 1 here reaps late; kill -0 succeeds on zombies)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def kill_pids(pids, grace=1.0):
    """SIGTERM, wait up to `grace` seconds, then SIGKILL whatever is left."""
    pids = [p for p in pids if p != os.getpid()]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.02)
    for p in pids:
        if _alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def delete_namespace(name):
    kill_pids(ns_pids(name))
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    etc = os.path.join("/etc/netns", name)
    if os.path.isdir(etc):
        shutil.rmtree(etc, ignore_errors=True)


def cleanup_prefix(prefix):
    """Remove every namespace named with `prefix` (and the processes in it). Returns their names."""
    check_prefix(prefix)
    gone = [n for n in list_namespaces() if n.startswith(prefix)]
    for name in gone:
        delete_namespace(name)
    return gone


class Namespaces:
    """A set of namespaces sharing one prefix, and the processes started in them."""

    def __init__(self, prefix):
        self.prefix = check_prefix(prefix)
        self.names = []          # short names, in creation order
        self.procs = []          # Popen objects we started
        self._shells = {}

    def full(self, short):
        return self.prefix + short

    def add(self, short):
        subprocess.run(["ip", "netns", "add", self.full(short)], check=True, capture_output=True)
        self.names.append(short)
        # loopback up: daemons and the MN bind to ::1/127.0.0.1 at times
        self.ip(short, "link", "set", "lo", "up")

    def ip(self, short, *args, check=True):
        """`ip -n NS ARGS...` (no fork of `ip netns exec`: ~1.5 ms)."""
        return self._run(["ip", "-n", self.full(short)] + [str(a) for a in args], check, 10)

    def batch(self, short, lines, check=True):
        """Several `ip` commands in one process (`ip -n NS -batch -`). A line may start with -4/-6:
        lines are grouped by family, one `ip` process per group, in order."""
        groups = []
        for line in lines:
            fam = line[:2] if line[:2] in ("-4", "-6") else ""
            line = line[2:].strip() if fam else line
            if groups and groups[-1][0] == fam:
                groups[-1][1].append(line)
            else:
                groups.append((fam, [line]))
        r = None
        for fam, group in groups:
            argv = (["ip", "-n", self.full(short)] + ([fam] if fam else []) + (["-force"] if not check else [])
                    + ["-batch", "-"])
            r = self._run(argv, check, 10, input="\n".join(group) + "\n")
        return r

    def sysctls(self, short, pairs):
        """pairs: list of ("net.ipv6.conf.all.forwarding", 1). Written to /proc/sys from inside the
        namespace with sh (the sysctl tool, procps, is not on every minimal system)."""
        script = "; ".join("echo %s > /proc/sys/%s" % (v, k.replace(".", "/")) for k, v in pairs)
        return self.run(short, ["sh", "-ec", script])

    def shell(self, short):
        """A long-lived `ip -d -batch` for namespace `short` (see IpShell): ~0.3 ms a command
        instead of ~2 ms for a new `ip` process; used on the roaming path."""
        if short not in self._shells:
            sh = IpShell(self.full(short))
            self.procs.append(sh.proc)
            self._shells[short] = sh
        return self._shells[short]

    def argv(self, short, argv):
        return ["ip", "netns", "exec", self.full(short)] + [str(a) for a in argv]

    def run(self, short, argv, check=True, timeout=10, input=None):
        """Run a command in namespace `short`; returns CompletedProcess (text). Bounded by `timeout`."""
        return self._run(self.argv(short, argv), check, timeout, input=input)

    def popen(self, short, argv, **kw):
        """Start a process in namespace `short`; it is killed at teardown."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen(self.argv(short, argv), **kw)
        self.procs.append(p)
        return p

    @staticmethod
    def _run(argv, check, timeout, input=None):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
        except subprocess.TimeoutExpired:
            raise RuntimeError("timed out after %ss: %s" % (timeout, " ".join(argv)))
        if check and r.returncode != 0:
            raise RuntimeError("command failed (%d): %s\n%s" % (r.returncode, " ".join(argv), r.stderr.strip()))
        return r

    def stop(self, proc, grace=1.0):
        """Stop one process we started (and its process group)."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(2)

    def teardown(self):
        """Stop our processes, then every process left in our namespaces, then the namespaces."""
        for p in reversed(self.procs):
            try:
                self.stop(p, grace=0.5)
            except Exception:
                pass
        self.procs = []
        self._shells = {}
        cleanup_prefix(self.prefix)
        self.names = []


class IpShell:
    """`ip -n NS -force -batch -` kept running; `do(lines)` sends commands and returns their output
    lines (errors included) once a marker command has answered, so the caller knows they are done.
    stdbuf makes ip's stdout line-buffered (it is a pipe)."""

    MARK = "link show dev lo"

    def __init__(self, ns):
        argv = ["ip", "-d", "-n", ns, "-force", "-batch", "-"]
        if shutil.which("stdbuf"):
            argv = ["stdbuf", "-oL", "-eL"] + argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1, start_new_session=True)

    def do(self, lines):
        self.proc.stdin.write("\n".join(lines) + "\n" + self.MARK + "\n")
        self.proc.stdin.flush()
        out = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("ip -batch ended: %s" % "".join(out))
            if ": lo: <" in line:
                self.proc.stdout.readline()      # its link/loopback line
                return out
            out.append(line.rstrip("\n"))
