"""A private strongSwan charon in a network namespace: the independent IKEv2/ESP peer of the tests
and of `roam6 bench ipsec`.

charon's pid file path is compiled in (/var/run/charon.pid), so each instance gets its own mount
namespace with a private /run (`unshare -m` + a bind mount); its VICI socket and log live in a work
directory. Plugins are listed explicitly (`load_modular = no`): openssl gives X25519 (IKEv2 group
31), kernel-libipsec the userspace ESP (the kernels here have no ESP; it does tunnel mode only and
always encapsulates in UDP 4500). The log has `ike = 4` and `chd = 4`: the IKE and ESP keys, which
the tests compare with roam6's derivation.
"""
import os
import re
import shutil
import subprocess
import time

PACKAGES = "strongswan-charon strongswan-swanctl libcharon-extra-plugins"
CHARON = "/usr/lib/ipsec/charon"
PLUGINS = ("random nonce openssl aes sha1 sha2 hmac kdf pem pkcs1 x509 pubkey revocation constraints "
           "kernel-libipsec kernel-netlink socket-default vici updown")


class SwanMissing(RuntimeError):
    pass


def require():
    """Raise SwanMissing naming the Debian packages when charon, swanctl or kernel-libipsec is absent."""
    missing = [p for p in (CHARON, "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so")
               if not os.path.exists(p)]
    if not shutil.which("swanctl"):
        missing.append("swanctl")
    if missing:
        raise SwanMissing("strongSwan is missing (%s): apt-get install %s" % (", ".join(missing), PACKAGES))


def ts_text(ts):
    return ",".join(ts)


