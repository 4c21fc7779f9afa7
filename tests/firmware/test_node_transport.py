"""The transports' readinto on real sockets (loopback): one inner packet per read, never two
glued together, also on a port whose socket module has no MSG_PEEK (then recv takes one datagram)."""
import asyncio
import socket

from roam6.compat import IS_MICROPYTHON
from roam6.node import transport
from roam6.node.transport import readinto, sockaddr


def udp_socket(family):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setblocking(False)
    return s


def _packet(n, fill):
    """An IPv6-looking datagram of n bytes: version 6, payload length n - 40."""
    p = bytearray(bytes([fill]) * n)
    p[0] = 0x60
    p[4], p[5] = (n - 40) >> 8, (n - 40) & 0xFF
    return bytes(p)


def _read_two(peek):
    rx = udp_socket(socket.AF_INET)
    rx.bind(sockaddr("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    port = rx.getsockname()[1] if not IS_MICROPYTHON else None
    if port is None:                       # MicroPython: no getsockname; bind a port of our own choosing
        import random
        rx.close()
        rx = udp_socket(socket.AF_INET)
        port = 40000 + random.getrandbits(13)
        rx.bind(sockaddr("127.0.0.1", port))
    saved = getattr(transport, "_MSG_PEEK", None)
    if IS_MICROPYTHON and not peek:
        transport._MSG_PEEK = None
    try:
        a, b = _packet(60, 1), _packet(100, 2)
        tx.sendto(a, sockaddr("127.0.0.1", port))
        tx.sendto(b, sockaddr("127.0.0.1", port))
        buf = bytearray(1500)

        async def both():
            # bounded: a reader that swallowed both datagrams would wait for a second forever
            n1 = await asyncio.wait_for(readinto(rx, buf), 2)
            first = bytes(buf[:n1])
            try:
                n2 = await asyncio.wait_for(readinto(rx, buf), 2)
            except asyncio.TimeoutError:
                return first, None
            return first, bytes(buf[:n2])

        return asyncio.run(both()), (a, b)
    finally:
        if IS_MICROPYTHON:
            transport._MSG_PEEK = saved
        rx.close()
        tx.close()


def test_reader_takes_one_datagram_at_a_time():
    got, sent = _read_two(peek=True)
    assert got == sent


def test_reader_without_msg_peek_still_takes_one_datagram_at_a_time():
    got, sent = _read_two(peek=False)      # (on CPython the event loop's sock_recv_into is used)
    assert got == sent
