"""The few socket differences between MicroPython and CPython, for the node's drivers.

MicroPython sockets take raw sockaddr bytes (from getaddrinfo) and are awaited through its
asyncio IOQueue; CPython's take tuples and are awaited through the event loop's readers.
"""
import asyncio
import socket

from roam6.compat import IS_MICROPYTHON

AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6


def sockaddr(host, port):
    """An address for connect/bind/sendto from text (an IPv4 or IPv6 address, no names)."""
    fam = AF_INET6 if ":" in host else AF_INET
    return socket.getaddrinfo(host, port, fam)[0][-1]


def udp_socket(family):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setblocking(False)
    return s


if IS_MICROPYTHON:
    class Reader:
        """Await datagrams from one socket into a caller's buffer (no allocation per packet)."""

        def __init__(self, sock):
            self.sock = sock
            self._stream = asyncio.StreamReader(sock)

        async def readinto(self, buf):
            return await self._stream.readinto(buf)
else:
    class Reader:
        def __init__(self, sock):
            self.sock = sock

        async def readinto(self, buf):
            return await asyncio.get_running_loop().sock_recv_into(self.sock, buf)


if IS_MICROPYTHON:
    sleep_ms = asyncio.sleep_ms
else:
    async def sleep_ms(ms):
        await asyncio.sleep(ms / 1000)
