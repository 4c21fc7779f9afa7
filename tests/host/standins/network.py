"""Stand-in for MicroPython's `network` module on the unix port (no Wi-Fi chip here): a WLAN that
sees the networks in NETS, joins one when connect() gets its PSK, and drops the link when the
file DROP exists (the test creates it to play an AP going away)."""
import os

STA_IF = 0
NETS = [(b"apA", -70, "pwA"), (b"apB", -40, "pwB"), (b"other", -30, "x")]
# loopback addresses: the MN really binds its udp4 socket to the care-of address
ADDRS = {"apA": "127.0.0.2", "apB": "127.0.0.3"}
calls = []


class WLAN:
    def __init__(self, which=STA_IF):
        self.ssid = None
        self._active = False

    def active(self, on=None):
        if on is not None:
            self._active = on
        return self._active

    def scan(self):
        calls.append("scan")
        return [(s, b"\x00" * 6, 1, rssi, 3, False) for s, rssi, _p in NETS]

    def connect(self, ssid, psk):
        calls.append("connect " + ssid)
        print("standin: connect", ssid)
        self.ssid = None
        for s, _r, p in NETS:
            if s.decode() == ssid and p == psk:
                self.ssid = ssid

    def disconnect(self):
        self.ssid = None

    def isconnected(self):
        if self.ssid and _exists("DROP"):
            os.remove("DROP")
            print("standin: AP %s went away" % self.ssid)
            self.ssid = None
        return self.ssid is not None

    def status(self):
        return 3 if self.ssid else 0

    def ifconfig(self):
        if not self.isconnected():
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        ip = ADDRS.get(self.ssid, "203.0.113.9")
        return (ip, "255.255.255.0", ip.rsplit(".", 1)[0] + ".1", "0.0.0.0")

    def ipconfig(self, key):
        return []

    def config(self, key=None, **kw):
        if key == "mac":
            return b"\x02\x00\x00\x00\x00\x01"
        if key == "ssid":
            return self.ssid or ""
        return None


def _exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False
