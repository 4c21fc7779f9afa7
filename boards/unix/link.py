"""Link adapter of the virtual board (MicroPython unix port, also CPython): rtnetlink events.

One NETLINK_ROUTE socket joined to the link, address and route multicast groups gives every
change the instant the kernel makes it — no polling. `start()` dumps the current state first
(link, addresses, default routers). Events are the tuples of CONTRACTS.md §10.1, for
roam6.core.movement. MicroPython sockets take raw sockaddr bytes; CPython takes tuples.
"""
import select
import socket
import struct

from roam6.compat import IS_MICROPYTHON, const
from roam6.wire.addr import ip4_from_text, ip6_from_text

_NETLINK_ROUTE = const(0)
# RTMGRP_LINK | IPV4_IFADDR | IPV4_ROUTE | IPV6_IFADDR | IPV6_ROUTE
_GROUPS = const(0x1 | 0x10 | 0x40 | 0x100 | 0x400)
_DONE = const(3)
_ERROR = const(2)
_NEWLINK = const(16)
_DELLINK = const(17)
_GETLINK = const(18)
_NEWADDR = const(20)
_DELADDR = const(21)
_GETADDR = const(22)
_NEWROUTE = const(24)
_DELROUTE = const(25)
_GETROUTE = const(26)
_F_REQUEST = const(1)
_F_ACK = const(4)
_F_DUMP = const(0x300)
_IFF_UP = const(0x1)
_IFF_RUNNING = const(0x40)  # operstate up: carrier and admin up
_AF_INET = const(2)
_AF_INET6 = const(10)
_BUFSIZE = const(4096)  # dumps come in ~4 KB datagrams (NLMSG_GOODSIZE); an event is one message


def _readable(sock):
    # MicroPython asyncio: a plain generator that parks the task until `sock` is readable
    # (what its own StreamReader does)
    import asyncio
    yield asyncio.core._io_queue.queue_read(sock)


def _attrs(buf, off, end):
    """{type: (start, end)} of the rtattrs in buf[off:end] (4-byte aligned)."""
    out = {}
    while off + 4 <= end:
        n, t = struct.unpack_from("HH", buf, off)
        if n < 4 or off + n > end:
            break
        out[t & 0x3FFF] = (off + 4, off + n)
        off += (n + 3) & ~3
    return out


