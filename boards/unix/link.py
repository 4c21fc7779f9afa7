"""Link adapter of the virtual board (MicroPython unix port, also CPython): rtnetlink events.

One NETLINK_ROUTE socket joined to the link, address and route multicast groups gives every
change the instant the kernel makes it — no polling. `start()` dumps the current state first
(link, addresses, default routers). Events are the tuples of CONTRACTS.md §10.1, for
roam6.core.movement. MicroPython sockets take raw sockaddr bytes; CPython takes tuples.

Reads go into one preallocated buffer (no 4 KB allocation per event on a 64 KB heap). On
MicroPython, readinto() runs the waiting datagrams together and cuts the one that does not fit;
a cut message or a kernel overrun (ENOBUFS) means events were lost, so the adapter dumps the
state again and reports the difference to what it had reported (`resyncs` counts these).
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
_ENOBUFS = const(105)
_BUFSIZE = const(4096)  # dumps come in ~4 KB datagrams (NLMSG_GOODSIZE); a link event is ~1.5 KB


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
    buffer_size = _BUFSIZE  # a caller may lend its buffer of this size (Link(ifname, buf))
    dna = None  # dna.Addressing when the board addresses itself (config "addressing": "dna")

    def __init__(self, ifname="wlan0", buf=None):
        """buf: a bytearray of at least 4096 bytes to read into (the MN shares its packet buffer:
        each read is parsed before the next await, like each packet)."""
        self.ifname = ifname
        self.ifindex = 0
        self.mac = bytes(6)
        self.up = None
        self.resyncs = 0
        self._seq = 0
        self._buf = buf if buf is not None and len(buf) >= _BUFSIZE else bytearray(_BUFSIZE)
        self._addrs = {}  # addr -> (family, plen, flags) as last reported
        self._gw = {4: None, 6: None}
        self._seen = None  # during a dump: what it held
        self._lost = False
        s = socket.socket(16, socket.SOCK_RAW, _NETLINK_ROUTE)
        s.bind(struct.pack("HHII", 16, 0, 0, _GROUPS) if IS_MICROPYTHON else (0, _GROUPS))
        s.setblocking(False)
        self.sock = s
        self._poll = select.poll()
        self._poll.register(s, select.POLLIN)

    def close(self):
        self.sock.close()

    def self_addressing(self, memory_path, families=(4, 6)):
        """The board addresses itself (DHCPv4, RFC 4436/6059 with a network memory): dna.py,
        loaded only here; it sees every event this adapter reports."""
        from dna import Addressing
        self.dna = Addressing(self, memory_path, families)

    def _request(self, mtype, flags, body):
        self._seq += 1
        self.sock.send(struct.pack("IHHII", 16 + len(body), mtype, _F_REQUEST | flags, self._seq, 0) + body)
        return self._seq

    def _recv(self):
        """Read what is waiting into the buffer -> byte count (0 if nothing)."""
        try:
            n = self.sock.readinto(self._buf) if IS_MICROPYTHON else self.sock.recv_into(self._buf)
        except OSError as e:
            if e.args and e.args[0] == _ENOBUFS:
                self._lost = True  # the kernel dropped events for us
            return 0
        return n or 0

    def _until_done(self, seq, events):
        """Read (parsing every message, events included) until the answer to `seq` is complete."""
        while True:
            if not self._poll.poll(1000):
                raise OSError("netlink: no answer from the kernel")
            if self._parse(self._recv(), events, seq):
                return

    def start(self):
        """Find the interface and dump its state -> initial events."""
        events = []
        self._dump(events)
        if not self.ifindex:
            raise OSError("no network interface %r here (check the board's namespace and link name)" % self.ifname)
        if self.dna is not None:
            self.dna.events(events)
        return events

    def _dump(self, events):
        name = self.ifname.encode() + b"\0"
        attr = struct.pack("HH", 4 + len(name), 3) + name + bytes((4 - len(name) % 4) % 4)  # IFLA_IFNAME
        self._until_done(self._request(_GETLINK, _F_ACK, struct.pack("BBHiII", 0, 0, 0, 0, 0, 0) + attr), events)
        if not self.ifindex:
            return
        self._seen = []
        self._until_done(self._request(_GETADDR, _F_DUMP, struct.pack("BBBBI", 0, 0, 0, 0, 0)), events)
        for fam in (_AF_INET, _AF_INET6):
            self._until_done(self._request(_GETROUTE, _F_DUMP, struct.pack("BBBBBBBBI", fam, 0, 0, 0, 0, 0, 0, 0, 0)),
                             events)
        seen, self._seen = self._seen, None
        for a in list(self._addrs):  # gone while we were not listening
            if a not in seen:
                fam, plen, _fl = self._addrs.pop(a)
                events.append(("addr", fam, a, plen, False, 0))
        for fam in (4, 6):
            if self._gw[fam] is not None and ("gw", fam) not in seen:
                self._gw[fam] = None
                events.append(("router", fam, None))

    def read(self):
        """Events waiting now (non-blocking): at most one buffer's worth per call, to bound the
        heap a burst can take; call again while it returns events. [] if none."""
        events = []
        n = self._recv()
        if n:
            self._parse(n, events)
        if self._lost:
            self._lost = False
            self.resyncs += 1
            self._dump(events)
        if self.dna is not None and self.dna.pending:   # an optimistic address the kernel announces after DAD
            events += self.dna.pending
            self.dna.pending = []
        return events

    async def next_events(self):
        """Wait until something happens -> its events (asyncio on MicroPython and CPython)."""
        while True:
            if IS_MICROPYTHON:
                await _readable(self.sock)
            else:
                import asyncio
                loop = asyncio.get_running_loop()
                fut = loop.create_future()
                loop.add_reader(self.sock.fileno(), fut.set_result, None)
                try:
                    await fut
                finally:
                    loop.remove_reader(self.sock.fileno())
            events = self.read()
            if self.dna is not None and events:
                self.dna.events(events)
            if events:
                return events

    def _parse(self, n, events, seq=None):
        """Messages in the buffer's first n bytes -> events; True if the answer to `seq` ended."""
        b = self._buf
        off = 0
        done = False
        while off + 16 <= n:
            ln, t, _fl, s, _pid = struct.unpack_from("IHHII", b, off)
            if ln < 16 or off + ln > n:
                self._lost = True  # cut: the rest of this datagram is gone
                break
            body = off + 16
            end = off + ln
            off += (ln + 3) & ~3
            if t == _DONE or t == _ERROR:
                if s == seq:
                    done = True
                    err = struct.unpack_from("i", b, body)[0]
                    if t == _ERROR and err not in (0, -19):
                        raise OSError("netlink error %d" % -err)
            elif t == _NEWLINK or t == _DELLINK:
                self._link(b, body, end, t, events)
            elif t == _NEWADDR or t == _DELADDR:
                self._addr(b, body, end, t, events)
            elif t == _NEWROUTE or t == _DELROUTE:
                self._route(b, body, end, t, events)
        if off < n:
            self._lost = True  # a message cut before even its header: events were lost
        return done

    def _link(self, b, body, end, t, events):
        _f, _p, _ty, idx, flags = struct.unpack_from("BBHiI", b, body)
        a = _attrs(b, body + 16, end)
        if not self.ifindex and 3 in a and bytes(b[a[3][0]:a[3][1]]).rstrip(b"\0") == self.ifname.encode():
            self.ifindex = idx
            if 1 in a:
                self.mac = bytes(b[a[1][0]:a[1][1]])
        if idx != self.ifindex:
            return
        up = t == _NEWLINK and flags & _IFF_UP != 0 and flags & _IFF_RUNNING != 0
        if up != self.up:
            self.up = up
            events.append(("link", up))

    def _addr(self, b, body, end, t, events):
        fam, plen, flags, _sc, idx = struct.unpack_from("BBBBI", b, body)
        if idx != self.ifindex or fam not in (_AF_INET, _AF_INET6):
            return
        a = _attrs(b, body + 8, end)
        k = 2 if fam == _AF_INET and 2 in a else 1  # IFA_LOCAL for IPv4, IFA_ADDRESS for IPv6
        if k not in a:
            return
        if 8 in a:  # IFA_FLAGS: the full 32-bit flags
            flags = struct.unpack_from("I", b, a[8][0])[0]
        addr = bytes(b[a[k][0]:a[k][1]])
        if self.dna is not None and 6 in a:  # IFA_CACHEINFO: the valid lifetime, for the network memory
            self.dna.valid[addr] = struct.unpack_from("I", b, a[6][0] + 4)[0]
        fam = 4 if fam == _AF_INET else 6
        if t == _NEWADDR:
            if self._seen is not None:
                self._seen.append(addr)
            v = (fam, plen, flags)
            if self._addrs.get(addr) != v:  # lifetime refreshes repeat the same: not news
                self._addrs[addr] = v
                events.append(("addr", fam, addr, plen, True, flags))
        else:
            self._addrs.pop(addr, None)
            events.append(("addr", fam, addr, plen, False, flags))

    def _route(self, b, body, end, t, events):
        fam, dlen, _sl, _tos, table, _pr, _sc, rtype, _fl = struct.unpack_from("BBBBBBBBI", b, body)
        a = _attrs(b, body + 12, end)
        if 15 in a:
            table = struct.unpack_from("I", b, a[15][0])[0]
        if dlen or table != 254 or rtype != 1 or 5 not in a or 4 not in a:
            return
        if struct.unpack_from("i", b, a[4][0])[0] != self.ifindex:
            return
        fam = 4 if fam == _AF_INET else 6
        gw = bytes(b[a[5][0]:a[5][1]])
        if t == _NEWROUTE:
            if self._seen is not None:
                self._seen.append(("gw", fam))
            if gw != self._gw[fam]:
                self._gw[fam] = gw
                events.append(("router", fam, gw))
        elif gw == self._gw[fam]:
            self._gw[fam] = None
            events.append(("router", fam, None))

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
