"""Finding the HA at boot (CONTRACTS.md §10.3) for a config whose `ha` / `home_prefix` say
"bootstrap": wait for the link's first usable address, run roam6.bootstrap's sequencer (DHCPv6
RFC 6610, DNS RFC 5026, static) over real UDP sockets and fill the config in: the bootstrap's
driver, as roam6.node.driver is the node's. Run once before the node exists; this module and the
bootstrap's are dropped afterwards (they are ~20 KB of heap a small board needs back).

Socket addresses come from `socket.getaddrinfo`, so they are raw sockaddr bytes on the unix
port and tuples on lwIP ports and CPython alike; ff02::1:2 gets the link's scope as `%ifname`.
"""
import asyncio
import gc
import json
import os
import select
import socket
import struct
import sys
import time

from roam6.bootstrap.sequence import BUDGET_MS, Bootstrap, link_has_ip6
from roam6.compat import IS_MICROPYTHON, ticks_diff, ticks_ms
from roam6.wire.addr import ip4_from_text, ip4_to_text, ip6_from_text, ip6_to_text

from . import forget

WAIT_ADDR_MS = 10000
_T0 = ticks_ms()


def _now():
    # ms since import: the sequencer wants a clock that does not wrap (ticks_ms does, after days)
    return ticks_diff(ticks_ms(), _T0)


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
    for data, (dst, dport, sport) in b.datagrams_to_send(now):
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
        b.receive(data, src, sport, _now())


async def run_bootstrap(cfg, mac, have_ip6, dns_servers, ifname=None, rand=None, dhcp_delay_ms=None,
                        log=None, budget_ms=BUDGET_MS, tick_ms=2):
    """Run every configured method until a HA is found -> the finished Bootstrap (`.result`, or
    `.error` and `.notes`). asyncio: polls its sockets every `tick_ms`, other tasks run between."""
    b = Bootstrap(cfg, mac, have_ip6, dns_servers, rand or os.urandom, _now(), dhcp_delay_ms, budget_ms)
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


def _text(a):
    if a is None:
        return None
    from .transport import addr_text
    return addr_text(a)


def run(cfg, link, movement_cls, events):
    """Fill cfg from the network; returns None, or the reason it failed (for a fatal error).
    `events` (a list) receives every link event read meanwhile: the node's movement detector
    starts from them (the adapter's start() dumps the link state only once)."""
    if cfg.hoa is None:
        return "the home address itself cannot be bootstrapped yet: give \"hoa\" in the config"
    t0 = ticks_ms()
    events.extend(link.start())
    mv = movement_cls(cfg.transports, cfg.home_prefix)
    for ev in events:
        mv.feed(ev, 0)
    while mv.coa is None and ticks_diff(ticks_ms(), t0) < WAIT_ADDR_MS:
        time.sleep(0.02)
        for ev in link.read():
            events.append(ev)
            mv.feed(ev, 0)
    if mv.coa is None:
        return "no usable address on %s within %d s to look for the HA from" % (link.ifname, WAIT_ADDR_MS // 1000)
    have_ip6 = link_has_ip6(events, cfg.transports)
    b = asyncio.run(run_bootstrap(cfg.raw, link.mac, have_ip6, link.dns_servers(), ifname=link.ifname))
    r = b.result
    err = None
    if r is None:
        err = "bootstrap found no home agent: %s" % (b.error,)
    else:
        if cfg.ha is None and r.get("ha"):
            cfg.ha = bytes(r["ha"][0])
        if cfg.ha_ipv4 is None and r.get("ha_ipv4"):
            cfg.ha_ipv4 = bytes(r["ha_ipv4"][0])
        if cfg.home_prefix is None and r.get("home_prefix"):
            cfg.home_prefix = (bytes(r["home_prefix"][0]), r["home_prefix"][1])
        print(json.dumps({"t_ms": ticks_ms(), "ev": "bootstrap", "method": r.get("method"),
                          "ha": _text(cfg.ha), "ha_ipv4": _text(cfg.ha_ipv4),
                          "ms": ticks_diff(ticks_ms(), t0)}))
        if cfg.ha is None:
            err = "bootstrap (%s) gave no IPv6 address for the HA" % r.get("method")
        elif cfg.transports == ["udp4"] and cfg.ha_ipv4 is None:
            err = "bootstrap (%s) gave no IPv4 address for the HA (udp4 needs one)" % r.get("method")
    b = r = None
    for name in [k for k in sys.modules if k.startswith("roam6.bootstrap")]:
        forget(name)
    gc.collect()
    return err
