"""A tiny IPv6 host for the home address, living inside the tunnel to the HA.

Applications get `roam6` UDP sockets bound to ports of the HoA (`Host.socket()`): `bind`,
`sendto`, `await recvfrom()`. The host answers ICMPv6 echo requests to the HoA, so the HoA
answers ping. Outgoing packets are assembled in one preallocated buffer and handed to `send`
(the driver's current transport); incoming packets are parsed in the receive buffer in place:
only an application datagram's payload is copied out (the application keeps it).
"""
import asyncio
import struct

from roam6.compat import IS_MICROPYTHON, const
from roam6.wire.checksum import finish, inet_sum, pseudo_sum

from . import TX

_NH_UDP = const(17)
_NH_ICMP6 = const(58)
_MTU = const(1280)                      # inner packets: the IPv6 minimum, no PMTU games
_QUEUE = const(8)                       # datagrams a socket keeps before it drops new ones
_EPHEMERAL = const(49152)
if IS_MICROPYTHON:
    from asyncio import core as _core


class UdpSocket:
    def __init__(self, host):
        self.host = host
        self.port = 0
        self._q = []
        self._w = None                  # the task parked in recvfrom (MicroPython) or an Event
        self.dropped = 0

    def bind(self, port):
        """Bind to a port of the HoA (0: an ephemeral one)."""
        if isinstance(port, tuple):
            port = port[1]
        self.host._bind(self, port)

    def sendto(self, data, addr):
        """addr = (IPv6 address as text or 16 bytes, port); an IPv4 address (text or 4 bytes)
        goes from the IPv4 HoA (host4.py; OSError EAFNOSUPPORT without one). Returns the bytes
        sent, or 0 when the node has nowhere to send (no binding yet and no care-of address)."""
        dst, dport = addr
        if isinstance(dst, str):
            from .transport import text_addr
            dst = text_addr(dst)
        if not self.port:
            self.host._bind(self, 0)
        if len(dst) == 4:
            v4 = self.host.v4
            if v4 is None:
                raise OSError(97)       # EAFNOSUPPORT: this node has no IPv4 home address
            return v4.send_udp(self.port, dst, dport, data)
        return self.host.send_udp(self.port, dst, dport, data)

    def recvfrom_nowait(self):
        """(data, (address16, port)) or None."""
        if self._q:
            return self._q.pop(0)
        return None

    if IS_MICROPYTHON:
        # The receiving task parks itself here and _deliver puts it back on the run queue: what
        # asyncio.Event does, without loading asyncio.event (1.7 KB of a 64 KB heap). A plain
        # generator: MicroPython awaits it like its own async def (the way _readable works).
        def recvfrom(self):
            while not self._q:
                t = _core.cur_task
                self._w = t
                t.data = self           # Task.cancel() then calls self.remove(task)
                yield
            return self._q.pop(0)

        def remove(self, t):           # (t: the task)
            self._w = None

        def _wake(self):
            t = self._w
            if t is not None:
                self._w = None
                _core._task_queue.push(t)
    else:
        async def recvfrom(self):
            while not self._q:
                if self._w is None:
                    self._w = asyncio.Event()
                self._w.clear()
                await self._w.wait()
            return self._q.pop(0)

        def _wake(self):
            if self._w is not None:
                self._w.set()

    def _deliver(self, data, src, port):
        if len(self._q) >= _QUEUE:
            self.dropped += 1
            return
        self._q.append((data, (src, port)))
        self._wake()

    def close(self):
        ports = self.host.ports
        if ports.get(self.port) is self:
            del ports[self.port]