class Link:
    period_ms = None  # events come by themselves: await next_events() or poll `sock`

    def __init__(self, ifname="wlan0"):
        self.ifname = ifname
        self.ifindex = 0
        self.mac = bytes(6)
        self.up = None
        self._seq = 0
        s = socket.socket(16, socket.SOCK_RAW, _NETLINK_ROUTE)
        s.bind(struct.pack("HHII", 16, 0, 0, _GROUPS) if IS_MICROPYTHON else (0, _GROUPS))
        self.sock = s

    def close(self):
        self.sock.close()

    def _request(self, mtype, flags, body):
        self._seq += 1
        self.sock.send(struct.pack("IHHII", 16 + len(body), mtype, _F_REQUEST | flags, self._seq, 0) + body)
        return self._seq

    def _recv(self):
        """One datagram (b"" when none is waiting). recv, not readinto: MicroPython's stream
        readinto would keep reading and run several datagrams together."""
        try:
            return self.sock.recv(_BUFSIZE) or b""
        except OSError:
            return b""

    def _until_done(self, seq, events):
        """Read (parsing every message, events included) until the answer to `seq` is complete."""
        p = select.poll()
        p.register(self.sock, select.POLLIN)
        while True:
            if not p.poll(1000):
                raise OSError("netlink: no answer from the kernel")
            if self._parse(self._recv(), events, seq):
                return

    def start(self):
        """Find the interface and dump its state -> initial events."""
        events = []
        self.sock.setblocking(True)
        name = self.ifname.encode() + b"\0"
        attr = struct.pack("HH", 4 + len(name), 3) + name + bytes((4 - len(name) % 4) % 4)  # IFLA_IFNAME
        self._until_done(self._request(_GETLINK, _F_ACK, struct.pack("BBHiII", 0, 0, 0, 0, 0, 0) + attr), events)
        if not self.ifindex:
            raise OSError("no network interface %r here (check the board's namespace and link name)" % self.ifname)
        self._until_done(self._request(_GETADDR, _F_DUMP, struct.pack("BBBBI", 0, 0, 0, 0, 0)), events)
        for fam in (_AF_INET, _AF_INET6):
            self._until_done(self._request(_GETROUTE, _F_DUMP, struct.pack("BBBBBBBBI", fam, 0, 0, 0, 0, 0, 0, 0, 0)), events)
        self.sock.setblocking(False)
        return events

    def read(self):
        """Events waiting now (non-blocking); [] if none."""
        events = []
        while True:
            d = self._recv()
            if not d:
                return events
            self._parse(d, events)

    async def next_events(self):
        """Wait until something happens -> its events (asyncio on MicroPython and CPython)."""
        while True:
            if IS_MICROPYTHON:
                await _readable(self.sock)
            else:
                import asyncio
                fut = asyncio.get_running_loop().create_future()
                asyncio.get_running_loop().add_reader(self.sock.fileno(), fut.set_result, None)
                try:
                    await fut
                finally:
                    asyncio.get_running_loop().remove_reader(self.sock.fileno())
            events = self.read()
            if events:
                return events

    def _parse(self, b, events, seq=None):
        """Messages in datagram b -> events appended; True if the answer to `seq` ended."""
        n = len(b)
        off = 0
        done = False
        while off + 16 <= n:
            ln, t, _fl, s, _pid = struct.unpack_from("IHHII", b, off)
            if ln < 16 or off + ln > n:
                break  # truncated datagram: drop the rest
            body = off + 16
            end = off + ln
            off += (ln + 3) & ~3
            if t == _DONE or t == _ERROR:
                if s == seq:
                    done = True
                    if t == _ERROR and struct.unpack_from("i", b, body)[0] not in (0, -19):
                        raise OSError("netlink error %d" % -struct.unpack_from("i", b, body)[0])
                continue
            if t == _NEWLINK or t == _DELLINK:
                _f, _p, _ty, idx, flags = struct.unpack_from("BBHiI", b, body)
                a = _attrs(b, body + 16, end)
                if not self.ifindex and 3 in a and bytes(b[a[3][0]:a[3][1]]).rstrip(b"\0") == self.ifname.encode():
                    self.ifindex = idx
                    if 1 in a:
                        self.mac = bytes(b[a[1][0]:a[1][1]])
                if idx != self.ifindex:
                    continue
                up = t == _NEWLINK and flags & _IFF_UP != 0 and flags & _IFF_RUNNING != 0
                if up != self.up:
                    self.up = up
                    events.append(("link", up))
            elif t == _NEWADDR or t == _DELADDR:
                fam, plen, flags, _sc, idx = struct.unpack_from("BBBBI", b, body)
                if idx != self.ifindex or fam not in (_AF_INET, _AF_INET6):
                    continue
                a = _attrs(b, body + 8, end)
                k = 2 if fam == _AF_INET and 2 in a else 1  # IFA_LOCAL for IPv4, IFA_ADDRESS for IPv6
                if k not in a:
                    continue
                if 8 in a:  # IFA_FLAGS: the full 32-bit flags
                    flags = struct.unpack_from("I", b, a[8][0])[0]
                events.append(("addr", 4 if fam == _AF_INET else 6, bytes(b[a[k][0]:a[k][1]]), plen, t == _NEWADDR, flags))
            elif t == _NEWROUTE or t == _DELROUTE:
                fam, dlen, _sl, _tos, table, _pr, _sc, rtype, _fl = struct.unpack_from("BBBBBBBBI", b, body)
                a = _attrs(b, body + 12, end)
                if 15 in a:
                    table = struct.unpack_from("I", b, a[15][0])[0]
                if dlen or table != 254 or rtype != 1 or 5 not in a or 4 not in a:
                    continue
                if struct.unpack_from("i", b, a[4][0])[0] != self.ifindex:
                    continue
                gw = bytes(b[a[5][0]:a[5][1]]) if t == _NEWROUTE else None
                events.append(("router", 4 if fam == _AF_INET else 6, gw))
        return done

    def dns_servers(self, path="/etc/resolv.conf"):
        """Name servers from resolv.conf (`ip netns exec` maps /etc/netns/<ns>/resolv.conf there)."""
        out = []
        try:
            with open(path) as f:
                lines = f.read().split("\n")
        except OSError:
            return out
        for line in lines:
            w = line.split()
            if len(w) >= 2 and w[0] == "nameserver" and "%" not in w[1]:
                try:
                    out.append(ip6_from_text(w[1]) if ":" in w[1] else ip4_from_text(w[1]))
                except ValueError:
                    pass
        return out
