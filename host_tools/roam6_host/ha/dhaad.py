"""Finding home agents and the home prefix: DHAAD (RFC 6275 §10.5, §11.4.1) and Mobile Prefix
Solicitation / Advertisement (§11.4.2-3) at the HA (docs/PROTOCOL-NOTES.md §11.15).

- DHAAD: the HA joins the home agents anycast address of its home prefix (RFC 2526: for a /64,
  prefix::fdff:ffff:ffff:fffe) on the home link, so the kernel answers Neighbor Solicitations for
  it and delivers packets to it, reads ICMPv6 Home Agent Address Discovery Requests (type 144)
  from a raw ICMPv6 socket and answers each with a Reply (145) listing ha.json `home_agents`
  (preferred first; default: this HA alone), from the HA's own address. The request carries no
  authentication: replies are limited to 50 a second in all.
- MPS/MPA: a Mobile Prefix Solicitation (146) that a bound MN sends through its tunnel (inner
  packet HoA -> HA, outer address and port those of its binding) is answered through the tunnel
  with a Mobile Prefix Advertisement (147) holding the home prefix (Prefix Information option,
  flags A and R, the HA's address in it). An unbound source gets nothing.
"""
import ipaddress
import socket
import struct
import time

from roam6.wire.checksum import checksum6
from roam6.wire.ipv6 import build_ipv6
from .loopsock import LoopSocket

T_DHAAD_REQ, T_DHAAD_REP, T_MPS, T_MPA = 144, 145, 146, 147
NH_ICMP6 = 58
PREFIX_VALID_S = 86400
PREFIX_PREFERRED_S = 14400
MAX_REPLIES_PER_S = 50


def anycast(net):
    """RFC 2526 home agents anycast address of an ipaddress.IPv6Network (ID 126 = 0x7e)."""
    n = net.prefixlen
    host = (1 << (128 - n)) - 1            # all ones after the prefix ...
    host &= ~0x7F                          # ... the last 7 bits the anycast ID
    host |= 0x7E
    if n == 64:
        host &= ~(1 << 57)                 # EUI-64: the universal/local bit is 0 (fdff:...)
    return (int(net.network_address) | host).to_bytes(16, "big")


def parse_home_agents(v, c, err):
    if v is None:
        return [c.address]
    if not isinstance(v, list) or not v or len(v) > 50:
        raise err("home_agents", "must be a list of 1-50 IPv6 addresses, got %r" % (v,),
                  "the home agents of this home link, preferred first")
    out = []
    for a in v:
        try:
            x = ipaddress.IPv6Address(a)
        except (ValueError, TypeError):
            raise err("home_agents", "has %r, not an IPv6 address" % (a,), "write it like \"2001:db8:aa::2\"") from None
        if x not in c.home_prefix:
            raise err("home_agents", "%s is not inside home_prefix %s" % (x, c.home_prefix), "HAs of this home link")
        out.append(x.packed)
    return out


def dhaad_reply(icmp, home_agents):
    """The ICMPv6 message (checksum 0: the kernel's raw socket sums it) answering a Home Agent
    Address Discovery Request, or None when icmp is not one."""
    if len(icmp) < 8 or icmp[0] != T_DHAAD_REQ or icmp[1] != 0:
        return None
    return struct.pack(">BBHHH", T_DHAAD_REP, 0, 0, (icmp[4] << 8) | icmp[5], 0) + b"".join(home_agents)


def mpa_packet(pkt, cfg):
    """The inner IPv6 packet answering a Mobile Prefix Solicitation in pkt (an inner packet HoA ->
    HA with no extension headers), or None when pkt is not one."""
    if len(pkt) < 48 or pkt[6] != NH_ICMP6 or pkt[40] != T_MPS or pkt[41] != 0:
        return None
    hoa, ha = bytes(pkt[8:24]), cfg.address
    if checksum6(hoa, bytes(pkt[24:40]), NH_ICMP6, bytes(pkt[40:])) != 0:
        return None
    net = cfg.home_prefix
    # Prefix Information (RFC 4861 §4.6.2; RFC 6275 §7.2: R = the router's address in it)
    pio = struct.pack(">BBBBIII", 3, 4, net.prefixlen, 0x40 | 0x20, PREFIX_VALID_S, PREFIX_PREFERRED_S, 0) + ha
    renum = getattr(cfg, "renumber", None)
    if renum is not None:           # renumbering: the new prefix, then the old one deprecated (ha/prefixes.py)
        pio = renum.pios(ha, time.monotonic_ns() // 1_000_000)
    icmp = bytearray(struct.pack(">BBHHH", T_MPA, 0, 0, (pkt[44] << 8) | pkt[45], 0) + pio)
    struct.pack_into(">H", icmp, 2, checksum6(ha, hoa, NH_ICMP6, icmp))
    return build_ipv6(ha, hoa, NH_ICMP6, bytes(icmp))


class Dhaad(LoopSocket):
    """The raw ICMPv6 socket of DHAAD, in the HA's epoll (driver.py)."""

    def __init__(self, ha):
        self.ha = ha
        self.sock = None
        self.replies = 0
        self._sec = 0
        self._n = 0

    def open(self):
        cfg = self.ha.cfg
        if cfg.home_link is None:
            return                          # no home link: nothing to join the anycast address on
        try:
            s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            flt = bytearray(b"\xff" * 32)     # ICMP6_FILTER: block all but 144
            flt[T_DHAAD_REQ >> 5 << 2:(T_DHAAD_REQ >> 5 << 2) + 4] = struct.pack(
                "=I", 0xFFFFFFFF & ~(1 << (T_DHAAD_REQ & 31)))
            s.setsockopt(socket.IPPROTO_ICMPV6, 1, bytes(flt))
            idx = socket.if_nametoindex(cfg.home_link)
            s.setsockopt(socket.IPPROTO_IPV6, 27, anycast(cfg.home_prefix) + struct.pack("=i", idx))  # JOIN_ANYCAST
            s.setblocking(False)
        except OSError as exc:
            self.ha.log("warning", reason="no DHAAD (home agents anycast address): %s" % exc.strerror)
            return
        self.sock = s

    def on_readable(self):
        cfg = self.ha.cfg
        for _ in range(64):
            try:
                data, addr = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            rep = dhaad_reply(data, cfg.home_agents)
            if rep is None:
                continue
            sec = int(time.monotonic())
            if sec != self._sec:
                self._sec, self._n = sec, 0
            self._n += 1
            if self._n > MAX_REPLIES_PER_S:
                continue
            try:               # from the HA's own address (not the anycast one, RFC 6275 §10.5)
                self.sock.sendmsg([rep], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, cfg.address + b"\0" * 4)],
                                  0, addr[:2] + (0, addr[3] if len(addr) > 3 else 0))
                self.replies += 1
            except OSError as exc:
                self.ha.log.once(("dhaad", exc.errno), "send_error", peer=addr[0], reason=exc.strerror)
