"""The HA's IKEv2 sockets (issue #19): UDP 4500 on the HA's IPv4 address (udp4 devices) and on
its IPv6 address (udp6/ip6 devices), non-blocking, in the HA's epoll, driving ipsecmh.IpsecHA's
responder. IKE messages carry the 4-byte non-ESP marker (RFC 3948 §2.2); roam6's MN sends its ESP
inside the Mobile IPv6 transports (docs/PROTOCOL-NOTES.md §9.6), a peer such as strongSwan sends
ESP in UDP here (no marker): ha/espudp.py takes it.

Each wakeup reads at most BATCH datagrams per socket, so a flood of IKE_SA_INITs costs the
binding cache and the data plane one batch at a time; the responder's own limits (half-open
SAs, COOKIEs from `cookie_threshold` on) bound the work per datagram.
"""
import errno
import socket

from ..errors import UserError
from .clock import now_ms

PORT = 4500
BATCH = 32
IPV6_FREEBIND = 78


class IkeSockets:
    def __init__(self, ha):
        self.ha = ha              # driver.HomeAgent (its ipsec, cfg, log)
        self.socks = {}           # family -> socket
        from .espudp import UdpEsp
        self.udp_esp = UdpEsp(ha)  # ESP in UDP 4500 (RFC 3948) from peers without a binding

    def open(self):
        cfg = self.ha.cfg
        if cfg.ipv4 is not None and "udp4" in cfg.transports:
            self.socks[socket.AF_INET] = self._bind(socket.AF_INET, cfg.ipv4)
        if "udp6" in cfg.transports or "ip6" in cfg.transports:
            self.socks[socket.AF_INET6] = self._bind(socket.AF_INET6, cfg.address_text)

    def _bind(self, family, host):
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)   # the address may still be in DAD
            else:
                s.setsockopt(socket.SOL_IP, 15, 1)                      # IP_FREEBIND
            s.bind((host, PORT))
        except OSError as exc:
            s.close()
            hint = ("is another IKE daemon (strongSwan's charon) running here?" if exc.errno == errno.EADDRINUSE
                    else "is the address configured in this namespace?")
            raise UserError("cannot bind UDP %s port %d for IKEv2 (ha.json 'security' lists \"ipsec\"): %s"
                            % (host, PORT, exc.strerror), hint=hint) from None
        s.setblocking(False)
        return s

    def fds(self):
        return {s.fileno(): (lambda s=s: self._on(s)) for s in self.socks.values()}

    def _on(self, sock):
        ipsec = self.ha.ipsec
        for _ in range(BATCH):
            try:
                data, addr = sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            if data[:4] != b"\0\0\0\0":
                self.udp_esp.receive(data, addr[:2], sock, now_ms())
                continue
            ipsec.ike_receive(data, addr[:2], PORT, now_ms())
        if self.udp_esp.routes:
            self.udp_esp.prune()
        self.send(now_ms())

    def send(self, now):
        for payload, peer, _port in self.ha.ipsec.ike_datagrams(now):
            s = self.socks.get(socket.AF_INET6 if ":" in peer[0] else socket.AF_INET)
            if s is None:
                continue
            try:
                s.sendto(payload, peer)
            except OSError as exc:
                self.ha.log.once(("ike_send", peer[0], exc.errno), "send_error", peer="%s:%d" % tuple(peer),
                                 reason=exc.strerror)

    def close(self):
        for s in self.socks.values():
            s.close()
        self.socks = {}
