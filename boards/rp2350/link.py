"""Pico 2 W (RP2350) link adapter, the Pico W's (the same CYW43 chip and lwIP): polls network.WLAN,
IPv4 from ifconfig() and the lwIP IPv6 addresses (SLAAC) from ipconfig('addr6'). See
roam6.node.wlanlink and CONTRACTS.md §10.1.
The IPv6 part is here, not in roam6.node.wlanlink: the ESP32 (IPv4 only) loads none of it."""
from roam6.compat import const
from roam6.node.wlanlink import WlanLink
from roam6.wire.addr import ip6_from_text

# lwIP ip6_addr state bits -> the kernel IFA_F_* flags roam6.core.movement understands
_LW_TENTATIVE = const(0x08)
_LW_VALID = const(0x10)
_LW_PREFERRED = const(0x30)
_LW_DUPLICATED = const(0x40)


def _flags6(state):
    if state & _LW_DUPLICATED:
        return 0x08  # dadfailed
    if state & _LW_TENTATIVE:
        return 0x40  # tentative
    if state & _LW_PREFERRED == _LW_VALID:
        return 0x20  # deprecated: valid but no longer preferred
    return 0


class Link(WlanLink):
    ipv6 = True

    def _snapshot(self):
        snap = WlanLink._snapshot(self)
        if snap[0]:
            try:
                a6 = self.wlan.ipconfig("addr6")
            except (AttributeError, OSError, ValueError, TypeError):
                a6 = ()  # firmware without IPv6
            for entry in a6:
                snap[1][ip6_from_text(entry[0].split("%")[0])] = (6, 64, _flags6(entry[1]))
        return snap
