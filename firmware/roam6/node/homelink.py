"""At home the HoA is an ordinary address of the board's interface: the kernel, not the tunnel,
gets its packets (and answers ping itself). So while the node is at home every bound roam6 socket
is backed by a kernel UDP socket on [HoA]:port -- the application's sockets keep working across
leaving and coming home. Loaded only when the node gets home.
"""
import asyncio
import socket

from roam6.compat import IS_MICROPYTHON

from .transport import AF_INET6, addr_text, sleep_ms, sockaddr


def _peer(sa):
    """(16-byte address, port) of a received datagram's source."""
    if IS_MICROPYTHON:
        return bytes(sa[8:24]), (sa[2] << 8) | sa[3]
    return socket.inet_pton(AF_INET6, sa[0].split("%")[0]), sa[1]


class HomeLink:
    def __init__(self, host):
        self.host = host
        self.hoa_text = addr_text(host.hoa)
        self.socks = {}          # port -> kernel socket
        self.tasks = []
        self.pending = []        # ports whose bind failed (address not usable yet): retried
        self.sent = 0

    def open(self):
        for port in list(self.host.ports):
            self.add(port)
        self.host.home = self
        if self.pending:
            self.tasks.append(asyncio.create_task(self._retry()))

    def add(self, port):
        """Back roam6 socket `port` with a kernel socket (also called for binds made at home)."""
        s = socket.socket(AF_INET6, socket.SOCK_DGRAM)
        try:
            s.bind(sockaddr(self.hoa_text, port))
        except OSError:
            s.close()
            if port not in self.pending:
                self.pending.append(port)
            return False
        s.setblocking(False)
        self.socks[port] = s
        self.tasks.append(asyncio.create_task(self._rx(port, s)))
        return True

    async def _retry(self):
        for _ in range(50):              # e.g. the HoA still tentative (DAD): up to 5 s
            await sleep_ms(100)
            for port in list(self.pending):
                if self.add(port):
                    self.pending.remove(port)
            if not self.pending:
                return

    async def _rx(self, port, s):
        while True:
            try:
                if IS_MICROPYTHON:
                    from .transport import readable
                    await readable(s)
                    data, sa = s.recvfrom(1500)
                else:
                    data, sa = await asyncio.get_running_loop().sock_recvfrom(s, 1500)
            except OSError:
                await sleep_ms(20)
                continue
            sock = self.host.ports.get(port)
            if sock is not None:
                src, sport = _peer(sa)
                sock._deliver(data, src, sport)

    def send(self, sport, dst, dport, data):
        s = self.socks.get(sport)
        if s is None:
            return 0
        try:
            s.sendto(data, sockaddr(addr_text(dst), dport))
            self.sent += 1
            return len(data)
        except OSError:
            return 0

    def close(self):
        for t in self.tasks:
            t.cancel()
        for s in self.socks.values():
            s.close()
        self.tasks = []
        self.socks = {}
        self.pending = []
        if self.host.home is self:
            self.host.home = None
