"""Small DHCPv6 and DNS clients run inside a namespace by the bench tests (`python nsclient.py ...`),
printing what they received as hex: the test parses it, so the assertions sit in the test."""
import os
import socket
import struct
import sys


def dhcpv6(iface):
    # Information-request: DUID-LL client id, elapsed time 0, ORO [UDINF 70, IDINF 69, 49, 71, 72, 73, 23, 24]
    oro = struct.pack(">8H", 70, 69, 49, 71, 72, 73, 23, 24)
    msg = (bytes([11]) + os.urandom(3) + struct.pack(">HH", 1, 10) + struct.pack(">HH", 3, 1)
           + bytes.fromhex("0200000000b1"))
    msg += struct.pack(">HHH", 8, 2, 0) + struct.pack(">HH", 6, len(oro)) + oro
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::", 546))
    s.settimeout(3)
    s.sendto(msg, ("ff02::1:2", 547, 0, socket.if_nametoindex(iface)))
    data, _ = s.recvfrom(2048)
    print(data.hex())


def dns(server, name, qtype):
    q = os.urandom(2) + bytes.fromhex("01000001 00000000 0000".replace(" ", ""))
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(q, (server, 53))
    data, _ = s.recvfrom(2048)
    print(data.hex())


if __name__ == "__main__":
    {"dhcpv6": dhcpv6, "dns": dns}[sys.argv[1]](*[int(a) if a.isdigit() else a for a in sys.argv[2:]])
