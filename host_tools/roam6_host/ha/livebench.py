"""`roam6 bench ha --live`: the real `roam6 ha` process in throw-away namespaces, timed from outside.

    mn (198.18.1.10) --- ha (198.18.1.2; 2001:db8:aa::1 on bridge `home`; TUN r6tun) --- cn (2001:db8:f3::2)

Measures (1) BU->BA time over UDP 4191 (udp4, authenticated, timestamps), one BU at a time, and
(2) the round trip CN -> HoA -> (HA: TUN, UDP) -> MN -> (UDP, HA: TUN) -> CN, one datagram at a
time: both legs cross the HA's data plane, so this is what the HA adds to a packet's path
(plus two Python socket hops on the MN/CN side, which run in this process). Needs root.
"""
import gc
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from ..errors import UserError
from ..nssock import socket_in
from ..procs import end


def _sh(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if p.returncode:
        raise RuntimeError("%s: %s" % (" ".join(cmd), p.stderr.strip()))


class _Net:
    def __init__(self, prefix=None):
        self.prefix = prefix or "r6b%s-" % secrets.token_hex(2)
        self.names = []

    def add(self, short):
        name = self.prefix + short
        _sh("ip", "netns", "add", name)
        self.names.append(name)
        _sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def ip(self, ns, *args):
        _sh("ip", "-n", ns, *args)

    def veth(self, a, ia, b, ib):
        """A veth pair, `ia` in namespace a and `ib` in b, both up."""
        _sh("ip", "link", "add", ia, "netns", a, "type", "veth", "peer", "name", ib, "netns", b)
        self.ip(a, "link", "set", ia, "up")
        self.ip(b, "link", "set", ib, "up")

    def down(self):
        for name in reversed(self.names):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def teardown(ha_proc, net, tmp):
    """The end of a live bench (this one, bench_attack's, bench_dataplane's): the HA process, the
    namespaces, the temp folder of its files."""
    if ha_proc is not None:
        end(ha_proc, 10)
    net.down()
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)


LIVE_WAIT_S = 5


def _answer(sock, what):
    try:
        return sock.recvfrom(2048)[0]
    except socket.timeout:
        raise RuntimeError("no %s within %d s (the HA in the bench's namespaces did not answer)"
                           % (what, LIVE_WAIT_S)) from None


def _pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))]


def run_live(n=2000, prefix=None):
    """`prefix`: of the namespaces this run creates (and removes), default r6b + 4 random hex digits."""
    from roam6.wire.ipv6 import build_ipv6
    from roam6_codec.udp import build_udp

    from .bugen import build_bu, ntp_timestamp

    if os.geteuid() != 0:
        raise UserError("roam6 bench ha --live needs root (it creates network namespaces)", hint="run it with sudo")
    net = _Net(prefix)
    ha_proc = None
    tmp = tempfile.mkdtemp(prefix="r6bench-")
    try:
        ha, mn, cn = net.add("ha"), net.add("mn"), net.add("cn")
        net.veth(ha, "up0", mn, "wlan0")
        net.veth(ha, "cn0", cn, "eth0")
        net.ip(ha, "addr", "add", "198.18.1.2/24", "dev", "up0")
        net.ip(mn, "addr", "add", "198.18.1.10/24", "dev", "wlan0")
        net.ip(ha, "addr", "add", "2001:db8:f3::1/64", "dev", "cn0", "nodad")
        net.ip(cn, "addr", "add", "2001:db8:f3::2/64", "dev", "eth0", "nodad")
        net.ip(cn, "-6", "route", "add", "2001:db8:aa::/64", "via", "2001:db8:f3::1")
        net.ip(ha, "link", "add", "home", "type", "bridge")
        net.ip(ha, "link", "set", "home", "up")
        net.ip(ha, "addr", "add", "2001:db8:aa::1/64", "dev", "home", "nodad")
        key = secrets.token_bytes(16)
        nai = b"bench@example.test"
        keys = os.path.join(tmp, "keys.json")
        fd = os.open(keys, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"sas": [{"nai": nai.decode(), "spi": 4096, "key": key.hex(), "hoa": "2001:db8:aa::100"}]}, f)
        cfg = os.path.join(tmp, "ha.json")
        with open(cfg, "w") as f:
            json.dump({"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "ipv4": "198.18.1.2",
                       "tun": "r6tun", "keys_file": keys, "transports": ["udp4"]}, f)
        ha_proc = subprocess.Popen(["ip", "netns", "exec", ha, sys.executable, "-m", "roam6_host", "ha", "--config",
                                    cfg],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = ha_proc.stdout.readline()
        if '"ready"' not in line:
            raise RuntimeError("the HA did not start: %r" % line)
        ha_addr = socket.inet_pton(socket.AF_INET6, "2001:db8:aa::1")
        hoa = socket.inet_pton(socket.AF_INET6, "2001:db8:aa::100")
        cn_addr = socket.inet_pton(socket.AF_INET6, "2001:db8:f3::2")
        v4coa = socket.inet_aton("198.18.1.10")
        s4 = socket_in(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=("198.18.1.10", 0))
        scn = socket_in(cn, socket.AF_INET6, socket.SOCK_DGRAM, bind=("2001:db8:f3::2", 7000))
        dest = ("198.18.1.2", 4191)
        s4.settimeout(LIVE_WAIT_S)      # a lost answer ends the run with a message, not a hang
        scn.settimeout(LIVE_WAIT_S)

        bu_ba = []
        t_wall = time.time_ns() // 1_000_000
        bus = [build_bu(key, 4096, nai, hoa, ha_addr, seq & 0xFFFF, 150, "udp4", v4coa=v4coa,
                        timestamp=ntp_timestamp(t_wall, seq)) for seq in range(1, n + 1)]
        gc.collect()
        gc.disable()          # time the HA, not this process's collector
        for seq, bu in enumerate(bus, 1):
            t0 = time.perf_counter()
            s4.sendto(bu, dest)
            data = _answer(s4, "a BA for BU %d" % seq)
            bu_ba.append(time.perf_counter() - t0)
            if data[46] != 0:
                raise RuntimeError("BA status %d for BU %d" % (data[46], seq))

        reply = build_ipv6(hoa, cn_addr, 17, build_udp(5000, 7000, b"pong", src=hoa, dst=cn_addr))
        rtt = []
        for i in range(n):
            t0 = time.perf_counter()
            scn.sendto(b"ping", ("2001:db8:aa::100", 5000))
            _answer(s4, "ping %d at the MN" % i)    # downstream through the HA's TUN and UDP
            s4.sendto(reply, dest)                  # upstream through UDP and the TUN
            _answer(scn, "pong %d at the CN" % i)
            rtt.append(time.perf_counter() - t0)
        gc.enable()
        s4.close()
        scn.close()
        return {
            "live_n": n,
            "live_prefix": net.prefix,
            "live_bu_ba_us_median": round(statistics.median(bu_ba) * 1e6, 1),
            "live_bu_ba_us_p99": round(_pct(bu_ba, 0.99) * 1e6, 1),
            "live_rtt_via_ha_us_median": round(statistics.median(rtt) * 1e6, 1),
            "live_rtt_via_ha_us_p99": round(_pct(rtt, 0.99) * 1e6, 1),
        }
    finally:
        teardown(ha_proc, net, tmp)
