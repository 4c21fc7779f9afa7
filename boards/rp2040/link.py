"""Pico W (RP2040) link adapter: polls network.WLAN, IPv4 from ifconfig() and the lwIP IPv6
addresses (SLAAC) from ipconfig('addr6'). See roam6.core.wlanlink and CONTRACTS.md §10.1."""
from roam6.core.wlanlink import WlanLink


class Link(WlanLink):
    ipv6 = True
