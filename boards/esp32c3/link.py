"""ESP32-C3 link adapter: polls network.WLAN (MicroPython's esp32 port, which runs the ESP32-C3 too,
gives the WLAN IPv4 only, so the MN's transport there is udp4). See roam6.node.wlanlink and CONTRACTS.md §10.1."""
from roam6.node.wlanlink import WlanLink


class Link(WlanLink):
    ipv6 = False