class Host:
    v4 = None                           # host4.Host4 when the node has an IPv4 home address

    def __init__(self, hoa, send=None):
        self.hoa = bytes(hoa)
        self.send = send                # send(memoryview of one IPv6 packet) -> bool
        self.tx = TX
        self.txv = memoryview(self.tx)
        self._tmp = bytearray(16)
        self.ports = {}
        self.home = None                # a roam6.node.homelink.HomeLink while at home
        self._next_port = _EPHEMERAL

    def socket(self):
        return UdpSocket(self)

    def _bind(self, sock, port):
        if port == 0:
            for _ in range(16384):
                p = self._next_port
                self._next_port = _EPHEMERAL + ((p + 1 - _EPHEMERAL) % 16384)
                if p not in self.ports:
                    port = p
                    break
        if port in self.ports and self.ports[port] is not sock:
            raise OSError(98)           # EADDRINUSE
        if sock.port and sock.port != port:
            self.ports.pop(sock.port, None)
        sock.port = port
        self.ports[port] = sock
        if self.home is not None:
            self.home.add(port)

    # ---- out ----------------------------------------------------------------------------------
    def send_udp(self, port, dst, dport, data):
        """A datagram from the HoA's `port` to dst (16 bytes), dport; the bytes sent or 0."""
        n = len(data)
        if 48 + n > _MTU:
            raise ValueError("datagram of %d bytes is larger than %d" % (n, _MTU - 48))
        if self.home is not None:
            return self.home.send(port, dst, dport, data)
        if self.send is None:
            return 0
        tx = self.tx
        txv = self.txv
        # IPv6 header (hop limit 64) and UDP header written in place: no allocation per datagram
        struct.pack_into(">IHBB16s16sHHHH", tx, 0, 0x60000000, 8 + n, _NH_UDP, 64, self.hoa, dst,
                         port, dport, 8 + n, 0)
        tx[48:48 + n] = data
        c = finish(inet_sum(txv[40:48 + n], pseudo_sum(self.hoa, dst, 8 + n, _NH_UDP)))
        c = c or 0xFFFF
        tx[46] = c >> 8
        tx[47] = c & 0xFF
        return n if self.send(txv[:48 + n]) else 0

    # ---- in -----------------------------------------------------------------------------------
    def input(self, buf, n):
        """One inner IPv6 packet in buf[:n] (already known to be for the HoA, not a Mobility
        Header). Returns True when it was used."""
        if n < 48:
            return False
        plen = (buf[4] << 8) | buf[5]
        if 40 + plen > n:
            return False
        nh = buf[6]
        mv = memoryview(buf)
        if nh == _NH_UDP:
            if plen < 8:
                return False
            sport, dport, ulen = struct.unpack_from(">HHH", buf, 40)   # (the format BUs use: no
            ck = (buf[46] << 8) | buf[47]                              # qstr of its own)
            if ulen < 8 or ulen > plen:
                return False
            sock = self.ports.get(dport)
            # verify the checksum before trusting the payload (the tunnel has no integrity of its
            # own)
            if sock is None or ck == 0 or finish(
                    inet_sum(mv[40:40 + ulen], pseudo_sum(mv[8:24], mv[24:40], ulen, _NH_UDP))):
                return False
            sock._deliver(bytes(mv[48:40 + ulen]), bytes(mv[8:24]), sport)
            return True
        if nh != _NH_ICMP6 or plen < 8 or buf[40] != 128 or buf[41] != 0:       # only echo requests
            return False
        if finish(inet_sum(mv[40:40 + plen], pseudo_sum(mv[8:24], mv[24:40], plen, _NH_ICMP6))):
            return False
        # answer in place: swap the addresses, type 129, new checksum
        t = self._tmp
        t[:] = mv[8:24]
        buf[8:24] = mv[24:40]
        buf[24:40] = t
        buf[7] = 64
        buf[40] = 129
        buf[42] = buf[43] = 0
        c = finish(inet_sum(mv[40:40 + plen], pseudo_sum(mv[8:24], mv[24:40], plen, _NH_ICMP6)))
        buf[42] = c >> 8
        buf[43] = c & 0xFF
        if self.send is not None:
            self.send(mv[:40 + plen])
        return True
