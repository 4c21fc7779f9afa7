"""Link adapter for MicroPython boards with a `network.WLAN` (ESP32, Pico W): polls, diffs, emits.

MicroPython's network module has no event callbacks, so the adapter compares the interface's
state with what it saw last (`isconnected()`, `ifconfig()` for IPv4 with the gateway and DNS —
or `ipconfig('addr4'/'gw4')` and `network.ipconfig('dns')` where ifconfig() is gone —,
`ipconfig('addr6')` for lwIP's IPv6 addresses) and turns differences into the events of
CONTRACTS.md §10.1. boards/esp32/link.py and boards/rp2040/link.py are thin wrappers; the IPv6
part (the Pico W's) is in the latter: the ESP32's WLAN has IPv4 only, and loads none of it.
"""


def _ip4(text):
    """Dotted-quad text (as the WLAN gives it) -> 4 bytes. Not roam6.wire.addr: on the ESP32 the
    node drops that module after start-up (roam6.node.app.trim), and this adapter stays."""
    b = bytes(map(int, text.split(".")))  # (map: a generator expression is one more code object)
    if len(b) != 4:
        raise ValueError(text)
    return b


class WlanLink:
    sock = None
    ifindex = 0
    ifname = None
    ipv6 = False  # IPv4 here; boards/rp2040/link.py adds lwIP's IPv6 addresses

    def __init__(self, wlan=None, period_ms=100):
        if wlan is None or isinstance(wlan, str):
            import network
            wlan = network.WLAN(network.STA_IF)
        self.wlan = wlan
        self.period_ms = period_ms
        try:
            self.mac = bytes(wlan.config("mac"))
        except (OSError, ValueError, TypeError):
            self.mac = bytes(6)
        self._up = None
        self._addrs = {}  # addr -> (family, plen, flags)
        self._gw = None
        self._dns = []
        self._ssid = None
        self.last_error = None

    def close(self):
        pass

    def dns_servers(self):
        return list(self._dns)

    def _snapshot(self):
        """(up, {addr: (family, plen, flags)}, gateway, ssid) as the interface has them now."""
        w = self.wlan
        up = bool(w.isconnected())
        addrs = {}
        if not up:
            return up, addrs, None, None
        try:
            ssid = w.config("ssid")
        except (OSError, ValueError, TypeError):
            ssid = None
        try:
            ip, mask, gwt, dns = w.ifconfig()
        except AttributeError:  # firmware where ifconfig() is gone: the newer ipconfig()
            ip, mask = w.ipconfig("addr4")
            gwt = w.ipconfig("gw4")
            import network
            dns = network.ipconfig("dns")
        if ip != "0.0.0.0":
            addrs[_ip4(ip)] = (4, bin(int.from_bytes(_ip4(mask), "big")).count("1"), 0)  # prefix length
        if dns != "0.0.0.0":
            self._dns = [_ip4(dns)]
        return up, addrs, (_ip4(gwt) if gwt != "0.0.0.0" else None), ssid

    def read(self):
        """Poll now -> events for what changed since the last call. A change of SSID between two
        polls counts as the link going down and up (the board joined another network)."""
        try:
            up, addrs, gw, ssid = self._snapshot()
        except (OSError, ValueError) as e:  # a driver hiccup: report nothing rather than crash the MN
            self.last_error = str(e)
            return []
        flap = up and self._up and ssid != self._ssid
        evs = []
        if self._up and (not up or flap):
            evs.append(("link", False))
        for a, (fam, plen, _fl) in self._addrs.items():
            if a not in addrs:
                evs.append(("addr", fam, a, plen, False, 0))
        for a, v in addrs.items():
            if self._addrs.get(a) != v:
                evs.append(("addr", v[0], a, v[1], True, v[2]))
        if gw != self._gw:
            evs.append(("router", 4, gw))
        if up and (not self._up or flap):
            evs.append(("link", True))  # last: movement then sees the new addresses at once
        elif not up and self._up is None:
            evs.append(("link", False))  # the first poll says where we are
        self._up, self._addrs, self._gw, self._ssid = up, addrs, gw, ssid
        return evs

    async def next_events(self):
        import asyncio
        while True:
            await asyncio.sleep(self.period_ms / 1000)
            evs = self.read()
            if evs:
                return evs

    # the first read() reports the whole state (its _up is None): start() is read() itself, not a
    # method of its own (each function's code object stays on the heap while the MN runs)
    start = read


class Keeper:
    """Re-joins a known network whenever the link is lost: a machine.Timer calls _tick, which
    schedules check(). Only this stays after boot (roam6.node.wifi joins, sets it up and is freed).
    nets: [(ssid, psk)]; schedule: micropython.schedule."""

    def __init__(self, wlan, nets, schedule):
        self.wlan = wlan
        self.nets = nets
        self.next = 0
        self.timer = None
        self.schedule = schedule
        self._check_ref = self.check  # bound once: schedule() from an IRQ must not allocate

    def check(self, _arg=None):
        # runs scheduled (not in the IRQ): a non-blocking connect to the next known network
        if self.wlan.isconnected() or not self.nets:
            return
        ssid, psk = self.nets[self.next % len(self.nets)]
        self.next += 1
        print("wifi: link lost, trying " + ssid)
        try:
            self.wlan.connect(ssid, psk)
        except OSError as e:
            print("wifi: connect failed: %s" % e)

    def _tick(self, _t):
        try:
            self.schedule(self._check_ref, None)
        except RuntimeError:  # schedule queue full: try again next period
            pass
