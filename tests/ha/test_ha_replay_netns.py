"""Over the ip6 transport the HA reads BUs from a packet socket, which can see one frame twice (a
bridge and its port, a veth pair): it folds those copies, and only those. A byte-for-byte replay of
an accepted BU, sent again shortly after the original, is a second transmission: RFC 6275 §9.5.1
answers it with BA 135 (the sequence number is not greater), it is never swallowed."""
import socket
import time

from ha_helpers import HA, HOA, KEY, NAI, SPI, a6, build_bu, ntp_timestamp, parse_ba
from test_ha_netns import MN6, bench, wall_ms  # noqa: F401  (bench: the namespaces and the real HA)

ETH_P_IPV6 = 0x86DD


def _bas(pk, coa, want, timeout=3, drain=True):
    """The BAs (type 2 RH to coa) read from the packet socket until `want` came or timeout."""
    out = []
    end = time.monotonic() + timeout
    while time.monotonic() < end and len(out) < want:
        try:
            data, addr = pk.recvfrom(4096)
        except socket.timeout:
            continue
        if addr[2] == 0 and len(data) > 40 and data[6] == 43 and data[24:40] == coa:
            out.append(parse_ba(data, mac_coa=coa)[1])
    if not drain:
        return out
    # anything else that would come (a second answer to one transmission) within a short while
    pk.settimeout(0.3)
    try:
        while True:
            data, addr = pk.recvfrom(4096)
            if addr[2] == 0 and len(data) > 40 and data[6] == 43 and data[24:40] == coa:
                out.append(parse_ba(data, mac_coa=coa)[1])
    except socket.timeout:
        pass
    return out


def test_replayed_ip6_bu_gets_135_and_each_transmission_one_answer(bench):  # noqa: F811
    n, hap, (ha, mn, cn, hm) = bench
    raw = n.socket(mn, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    pk = n.socket(mn, socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6), timeout=0.2)
    coa = a6(MN6)
    first = build_bu(KEY, SPI, NAI, HOA, HA, 6, 150, "ip6", coa=coa, timestamp=None)
    raw.sendto(first, ("2001:db8:aa::1", 0))             # the first binding (after the HA's DAD wait)
    assert [(b.status, b.seq) for b in _bas(pk, coa, 1)] == [(0, 6)]
    bu = build_bu(KEY, SPI, NAI, HOA, HA, 7, 150, "ip6", coa=coa, timestamp=None)
    raw.sendto(bu, ("2001:db8:aa::1", 0))                # a refresh: answered at once
    [ba] = _bas(pk, coa, 1, drain=False)
    assert ba.status == 0 and ba.seq == 7
    for delay in (0.0, 0.05):                   # the same bytes again, at once and 50 ms later
        time.sleep(delay)
        raw.sendto(bu, ("2001:db8:aa::1", 0))
        bas = _bas(pk, coa, 1, drain=delay > 0)
        assert [(b.status, b.seq) for b in bas] == [(135, 7)], [(b.status, b.seq) for b in bas]
    # a fresh BU still works, answered once (the frame's copies, if the capture saw any, folded)
    bu2 = build_bu(KEY, SPI, NAI, HOA, HA, 8, 150, "ip6", coa=coa, timestamp=ntp_timestamp(wall_ms(), 8))
    raw.sendto(bu2, ("2001:db8:aa::1", 0))
    assert [(b.status, b.seq) for b in _bas(pk, coa, 1)] == [(0, 8)]
    raw.close()
    pk.close()



def test_capture_copies_folds_only_copies_of_one_frame():
    from roam6_host.pktsock import CaptureCopies
    c = CaptureCopies(window_ms=100)
    bu = b"\x60" + bytes(60)
    assert not c.is_copy(bu, "up0", 1_000, 0)
    assert c.is_copy(bu, "home", 1_000, 0)              # the same skb on a second tap: folded
    assert not c.is_copy(bu, "up0", 2_000, 1)           # the same bytes sent again: its own timestamp
    assert not c.is_copy(bu, "up0", 3_000, 500)
    # no timestamps: another interface within the window is a copy, the same interface never is
    c = CaptureCopies(window_ms=100)
    assert not c.is_copy(bu, "up0", None, 0)
    assert c.is_copy(bu, "home", None, 1)
    assert not c.is_copy(bu, "up0", None, 2)
    assert not c.is_copy(bu, "home", None, 300)         # outside the window
    assert c.folded == 1


def test_payload_proto_not_59_gets_parameter_problem_over_udp4_and_ip6(bench):  # noqa: F811
    """RFC 6275 §9.2 through the real HA: over udp4 the ICMPv6 error is the inner packet of a UDP
    datagram back to the MN's outer address; over ip6 a plain ICMPv6 packet to the source address."""
    import struct

    from roam6.wire.checksum import checksum6
    from roam6.wire.ipv6 import decode_ipv6
    from test_ha_netns import MN4, V4COA

    def proto58(pkt, off):
        b = bytearray(pkt)
        b[off] = 58
        b[off + 4:off + 6] = b"\0\0"
        b[off + 4:off + 6] = struct.pack(">H", checksum6(HOA, HA, 135, bytes(b[off:])))
        return bytes(b)

    n, hap, (ha, mn, cn, hm) = bench
    s4 = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
    bu = build_bu(KEY, SPI, NAI, HOA, HA, 1, 150, "udp4", v4coa=V4COA, timestamp=ntp_timestamp(wall_ms(), 1))
    s4.sendto(proto58(bu, 40), ("198.18.1.2", 4191))
    data, src = s4.recvfrom(2048)
    p = decode_ipv6(data)
    assert src == ("198.18.1.2", 4191) and p.nh == 58 and p.src == HA and p.dst == HOA
    icmp = bytes(p.payload)
    assert icmp[0] == 4 and icmp[1] == 0 and struct.unpack(">I", icmp[4:8])[0] == 40
    raw = n.socket(mn, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    pk = n.socket(mn, socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6), timeout=0.3)
    coa = a6(MN6)
    bu6 = build_bu(KEY, SPI, NAI, HOA, HA, 2, 150, "ip6", coa=coa, timestamp=ntp_timestamp(wall_ms(), 2))
    raw.sendto(proto58(bu6, 64), ("2001:db8:aa::1", 0))
    got = None
    end = time.monotonic() + 3
    while time.monotonic() < end and got is None:
        try:
            data, addr = pk.recvfrom(4096)
        except socket.timeout:
            continue
        if addr[2] == 0 and len(data) > 48 and data[6] == 58 and data[40] == 4 and data[41] == 0:
            got = data
    assert got is not None, "no ICMPv6 Parameter Problem (code 0) for the ip6 BU"
    assert got[8:24] == HA and got[24:40] == coa and struct.unpack(">I", got[44:48])[0] == 64
    assert hap.proc.poll() is None
    for s in (s4, raw, pk):
        s.close()
