"""Access points the host runs itself: hostapd on the host's Wi-Fi card, for an [[ap]] of
`kind = "hostapd"` in the bench file (CONTRACTS §8.3).

    check(bench)                 # UserError, host untouched: hostapd missing, an interface not wireless
    conf(ap, ctrl_dir)           # the hostapd.conf text of one AP (WPA2-PSK, its SSID and channel)
    plan(hb)                     # one daemon per hostapd AP, for HostBench (started before radvd & co.)

Each AP gets its own hostapd (one per card: an [[ap]] names one interface) with a generated
config in the bench's work folder; `hil down` stops it with the other processes. The addressing
(radvd, Kea, dnsmasq, NAT) is then the same as for an AP in bridge mode behind a port: the
interface hostapd serves carries the AP's router addresses.
"""
import os
import shutil

from roam6_host.errors import UserError

from . import daemons


def find(ap):
    """The hostapd binary an AP names (bench file `hostapd`, default "hostapd" on PATH or /usr/sbin)."""
    name = ap.get("hostapd") or "hostapd"
    if os.sep in name:
        return name if os.access(name, os.X_OK) else None
    found = shutil.which(name)
    if found:
        return found
    return "/usr/sbin/" + name if os.access("/usr/sbin/" + name, os.X_OK) else None


def is_wireless(iface):
    """A Wi-Fi interface: the kernel's cfg80211 gives it a phy80211 link (and wireless/ for WEXT)."""
    base = os.path.join("/sys/class/net", iface)
    return os.path.exists(os.path.join(base, "phy80211")) or os.path.isdir(os.path.join(base, "wireless"))


def check(bench):
    for ap in bench["aps"]:
        if ap["kind"] != "hostapd":
            continue
        if find(ap) is None:
            raise UserError("%s not found: [[ap]] %s is an access point the host runs itself"
                            % (ap.get("hostapd") or "hostapd", ap["ssid"]),
                            hint="apt-get install hostapd (deps/apt.txt), or give its path: hostapd = \"/path\"")
        if not is_wireless(ap["interface"]):
            raise UserError("%s is not a wireless interface: [[ap]] %s has kind = \"hostapd\", which needs a "
                            "Wi-Fi card that can be an access point" % (ap["interface"], ap["ssid"]),
                            hint="an AP of its own in bridge mode behind a port or VLAN is kind = \"bridge\"; "
                                 "`iw list` shows whether a card supports AP mode")


def conf(ap, ctrl_dir):
    channel = ap.get("channel") or 6
    lines = ["interface=%s" % ap["interface"], "driver=nl80211", "ctrl_interface=%s" % ctrl_dir,
             "ssid=%s" % ap["ssid"], "hw_mode=%s" % ("a" if channel > 14 else "g"), "channel=%d" % channel,
             "ieee80211n=1", "wmm_enabled=1", "auth_algs=1", "wpa=2", "wpa_key_mgmt=WPA-PSK",
             "rsn_pairwise=CCMP", "wpa_passphrase=%s" % ap["psk"]]
    if ap.get("country"):
        lines += ["country_code=%s" % ap["country"], "ieee80211d=1"]
    return "\n".join(lines) + "\n"


class Hostapd(daemons.Daemon):
    """Ready once hostapd says the AP is up (it has no socket of its own to watch)."""

    def is_ready(self):
        try:
            with open(os.path.join(self.workdir, "output.log"), errors="replace") as f:
                return "AP-ENABLED" in f.read()
        except OSError:
            return False


def plan(hb):
    out = []
    for ap in hb.spec["aps"]:
        if ap["kind"] != "hostapd":
            continue
        d = hb.path("hostapd-%s" % ap["interface"])
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "hostapd.conf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)       # it holds the PSK
        with os.fdopen(fd, "w") as f:
            f.write(conf(ap, os.path.join(d, "ctrl")))
        out.append(Hostapd("hostapd", ap["interface"], [find(ap), path], [], d))
    return out
