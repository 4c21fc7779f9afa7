"""The kernel filter on the HA's shared UDP listeners (ha/listenfilter.py), on real loopback
sockets: a payload that is not IPv6 with a whole header never reaches the socket; IPv4 payloads
only with RFC 5555 IPv4 home addresses; anything that may be roam6 passes whole."""
import socket

import pytest

from roam6_host.ha.listenfilter import filter_listener

CASES = [b"", b"\x60", b"\x60" + bytes(38), b"\x45" + bytes(30), b"\x40", b"\x00" * 60, b"\xff" * 60,
         b"\x60" + bytes(39), b"\x6f" + bytes(100), b"\x60" + bytes(1399)]


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
@pytest.mark.parametrize("ipv4", [False, True])
def test_listener_filter_keeps_only_what_may_be_roam6(family, host, ipv4):
    r = socket.socket(family, socket.SOCK_DGRAM)
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        r.bind((host, 0))
        assert filter_listener(r, ipv4) is None
        r.settimeout(0.2)
        for c in CASES:
            s.sendto(c, r.getsockname())
        s.sendto(b"end", r.getsockname())       # 'e' = 0x65: version 6 but 3 bytes: dropped too
        s.sendto(b"\x60" + b"E" * 47, r.getsockname())
        got = []
        while True:
            d = r.recv(4096)
            if d == b"\x60" + b"E" * 47:
                break
            got.append(d)
    finally:
        r.close()
        s.close()
    want = [b"\x60" + bytes(39), b"\x6f" + bytes(100), b"\x60" + bytes(1399)]
    if ipv4:
        want = [b"\x45" + bytes(30), b"\x40"] + want
    assert got == want
