"""The HA's TUN device: the kernel routes each bound HoA (/128) into it; the HA reads those packets
and tunnels them to the care-of address, and writes decapsulated MN traffic back into it.

The device is not persistent: it disappears when the HA closes the fd (or dies), so a crashed HA
leaves no TUN behind.
"""
import fcntl
import os
import socket
import struct

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


class Tun:
    def __init__(self, name):
        self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            ifr = fcntl.ioctl(self.fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
        except OSError:
            os.close(self.fd)
            raise
        self.name = ifr[:16].rstrip(b"\0").decode()
        self.ifindex = socket.if_nametoindex(self.name)

    def fileno(self):
        return self.fd

    def read(self):
        return os.read(self.fd, 65536)

    def write(self, packet):
        return os.write(self.fd, packet)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
