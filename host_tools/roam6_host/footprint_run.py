"""What the footprint runs share (bench_footprint: 64-bit unix port; bench_footprint32: the same
MN on a 32-bit runtime; bench_footprint_esp32: the ESP32's configuration there): the MN's config,
the in-process HA it registers with, running the MN until it has registered, the heap figures
read from its events, the ROMFS mount prelude, and the run's own network namespace.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

from .errors import UserError
from .procs import end

HEAP_GOAL = 32 * 1024
HA_V4 = "127.0.0.2"
HOA = "2001:db8:aa::100"
HA6 = "2001:db8:aa::1"
NAI = b"footprint@example.test"
SPI = 4096
HOME4_PREFIX = "198.18.50.0/24"
HOA4 = "198.18.50.100"


class FootprintHA:
    """The HA's sans-IO binding cache behind one UDP socket (no TUN: only registration is needed)."""

    def __init__(self, key, ipv4_hoa=False):
        from .ha.cache import BindingCache
        from .ha.sa import SA
        self.cache = BindingCache(socket.inet_pton(socket.AF_INET6, HA6), socket.inet_pton(socket.AF_INET6, HOA)[:8],
                                  {SPI: SA(NAI, SPI, key, None)})
        if ipv4_hoa:            # RFC 5555 IPv4 home addresses: one pool address, nothing persisted
            import ipaddress
            from .ha.ipv4home import IPv4Homes
            self.cache.v4homes = IPv4Homes(ipaddress.IPv4Network(HOME4_PREFIX), [ipaddress.IPv4Address(HOA4)])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((HA_V4, 4191))
        except OSError as e:
            raise UserError("cannot bind %s:4191 for the footprint's HA: %s" % (HA_V4, e.strerror),
                            hint="is another footprint run or HA using it?") from None
        self.sock.settimeout(0.2)
        self.stop = False
        self.bas = 0
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while not self.stop:
            try:
                data, (host, port) = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic_ns() // 1_000_000
            self.cache.receive(data, ("udp4", host, port), now, wall=time.time_ns() // 1_000_000)
            for out, (_transport, peer_host, peer_port) in self.cache.datagrams_to_send(now):
                self.sock.sendto(out, (peer_host, peer_port))
                self.bas += 1

    def close(self):
        self.stop = True
        self.t.join(2)
        self.sock.close()


def make_ha(key, ipv4_hoa=False, ipsec=False):
    """The in-process HA of a footprint run: FootprintHA, or with ipsec the IKEv2 + ESP stand-in."""
    if ipsec:
        from .footprint_ipsec import IpsecFootprintHA
        return IpsecFootprintHA(key, NAI, HA_V4, HA6, HOA)
    return FootprintHA(key, ipv4_hoa)


def events_of(lines):
    out = []
    for line in list(lines):
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def write_config(path, key, state_file, ipv4_hoa=False, ipsec=False):
    """The MN's config.json for the footprint runs (static, udp4 to the in-process HA); returns path.
    ipv4_hoa: the MN asks for an IPv4 home address too (RFC 5555, "ipv4_hoa": "0.0.0.0"); "tlv": and
    the TLV header on udp4 ("ipv4_tlv_header": true).
    ipsec: "security": "ipsec" with `key` as the IKEv2 PSK (the HA: make_ha(key, ..., ipsec=True))."""
    cfg = {"nai": NAI.decode(), "spi": SPI, "key": key.hex(), "hoa": HOA, "home_prefix": "2001:db8:aa::/64",
           "ha": HA6, "ha_ipv4": HA_V4, "bootstrap": ["static"], "transports": ["udp4"], "lifetime": 600,
           "timestamps": True, "state_file": state_file}
    if ipv4_hoa:
        cfg["ipv4_hoa"] = "0.0.0.0"
    if ipv4_hoa == "tlv":               # and the RFC 5555 TLV header on udp4 (node/tlvhdr.py)
        cfg["ipv4_tlv_header"] = True
    if ipsec:
        cfg.update(security="ipsec", psk=key.hex())
        for k in ("spi", "key", "timestamps"):
            del cfg[k]
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def registered(events):
    """True once the MN has registered and logged its heap after that (what the figures need)."""
    reg = [e for e in events if e.get("ev") == "registered"]
    return bool(reg) and any(e.get("ev") == "heap" and e.get("t_ms", -1) >= reg[0]["t_ms"] for e in events)


def run_until(cmd, cwd, timeout, until, env=None):
    """Run cmd, collecting its output lines until until(events) or it exits or timeout; the process
    is always ended. Returns (events, lines)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env)
    lines = []
    try:
        t = threading.Thread(target=lambda: [lines.append(x) for x in proc.stdout], daemon=True)
        t.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until(events_of(lines)) or proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        end(proc)
        t.join(2)
    return events_of(lines), lines


def heap_figures(events, lines, heap, what):
    reg = [i for i, e in enumerate(events) if e.get("ev") == "registered"]
    if not reg:
        tail = "".join(lines[-8:]).strip()
        raise UserError("the MN (%s) did not register under -X heapsize=%s:\n%s" % (what, heap, tail),
                        hint="try --heap 96K to see whether it is the heap size", exit_code=1)
    # in the order the MN printed them (several can share a millisecond)
    before = [e for e in events[:reg[0]] if e.get("ev") == "heap"]
    after = [e for e in events[reg[0]:] if e.get("ev") == "heap"]
    used = after[0]["alloc"] if after else None
    start = [e for e in events if e.get("ev") == "start"]
    code = start[0].get("heap") if start else None
    ba = [e for e in events if e.get("ev") == "ba"]
    out = {
        "heap_in_use_after_registration": used,
        "heap_free_after_registration": after[0]["free"] if after else None,
        "heap_in_use_before_first_bu": before[-1]["alloc"] if before else None,
        "runtime_bytes": (used - before[-1]["alloc"]) if (used is not None and before) else None,
        # the node logs gc.mem_alloc() as it is created, after every module it runs is loaded
        # (and the start-up code dropped): what code, qstrs and the packet buffers hold
        "heap_code_and_buffers": code,
        "heap_node_state_bytes": (used - code) if (used is not None and code) else None,
        "heap_goal_met": used is not None and used <= HEAP_GOAL,
        "bu_ba_ms": ba[-1].get("bu_ba_ms") if ba else None,
    }
    ike = [e for e in events if e.get("ev") == "ike" and e.get("state") == "up"]
    if ike:                     # security ipsec: IKE_SA_INIT + IKE_AUTH as the MN timed it
        out["ike_handshake_ms"] = ike[0].get("handshake_ms")
    return out


def rom_prelude(path):
    """MicroPython lines mounting the ROMFS image file `path` at /rom, first on sys.path (as a
    board's firmware mounts its partition), and logging the image's size."""
    return ("import sys, vfs\nwith open(%r, 'rb') as f:\n    _img = f.read()\n"
            "vfs.mount(vfs.VfsRom(_img), '/rom')\nsys.path.insert(0, '/rom')\n"
            "print('{\"ev\": \"romfs\", \"image\": %%d}' %% len(_img))\ndel _img\n" % path)


NETNS_ENV = "ROAM6_FOOTPRINT_NETNS"


def in_own_netns(module, argv, timeout):
    """As root, run `python -m module argv` in a network namespace of its own (`unshare --net`,
    loopback up) and return the JSON it prints: the footprint's HA on 127.0.0.2:4191 and the link
    adapter's veth pair are seen by nothing else, two runs at once do not collide, and a killed run
    leaves nothing in the root namespace. None: run right here (not root, no unshare, or inside)."""
    if os.geteuid() != 0 or os.environ.get(NETNS_ENV) or not shutil.which("unshare"):
        return None
    cmd = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", sys.executable, "-m", module]
    p = subprocess.run(cmd + list(argv), capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, **{NETNS_ENV: "1"}))
    if p.returncode != 0:
        msg = (p.stderr.strip() or p.stdout.strip() or "exit status %d" % p.returncode).splitlines()
        raise UserError("the footprint run failed: %s" % "\n".join(msg[-12:]), exit_code=1)
    return json.loads(p.stdout)


def output_tail(lines):
    """The last three non-empty lines a run printed, on one line (up to 300 characters)."""
    return " | ".join(x.strip() for x in lines[-3:] if x.strip())[-300:] or "no output"
