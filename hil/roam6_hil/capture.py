"""A pcap per bench link, with tcpdump (`-Z root`: otherwise it drops privileges and cannot write
into a root-owned folder, and captures nothing)."""
import os
import shutil
import signal
import subprocess
import time

from roam6_host.errors import UserError

# (namespace, interface, file name)
LINKS = [
    ("core", "ha", "core-ha"), ("core", "cn", "core-cn"), ("core", "apA", "core-apA"),
    ("core", "apB", "core-apB"), ("core", "apC", "core-apC"),
    ("apA", "brA", "apA-wifi"), ("apB", "brB", "apB-wifi"), ("apC", "brC", "apC-wifi"),
    ("ha", "home", "home-link"), ("board", "wlan0", "board-wlan0"),
]


class Captures:
    def __init__(self, bench, folder, links=LINKS):
        if not shutil.which("tcpdump"):
            raise UserError("tcpdump not found (the bench writes a pcap per link)",
                            hint="apt-get install tcpdump, or run without captures (--no-pcap)")
        self.bench, self.folder, self.links = bench, folder, links
        self.procs = []
        self.files = []

    def start(self, timeout=5.0):
        os.makedirs(self.folder, exist_ok=True)
        for short, iface, name in self.links:
            path = os.path.join(self.folder, name + ".pcap")
            p = self.bench.popen(short, ["tcpdump", "-Z", "root", "-n", "-U", "-q", "-i", iface, "-w", path],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.procs.append(p)
            self.files.append(path)
        # tcpdump says "listening on ..." once its socket is bound; until then it would miss packets
        deadline = time.monotonic() + timeout
        for p, (short, iface, _n) in zip(self.procs, self.links):
            os.set_blocking(p.stderr.fileno(), False)
            buf = b""
            while b"listening on" not in buf:
                try:
                    buf += p.stderr.read() or b""
                except (BlockingIOError, TypeError):
                    pass
                if p.poll() is not None:
                    raise RuntimeError("tcpdump on %s/%s failed: %s" % (short, iface, buf.decode(errors="replace")))
                if time.monotonic() > deadline:
                    raise RuntimeError("tcpdump on %s/%s not listening after %.0fs" % (short, iface, timeout))
                time.sleep(0.005)
        return self

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)   # ip netns exec has exec'ed tcpdump: same pid
        for p in self.procs:
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                self.bench.ns.stop(p)
        self.procs = []
        return self.files
