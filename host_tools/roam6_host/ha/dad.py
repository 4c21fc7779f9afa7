"""Duplicate Address Detection for a home address, on the home link (RFC 6275 §10.4.1, RFC 4862
§5.4): the HA's I/O half; the waiting and the BA are the binding cache's (cache.py).

The probe is a Neighbor Solicitation from the unspecified address to the HoA's solicited-node
multicast group, hop limit 255, no options. A node that owns the address answers with a Neighbor
Advertisement; one that is itself probing for it sends the same kind of NS: either is a conflict.
Both are read from one AF_PACKET socket bound to the home link whose BPF program passes only
ICMPv6 NS/NA, so the rest of the home link's traffic never wakes the HA. Frames this host sent
itself (its probe, the kernel's proxy-ND answers for bound HoAs) are skipped.
"""
import socket
import struct

from roam6.wire.checksum import checksum6
from roam6.wire.ipv6 import build_ipv6

from ..pktsock import ETH_P_IPV6, attach_filter

PACKET_OUTGOING = 4
ND_NS, ND_NA = 135, 136
UNSPECIFIED = bytes(16)
# ldb [6]; jeq 58 ? next : drop; ldb [40]; jeq 135 ? accept : next; jeq 136 ? accept : drop
ND_FILTER = [(0x30, 0, 0, 6), (0x15, 0, 4, 58), (0x30, 0, 0, 40), (0x15, 1, 0, ND_NS),
             (0x15, 0, 1, ND_NA), (0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0)]


def solicited_node(addr):
    """ff02::1:ffXX:XXXX of `addr` and its Ethernet group 33:33:ff:XX:XX:XX."""
    return b"\xff\x02" + bytes(9) + b"\x01\xff" + addr[13:], b"\x33\x33\xff" + addr[13:]


def probe(target):
    """(the NS packet, its destination MAC) probing for `target` (16 bytes)."""
    group, mac = solicited_node(target)
    ns = bytearray(struct.pack(">BBHI16s", ND_NS, 0, 0, 0, target))
    struct.pack_into(">H", ns, 2, checksum6(UNSPECIFIED, group, 58, ns))
    return build_ipv6(UNSPECIFIED, group, 58, bytes(ns), hop_limit=255), mac


class HomeLinkND:
    """The home link's NS/NA, for DAD: send(hoa) probes, claimed() yields the addresses other
    nodes answered for or probed for since the last call."""

    def __init__(self, ifname):
        self.ifname = ifname
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))
        try:
            attach_filter(self.sock, ND_FILTER)
            self.sock.bind((ifname, ETH_P_IPV6))
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise

    def fileno(self):
        return self.sock.fileno()

    def send(self, hoa):
        pkt, mac = probe(hoa)
        self.sock.sendto(pkt, (self.ifname, ETH_P_IPV6, 0, 0, mac))

    def claimed(self, budget=64):
        for _ in range(budget):
            try:
                data, addr = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == PACKET_OUTGOING or len(data) < 64 or data[6] != 58:
                continue
            kind = data[40]
            if kind == ND_NA or (kind == ND_NS and data[8:24] == UNSPECIFIED):
                yield bytes(data[48:64])

    def close(self):
        self.sock.close()
