"""Drives the bootstrap sequencer with real UDP sockets (MicroPython ports and CPython).

Socket addresses come from `socket.getaddrinfo`, so they are raw sockaddr bytes on the unix
port and tuples on lwIP ports and CPython alike; ff02::1:2 gets the link's scope as `%ifname`.
"""
import os
import select
import socket
import struct

from roam6.compat import IS_MICROPYTHON, ticks_diff, ticks_ms

_T0 = ticks_ms()


def _now():
    # ms since import: the sequencer wants a clock that does not wrap (ticks_ms does, after days)
    return ticks_diff(ticks_ms(), _T0)
from roam6.bootstrap.sequence import BUDGET_MS, Bootstrap
from roam6.wire.addr import ip4_from_text, ip4_to_text, ip6_from_text, ip6_to_text


def _sockaddr(addr, port, ifname=None):
    if len(addr) == 4:
        text = ip4_to_text(addr)
    else:
        text = ip6_to_text(addr)
        if ifname and (addr[0] == 0xFF or addr[:2] == b"\xfe\x80"):
            text += "%" + ifname
    return socket.getaddrinfo(text, port, 0, socket.SOCK_DGRAM)[0][-1]


def _peer(sa):
    """recvfrom's address -> (raw IP bytes, port)."""
    if isinstance(sa, tuple):  # CPython, lwIP ports
        host = sa[0].split("%")[0]
        return (ip6_from_text(host) if ":" in host else ip4_from_text(host)), sa[1]
    fam = struct.unpack_from("H", sa, 0)[0]  # unix port: raw sockaddr bytes
    port = struct.unpack_from(">H", sa, 2)[0]
    return (bytes(sa[8:24]) if fam == socket.AF_INET6 else bytes(sa[4:8])), port


class _Sockets:
    def __init__(self, ifname):
        self.ifname = ifname
        self.by_key = {}  # (family, src port) -> socket
        self.by_fd = {}
        self.poll = select.poll()

    def get(self, v6, sport):
        key = (v6, sport)
        s = self.by_key.get(key)
        if s is None:
            fam = socket.AF_INET6 if v6 else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_DGRAM)
            if sport:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(socket.getaddrinfo("::" if v6 else "0.0.0.0", sport, 0, socket.SOCK_DGRAM)[0][-1])
            s.setblocking(False)
            self.poll.register(s, select.POLLIN)
            self.by_key[key] = s
            if not IS_MICROPYTHON:  # CPython's poll() answers with file numbers (lwIP sockets have none)
                self.by_fd[s.fileno()] = s
        return s

    def close(self):
        for s in self.by_key.values():
            s.close()


def _step(b, socks, now, log):
    for data, dst, dport, sport in b.datagrams_to_send(now):
        try:
            socks.get(len(dst) == 16, sport).sendto(data, _sockaddr(dst, dport, socks.ifname))
        except OSError as e:  # no route on this link: the method's budget runs out, the next one runs
            if log:
                log("bootstrap: send to port %d failed: %s" % (dport, e))


def _receive(b, socks, ready):
    for s, _ev in ready:
        if isinstance(s, int):
            s = socks.by_fd[s]
        try:
            data, sa = s.recvfrom(1500)
        except OSError:
            continue
        src, sport = _peer(sa)
        b.receive_datagram(data, src, sport, _now())


async def run_bootstrap(cfg, mac, have_ip6, dns_servers, ifname=None, rand=None, dhcp_delay_ms=None,
                        log=None, budget_ms=BUDGET_MS, tick_ms=2):
    """Run every configured method until a HA is found -> the finished Bootstrap (`.result`, or
    `.error` and `.notes`). asyncio: polls its sockets every `tick_ms`, other tasks run between."""
    import asyncio
    b = Bootstrap(cfg, mac, have_ip6, dns_servers, _now(), rand or os.urandom, dhcp_delay_ms, budget_ms)
    socks = _Sockets(ifname)
    try:
        while not b.done:
            _step(b, socks, _now(), log)
            ready = socks.poll.poll(0) if socks.by_key else None
            if ready:
                _receive(b, socks, ready)
                continue
            t = b.get_timer()
            if b.done or t is None:
                break
            if t <= _now():
                b.handle_timer(_now())
            else:
                await asyncio.sleep(min(t - _now(), tick_ms) / 1000)
    finally:
        socks.close()
    return b