class Charon:
    """charon in namespace `ns` (full name), configured as responder for one PSK peer.

    conn: dict with local_addrs, remote_addrs, local_id, remote_id, psk, local_ts, remote_ts,
    esp ("aes128-sha1"), ike ("aes128-sha1-x25519"), mode ("tunnel"/"transport"), pool (an
    address range handed out through the configuration payload; remote_ts "dynamic" with it),
    vips ("::": as initiator, ask for an address through the configuration payload), remote_port
    (4500: as initiator, start on the NAT-T port, RFC 7296 §2.23, as `roam6 ha` listens only there).
    """

    def __init__(self, ns, workdir, conn):
        require()
        self.ns, self.dir, self.conn = ns, workdir, conn
        os.makedirs(os.path.join(workdir, "run"), exist_ok=True)
        self.vici = os.path.join(workdir, "charon.vici")
        self.log = os.path.join(workdir, "charon.log")
        self.proc = None

    def _write(self):
        c = self.conn
        with open(os.path.join(self.dir, "strongswan.conf"), "w") as f:
            f.write("""charon {
  load_modular = no
  load = %s
  port = 500
  port_nat_t = 4500
  retransmit_tries = 2
  filelog {
    log {
      path = %s
      default = 1
      ike = 4
      chd = 4
      flush_line = yes
    }
  }
  plugins {
    vici { socket = unix://%s }
    kernel-libipsec { allow_peer_ts = yes }
  }
}
""" % (PLUGINS, self.log, self.vici))
        with open(os.path.join(self.dir, "swanctl.conf"), "w") as f:
            f.write("""connections {
  mn {
    version = 2
    local_addrs = %(local_addrs)s
    remote_addrs = %(remote_addrs)s
    proposals = %(ike)s
    %(pools_ref)s
    %(vips_line)s
    %(port_line)s
    local { auth = psk
            id = %(local_id)s }
    remote { auth = psk
             id = %(remote_id)s }
    children {
      mn {
        local_ts = %(local_ts)s
        remote_ts = %(remote_ts)s
        esp_proposals = %(esp)s
        mode = %(mode)s
      }
    }
  }
}
%(pools_def)s
secrets {
  ike-mn {
    id-1 = %(local_id)s
    id-2 = %(remote_id)s
    secret = "%(psk)s"
  }
}
""" % dict(dict(ike="aes128-sha1-x25519", esp="aes128-sha1", mode="tunnel"), **c,
           pools_ref="pools = p6" if c.get("pool") else "",
           vips_line="vips = %s" % c["vips"] if c.get("vips") else "",
           port_line="local_port = {0}\n    remote_port = {0}".format(c["remote_port"]) if c.get("remote_port") else "",
           pools_def="pools { p6 { addrs = %s } }" % c["pool"] if c.get("pool") else ""))

    def start(self, timeout=10.0):
        self._write()
        for stale in (self.vici, self.log):      # an earlier instance's, in the same work directory
            if os.path.exists(stale):
                os.unlink(stale)
        script = 'mount --bind "%s/run" /run && STRONGSWAN_CONF="%s/strongswan.conf" exec %s' % (
            self.dir, self.dir, CHARON)
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "unshare", "-m", "sh", "-c", script],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        end = time.monotonic() + timeout
        while not os.path.exists(self.vici):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("charon did not start; log:\n%s" % self.log_text()[-3000:])
            time.sleep(0.05)
        self.swanctl("--load-all", "--file", os.path.join(self.dir, "swanctl.conf"))
        return self

    def swanctl(self, *args, timeout=10):
        p = subprocess.run(["swanctl"] + list(args) + ["--uri", "unix://" + self.vici],
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode:
            raise RuntimeError("swanctl %s: %s%s" % (" ".join(args), p.stdout, p.stderr))
        return p.stdout

    def list_sas(self):
        return self.swanctl("--list-sas")

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def logged_keys(self):
        """{"Sk_ei secret": hex, ...} from the `ike = 4` log lines (charon prints each key as
        '<name> secret => N bytes @ ...' followed by hex dump lines)."""
        out = {}
        lines = self.log_text().splitlines()
        for i, line in enumerate(lines):
            m = re.search(r"(Sk_\w+|SKEYSEED|encryption key|integrity key)[^=]*=> (\d+) bytes", line)
            if not m:
                continue
            n, hexs = int(m.group(2)), ""
            for nxt in lines[i + 1:]:
                h = re.match(r".*?\s\d+: ((?:[0-9A-F]{2} ){1,16})", nxt)
                if not h:
                    break
                hexs += h.group(1).replace(" ", "")
                if len(hexs) >= 2 * n:
                    break
            out.setdefault(m.group(1), []).append(hexs[:2 * n].lower())
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)
                self.proc.wait(3)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, 9)
                except ProcessLookupError:
                    pass
                self.proc.wait(3)


class Pair:
    """Two namespaces PREFIX+"sw" (strongSwan) and PREFIX+"mn" joined by a veth, IPv4 10.19.0.1/.2,
    the responder's inner address on its loopback; removed by close() (with every process left in
    them). For `roam6 bench ipsec --live` (the tests use tests/nshelp.py)."""
    SW4, MN4, SW6, HOA = "10.19.0.1", "10.19.0.2", "2001:db8:19::1", "2001:db8:19::2"

    def __init__(self, prefix):
        self.sw, self.mn = prefix + "sw", prefix + "mn"
        self.made = []
        try:
            for ns in (self.sw, self.mn):
                self._ip("netns", "add", ns)
                self.made.append(ns)
                self._ip("-n", ns, "link", "set", "lo", "up")
            self._ip("link", "add", "eth0", "netns", self.sw, "type", "veth", "peer", "name", "eth0", "netns", self.mn)
            for ns, a in ((self.sw, self.SW4), (self.mn, self.MN4)):
                self._ip("-n", ns, "addr", "add", a + "/24", "dev", "eth0")
                self._ip("-n", ns, "link", "set", "eth0", "up")
            self._ip("-n", self.sw, "-6", "addr", "add", self.SW6 + "/128", "dev", "lo", "nodad")
        except Exception:
            self.close()
            raise

    @staticmethod
    def _ip(*args):
        p = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=10)
        if p.returncode:
            raise RuntimeError("ip %s: %s" % (" ".join(args), p.stderr.strip()))

    def close(self):
        for ns in self.made:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made = []
