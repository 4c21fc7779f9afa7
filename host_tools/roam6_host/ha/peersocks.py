"""A receive queue of its own for each bound MN over UDP, so a flood cannot crowd it out.

Every datagram to UDP 4191 lands in one socket's receive queue; a flood faster than the HA reads
fills that queue and the kernel drops what comes next - a bound MN's refresh or data as likely as
the attacker's packets. Linux delivers a datagram to the best-matching socket: one connected to
the datagram's source (address and port) beats the listener. So for each binding over udp4/udp6
the HA opens a socket bound to the same address and port and connected to the binding's peer (the
NAT mapping the MN sends from): its BUs and data queue there, apart from everybody else's. The
listener still takes every new peer (first registrations, moves to a new address or port).

Sharing the port needs SO_REUSEADDR on the listener as on these sockets; what keeps a second HA
from binding the same port then is `exclusive_port_lock`: an abstract Unix socket named after the
port, which exists once per network namespace, as the port does.

At most `limit` peer sockets (default 1024): beyond it, bindings share the listener as before.
Sends keep going through the listener (same source address and port).
"""
import resource
import socket

DEFAULT_LIMIT = 1024


def _raise_fd_limit(want):
    """Room for `want` more descriptors: the soft RLIMIT_NOFILE up to the hard one if needed."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = want + 256
        if soft != resource.RLIM_INFINITY and soft < need:
            new = need if hard == resource.RLIM_INFINITY else min(need, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    except (OSError, ValueError):
        pass                            # then fewer peer sockets open (counted in `failed`)


def exclusive_port_lock(family, port):
    """A bound abstract Unix socket named for (family, port); OSError(EADDRINUSE) if another HA in
    this namespace holds it. Keep it open as long as the port is in use."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind("\0roam6-ha-udp%d-%d" % (6 if family == socket.AF_INET6 else 4, port))
    except OSError:
        s.close()
        raise
    return s


class PeerSockets:
    """{(transport, host, port): connected socket}; `sync(bindings)`-style updates from the cache's
    events; `add_fd`/`remove_fd` are the driver's epoll hooks (fd, callable)."""

    def __init__(self, local, add_fd, remove_fd, limit=DEFAULT_LIMIT):
        self.local = local              # {transport: (family, bind address)}
        self.add_fd = add_fd
        self.remove_fd = remove_fd
        self.limit = limit
        self.socks = {}                 # (transport, host, port) -> socket
        self.failed = 0                 # sockets that could not be made (the listener serves)
        _raise_fd_limit(limit)

    def follow(self, transport, peer, old=None, reader=None):
        """The binding now reaches `peer` (host, port) over `transport`; `old` is the key it had."""
        if old is not None:
            self.drop(*old)
        key = (transport, peer[0], peer[1])
        if key in self.socks or transport not in self.local or len(self.socks) >= self.limit:
            return
        family, addr = self.local[transport]
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            s.bind(addr)
            s.connect(peer)
            s.setblocking(False)
        except OSError:
            s.close()
            self.failed += 1
            return
        self.socks[key] = s
        self.add_fd(s.fileno(), (lambda t=transport, sock=s: reader(t, sock)))

    def drop(self, transport, host, port):
        s = self.socks.pop((transport, host, port), None)
        if s is not None:
            self.remove_fd(s.fileno())
            s.close()

    def close(self):
        for key in list(self.socks):
            self.drop(*key)
