"""A classic BPF filter on the HA's shared UDP 4191 listeners: what can never be roam6 traffic is
dropped in the kernel, before it costs the HA a wakeup, a recvfrom and a Python round.

roam6 carries IPv6 in UDP (RFC 5555; with RFC 5555 IPv4 home addresses also IPv4, ha/ipv4home.py),
so the driver's first test on every datagram is the payload's version nibble and, for IPv6, a
whole 40-byte header (ha/driver.py `_on_udp`). The filter makes that same test in the kernel: on
a UDP socket the program sees the datagram from its UDP header on, the payload at offset 8.

    ldb [8]; and #0xf0            version nibble of the payload (a datagram of < 9 bytes: drop)
    jeq #0x60 -> ld len; jge #48  IPv6 with a whole header: keep
    jeq #0x40                     IPv4 (only with IPv4 home addresses): keep
    else drop

Random datagrams (one of the floods of `roam6 bench attack`) mostly die here: the kernel counts
them as the socket's drops (`/proc/net/udp` drops, Udp InErrors), not the HA's log. The per-MN
sockets (ha/peersocks.py) carry no filter: only a bound MN's peer address reaches them, and they
keep the driver's own test.
"""
from ..pktsock import attach_filter

_NEVER = 0x100        # a version byte & 0xf0 never equals this: IPv4 refused


def listener_program(ipv4=False):
    """The filter as [(op, jt, jf, k)]; `ipv4` keeps IPv4 payloads (RFC 5555 IPv4 home addresses)."""
    return [(0x30, 0, 0, 8),                   # A = payload[0]
            (0x54, 0, 0, 0xF0),                # A &= 0xf0
            (0x15, 0, 2, 0x60),                # IPv6? -> next, else -> the IPv4 test
            (0x80, 0, 0, 0),                   # A = datagram length (UDP header included)
            (0x35, 1, 2, 8 + 40),              # a whole IPv6 header -> keep, else drop
            (0x15, 0, 1, 0x40 if ipv4 else _NEVER),
            (0x06, 0, 0, 0xFFFFFFFF),          # keep, whole
            (0x06, 0, 0, 0)]                   # drop


def filter_listener(sock, ipv4=False):
    """Attach listener_program(ipv4) to a UDP socket; returns None, or why it could not be."""
    try:
        attach_filter(sock, listener_program(ipv4))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
