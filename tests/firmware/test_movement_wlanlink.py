"""The ESP32 / Pico W link adapters (roam6.node.wlanlink, boards/esp32|rp2040/link.py).

There is no ESP32 or Pico W here, so these tests drive the adapters with a STAND-IN for
MicroPython's network.WLAN that returns the documented shapes: isconnected(), ifconfig() ->
(ip, mask, gateway, dns) as text, ipconfig('addr6') -> [(addr, lwIP state, preferred, valid)],
config('mac'/'ssid'). What a real chip does between polls is not covered.
"""
from support import unhex
from roam6.node.wlanlink import WlanLink
from roam6.core.movement import Movement

BOARDS = (__file__.rsplit("/", 1)[0] if "/" in __file__ else ".") + "/../../boards/"


class StandInWLAN:
    def __init__(self):
        self.connected = False
        self.ip = ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        self.addr6 = []
        self.ssid = "apB"

    def isconnected(self):
        return self.connected

    def ifconfig(self):
        return self.ip

    def ipconfig(self, key):
        assert key == "addr6"
        return self.addr6

    def config(self, key):
        return {"mac": b"\x24\x0a\xc4\x00\x00\x01", "ssid": self.ssid}[key]

    def join(self, ssid, ip, gw, addr6=()):
        self.connected, self.ssid = True, ssid
        self.ip = (ip, "255.255.255.0", gw, gw)
        self.addr6 = list(addr6)


def board_link(name):
    ns = {}
    with open(BOARDS + name + "/link.py") as f:
        exec(f.read(), ns)
    return ns["Link"]


def test_first_poll_then_join_gives_address_router_and_link_up_last():
    w = StandInWLAN()
    lk = board_link("esp32")(w)
    assert lk.mac == unhex("240ac4000001") and lk.sock is None and lk.period_ms == 100
    assert lk.start() == [("link", False)]
    assert lk.read() == []
    w.join("apB", "192.0.2.100", "192.0.2.1")
    assert lk.read() == [("addr", 4, unhex("c0000264"), 24, True, 0), ("router", 4, unhex("c0000201")), ("link", True)]
    assert lk.dns_servers() == [unhex("c0000201")]
    assert lk.read() == []


def test_esp32_ignores_ipv6_and_rp2040_maps_lwip_states():
    w = StandInWLAN()
    a6 = [("fe80::1%wl0", 0x30, 0, 0), ("2001:db8:c1::99", 0x08, 0, 0), ("2001:db8:c1::5", 0x30, 600, 900),
          ("2001:db8:c1::6", 0x10, 0, 900), ("2001:db8:c1::7", 0x40, 0, 0)]
    w.join("apC", "198.51.100.100", "198.51.100.1", a6)
    assert [e[1] for e in board_link("esp32")(w).start() if e[0] == "addr"] == [4]
    evs = board_link("rp2040")(w).start()
    flags = dict((e[2], e[5]) for e in evs if e[0] == "addr" and e[1] == 6)
    assert flags == {unhex("fe800000000000000000000000000001"): 0, unhex("20010db800c100000000000000000099"): 0x40,
                     unhex("20010db800c100000000000000000005"): 0, unhex("20010db800c100000000000000000006"): 0x20,
                     unhex("20010db800c100000000000000000007"): 0x08}


def test_roam_to_other_ssid_between_polls_is_a_flap_and_movement_follows():
    w = StandInWLAN()
    lk = board_link("esp32")(w)
    mv = Movement(["udp4"])
    w.join("apB", "192.0.2.100", "192.0.2.1")
    ds = [mv.feed(e, 0) for e in lk.start()]
    assert ds[-1] == ("moved", unhex("c0000264"), "udp4")
    w.join("apC", "198.51.100.100", "198.51.100.1")  # re-associated and DHCP done before the next poll
    evs = lk.read()
    assert evs[0] == ("link", False) and evs[-1] == ("link", True)
    ds = [d for d in (mv.feed(e, 1) for e in evs) if d]
    assert ds == [("detached", None, None), ("moved", unhex("c6336464"), "udp4")]
    w.join("apC", "198.51.100.100", "198.51.100.1")  # same network, same address: nothing
    assert lk.read() == []


def test_same_address_on_another_network_still_moves():
    w = StandInWLAN()
    lk = WlanLink(w)
    mv = Movement(["udp4"])
    w.join("home-wifi", "192.168.1.20", "192.168.1.1")
    for e in lk.start():
        mv.feed(e, 0)
    w.join("cafe-wifi", "192.168.1.20", "192.168.1.1")  # NAT networks often look alike
    ds = [d for d in (mv.feed(e, 1) for e in lk.read()) if d]
    assert ds == [("detached", None, None), ("moved", unhex("c0a80114"), "udp4")]


def test_disconnect_removes_addresses_and_driver_errors_do_not_escape():
    w = StandInWLAN()
    lk = WlanLink(w)
    w.join("apB", "192.0.2.100", "192.0.2.1")
    lk.start()
    w.connected = False
    assert lk.read() == [("link", False), ("addr", 4, unhex("c0000264"), 24, False, 0), ("router", 4, None)]

    class Broken(StandInWLAN):
        def ifconfig(self):
            raise OSError(5)

    b = Broken()
    b.connected = True
    lk = WlanLink(b)
    assert lk.read() == [] and "5" in lk.last_error


def test_firmware_without_ifconfig_uses_ipconfig():
    import sys

    class NewWLAN:  # a WLAN of newer firmware: ipconfig() only, no ifconfig()
        def isconnected(self):
            return True

        def config(self, key):
            return {"mac": b"\x24\x0a\xc4\x00\x00\x02", "ssid": "apB"}[key]

        def ipconfig(self, key):
            return {"addr4": ("192.0.2.100", "255.255.255.0"), "gw4": "192.0.2.1", "addr6": []}[key]

    class StandInNetwork:  # stand-in for the `network` module's global ipconfig('dns')
        @staticmethod
        def ipconfig(key):
            assert key == "dns"
            return "192.0.2.53"

    sys.modules["network"] = StandInNetwork
    try:
        lk = WlanLink(NewWLAN())
        evs = lk.start()
    finally:
        del sys.modules["network"]
    assert evs == [("addr", 4, unhex("c0000264"), 24, True, 0), ("router", 4, unhex("c0000201")), ("link", True)]
    assert lk.dns_servers() == [unhex("c0000235")]
