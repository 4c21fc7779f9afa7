"""How the MN's packets reach the HA: udp4 / udp6 (RFC 5555 framing, docs/CONTRACTS.md §11).
(roam6.node.uplink picks, opens and reads the transports.)

A transport carries whole inner IPv6 packets (BUs, BAs, data) in UDP to/from the HA's port 4191.
On every care-of address change the uplink calls `open(coa)`: a fresh socket bound to the new
address (so the outer source is exactly the CoA the BU's MAC covers, and the NAT sees a new flow).
It is also connected to the HA, so the kernel hands the MN nothing from anyone else (the HA
answers from the address the MN sent to, docs/CONTRACTS.md §6).
"""
import asyncio
import socket

from roam6.compat import IS_MICROPYTHON

# MicroPython sockets take raw sockaddr bytes (from getaddrinfo) and are awaited through its
# asyncio IOQueue; CPython's take tuples and are awaited through the event loop's readers.
AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6


if hasattr(socket, "inet_ntop"):
    # the socket module's own converters cost no heap; ports without them use the codec's
    # (called through the module: an alias would be a qstr of its own)
    def addr_text(a):
        """Raw address (4 or 16 bytes) -> text; None stays None."""
        return None if a is None else socket.inet_ntop(AF_INET if len(a) == 4 else AF_INET6, bytes(a))

    def text_addr(t):
        return socket.inet_pton(AF_INET6 if ":" in t else AF_INET, t)
else:                                # (the ESP32's socket module has neither)
    from roam6.wire.addrtext import ip4_to_text, ip6_to_text

    def addr_text(a):
        return None if a is None else (ip4_to_text(a) if len(a) == 4 else ip6_to_text(a))

    def text_addr(t):
        # parsing is loaded only when an application gives a text address: the node's own
        # addresses were parsed at start-up, and that code is dropped then (app.trim)
        from roam6.wire.addr import ip4_from_text, ip6_from_text
        return ip6_from_text(t) if ":" in t else ip4_from_text(t)


def sockaddr(host, port):
    """An address for connect/bind/sendto from text (an IPv4 or IPv6 address, no names)."""
    fam = AF_INET6 if ":" in host else AF_INET
    return socket.getaddrinfo(host, port, fam)[0][-1]


if IS_MICROPYTHON:
    from asyncio import core as _core
    _MSG_PEEK = getattr(socket, "MSG_PEEK", None)   # (a port's socket may lack recv flags)

    def readable(sock):
        """Await until sock is readable (how MicroPython's asyncio waits on a socket)."""
        yield _core._io_queue.queue_read(sock)

    async def readinto(sock, buf):
        """Await one datagram (an IPv6 packet) into buf; its length.

        MicroPython's socket.readinto is the stream read: it keeps reading until the buffer is
        full, gluing queued datagrams together and truncating the one that does not fit, and
        recv() needs a fresh block of the full size per datagram, which a fragmented small heap
        may not have. So: peek at the IPv6 header (6 bytes), then readinto exactly the packet's
        length, which takes that one datagram and nothing more."""
        await readable(sock)
        if _MSG_PEEK is None:         # no peeking here: one datagram per recv, in a fresh block
            d = sock.recv(len(buf))
            buf[:len(d)] = d
            return len(d)
        h = sock.recv(6, _MSG_PEEK)
        if h is None or not h:
            return 0
        if len(h) == 6 and h[0] >> 4 == 6:
            size = min(40 + ((h[4] << 8) | h[5]), len(buf))
        elif len(h) == 6 and h[0] >> 4 == 4:     # to the IPv4 HoA (RFC 5555 §4.1)
            size = min((h[2] << 8) | h[3], len(buf))
        else:
            size = 1                  # not an IPv6 packet: take (and drop) the datagram
        return sock.readinto(buf, size) or 0

    sleep_ms = asyncio.sleep_ms
else:   # (CPython's, in roam6.compat_cpython: their names are no qstrs on a board)
    from roam6.compat_cpython import readinto, sleep_ms  # noqa: F401


async def read_each(sock, buf, deliver):
    """Every datagram of one socket into buf, handed to deliver(n) before the next read (the
    uplink's readers; haswitchmbb's read of the old HA's socket)."""
    while True:
        try:
            n = await readinto(sock, buf)
        except OSError:
            # an ICMP error queued on the connected socket (HA port closed while it restarts)
            await sleep_ms(20)
            continue
        if n:
            deliver(n)


def send_counted(t, s, data, addr):
    """Send data on socket s (to addr; None: s is connected), counting in t.sent / t.send_errors.
    False when there is no socket or the network refused it."""
    if s is None:
        return False
    try:
        if addr is None:
            s.send(data)
        else:
            s.sendto(data, addr)
        t.sent += 1
        return True
    except OSError:
        t.send_errors += 1
        return False


class UdpTransport:
    def __init__(self, name, ha_text, port=4191):      # RFC 5555: the HA's UDP port
        self.name = name                 # "udp4" | "udp6"
        self.ha_addr = sockaddr(ha_text, port)
        self.sock = None
        self.sent = 0
        self.send_errors = 0

    def open(self, coa_text):
        """A new non-blocking socket from coa_text (None: let the kernel choose), connected to the
        HA; returns it, for readinto."""
        self.close()
        s = socket.socket(AF_INET if self.name == "udp4" else AF_INET6, socket.SOCK_DGRAM)
        try:
            s.setblocking(False)
            if coa_text is not None:
                s.bind(sockaddr(coa_text, 0))
            s.connect(self.ha_addr)
        except OSError:
            s.close()
            raise
        self.sock = s
        return s

    def send(self, data):
        """Send one inner packet. False when the network refused it (no route during a move, an
        ICMP error queued from an earlier datagram): the caller's timers retransmit what matters."""
        return send_counted(self, self.sock, data, None)

    send_mh = send       # over UDP the BUs are inner packets like the data

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
