"""The kernel filter on the HA's shared UDP listeners (ha/listenfilter.py), on real loopback
sockets: a payload that is not IPv6 with a whole header never reaches the socket; IPv4 payloads
only with RFC 5555 IPv4 home addresses; anything that may be roam6 passes whole."""
import socket

import pytest

from roam6_host.ha.listenfilter import filter_listener

CASES = [b"", b"\x60", b"\x60" + bytes(38), b"\x45" + bytes(30), b"\x40", b"\x00" * 60, b"\xff" * 60,
         b"\x60" + bytes(39), b"\x6f" + bytes(100), b"\x60" + bytes(1399), b"\x01\x00\x14\x00" + bytes(20)]


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
    if ipv4:        # IPv4 payloads and TLV frames (RFC 5555 IPv4 home addresses)
        want = [b"\x45" + bytes(30), b"\x40"] + want + [b"\x01\x00\x14\x00" + bytes(20)]
    assert got == want


def _bu(spi, seq=1):
    from roam6_host.ha.bugen import build_bu, ntp_timestamp
    return build_bu(bytes(16), spi, b"a@example.test", HOA, HA, seq, 150, "udp4", v4coa=socket.inet_aton("192.0.2.1"),
                    timestamp=ntp_timestamp(1_700_000_000_000, seq))


HA = socket.inet_pton(socket.AF_INET6, "2001:db8:aa::1")
HOA = socket.inet_pton(socket.AF_INET6, "2001:db8:aa::100")


def _count(r, s, data, n):
    for _ in range(n):
        s.sendto(data, r.getsockname())
    got = 0
    while True:
        try:
            r.recv(4096)
            got += 1
        except socket.timeout:
            return got


def test_shield_drops_unknown_spi_bus_in_the_kernel_while_a_flood_lasts():
    """Known SPIs (450 of them: three compare blocks), data and short datagrams pass whatever the
    shield does; unknown-SPI BUs pass until THRESHOLD of them in a second switch the shield on,
    then 1 in SAMPLE, until HOLD_MS of quiet."""
    from roam6_host.ha import listenfilter as lf
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    lines = []
    try:
        r.bind(("127.0.0.1", 0))
        r.settimeout(0.1)
        assert lf.filter_listener(r) is None
        spis = list(range(4096, 4096 + 450))
        sh = lf.Shield([r], HA, spis, False, lambda ev, **f: lines.append((ev, f)))
        assert _count(r, s, _bu(9999), 100) == 100              # off: the HA sees them all
        for t in range(lf.THRESHOLD - 1):
            sh.unknown_spi(1000 + t)
        assert not sh.on
        sh.unknown_spi(1500)
        assert sh.on and sh.get_timer() == 1500 + lf.HOLD_MS and lines[-1][0] == "flood_shield"
        unknown = _count(r, s, _bu(9999), 1280)
        assert 0 < unknown < 1280 * 4 // lf.SAMPLE, unknown            # ~20 expected
        for spi in (4096, 4096 + 199, 4096 + 200, 4096 + 449):
            assert _count(r, s, _bu(spi), 50) == 50, spi
        assert _count(r, s, b"\x60" + bytes(100), 50) == 50          # not a BU: the HA decides
        bad_proto = bytearray(_bu(9999))
        bad_proto[40] = 58                                           # Payload Proto 58: its Param Problem is the HA's
        assert _count(r, s, bytes(bad_proto), 50) == 50
        assert _count(r, s, b"\x45" + bytes(60), 20) == 0             # no IPv4 HoAs: still the basic rule
        # messages only an MN takes, sent to the HA: BRR, BA, BE dropped too (1 in SAMPLE kept);
        # an unknown MH type (the HA answers BE 2), a BA below its minimum Header Len (Parameter
        # Problem) and a BRR to another address (the HA's data path) still reach the HA
        from roam6.wire.ipv6 import build_ipv6
        from roam6_codec.mh import BindingAck, BindingError, BindingRefreshRequest, UnknownMH
        mn = HOA
        def mh(msg, dst=HA):
            return build_ipv6(mn, dst, 135, msg.encode(src=mn, dst=dst))
        for msg in (BindingRefreshRequest(), BindingAck(0, 0, 1, 10), BindingError(1, mn)):
            assert _count(r, s, mh(msg), 640) < 640 * 4 // lf.SAMPLE, msg
        assert _count(r, s, mh(UnknownMH(200, bytes(10))), 50) == 50
        short_ba = bytearray(mh(BindingAck(0, 0, 1, 10)))
        short_ba[41] = 0                                             # Header Len 0 < 1
        assert _count(r, s, bytes(short_ba), 50) == 50
        other = socket.inet_pton(socket.AF_INET6, "2001:db8:aa::9")
        assert _count(r, s, mh(BindingRefreshRequest(), other), 50) == 50
        sh.handle_timer(1500 + lf.HOLD_MS - 1)
        assert sh.on
        sh.handle_timer(1500 + lf.HOLD_MS)
        assert not sh.on and sh.get_timer() is None
        assert _count(r, s, _bu(9999), 100) == 100
    finally:
        r.close()
        s.close()
