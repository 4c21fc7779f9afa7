"""The ip6 transport: native RFC 6275 (unix board only: raw and packet sockets).

- BUs leave as whole IPv6 packets (src CoA, Home Address option, dst HA) through an IPPROTO_RAW
  socket: the MN writes the IPv6 header itself, as no kernel here adds a Home Address option.
- BAs come back with a type 2 routing header, which a kernel without MIPv6 drops before any raw
  socket sees it: they are read from a packet socket on the board's interface (`link_sock`;
  the uplink hands what it reads to the node's demultiplexer, which asks `ba_in` what it is).
- Data is IPv6-in-IPv6 (next header 41) between the CoA and the HA: a raw protocol-41 socket,
  bound to the CoA, sends the HoA's packets (the kernel adds the outer header) and receives the
  HA's (the kernel strips it). With an IPv4 home address (`v4` set by host4.attach), IPv4-in-IPv6
  (next header 4) the same way: a raw protocol-4 socket (`v4_sock`, read by the uplink too).
"""
import socket
import struct

from roam6.compat import IS_MICROPYTHON

from .transport import AF_INET6, send_counted, sockaddr

_AF_PACKET = 17
_ETH_P_IPV6 = 0x86DD
_NH_IPV6 = 41
_NH_IPV4 = 4
_IPPROTO_RAW = 255


def _ifindex(iface):
    with open("/sys/class/net/%s/ifindex" % iface) as f:
        return int(f.read())


class Ip6Transport:
    name = "ip6"
    v4 = False                          # the node has an IPv4 home address: open v4_sock too

    def __init__(self, ha_text, iface="wlan0"):
        self.ha_addr = sockaddr(ha_text, 0)
        self.iface = iface
        self.t41 = self.raw = self.pkt = None
        self.link_sock = None
        self.v4_sock = None
        self.link_buf = bytearray(1500)
        self.sent = 0
        self.send_errors = 0

    def open(self, coa_text):
        """Sockets for a new care-of address; returns the data socket (link_sock: the BAs')."""
        self.close()
        socks = []
        try:
            t41 = socket.socket(AF_INET6, socket.SOCK_RAW, _NH_IPV6)
            socks.append(t41)
            t41.bind(sockaddr(coa_text, 0))
            raw = socket.socket(AF_INET6, socket.SOCK_RAW, _IPPROTO_RAW)
            socks.append(raw)
            if IS_MICROPYTHON:
                proto = struct.unpack("<H", struct.pack(">H", _ETH_P_IPV6))[0]
            else:
                proto = socket.htons(_ETH_P_IPV6)
            pkt = socket.socket(_AF_PACKET, socket.SOCK_DGRAM, proto)
            socks.append(pkt)
            if IS_MICROPYTHON:     # struct sockaddr_ll, protocol in network order
                pkt.bind(struct.pack("<H", _AF_PACKET) + struct.pack(">H", _ETH_P_IPV6)
                         + struct.pack("<i", _ifindex(self.iface)) + bytes(12))
            else:
                pkt.bind((self.iface, _ETH_P_IPV6))
            if self.v4:
                t4 = socket.socket(AF_INET6, socket.SOCK_RAW, _NH_IPV4)
                socks.append(t4)
                t4.bind(sockaddr(coa_text, 0))
                self.v4_sock = t4
            for s in socks:
                s.setblocking(False)
        except OSError:
            for s in socks:
                s.close()
            raise
        self.t41, self.raw, self.pkt = t41, raw, pkt
        self.link_sock = pkt
        return t41

    def send(self, data):
        """An inner packet of the HoA, tunnelled to the HA."""
        return send_counted(self, self.t41, data, self.ha_addr)

    def send4(self, data):
        """An inner IPv4 packet of the IPv4 HoA, tunnelled to the HA (IPv4-in-IPv6)."""
        return send_counted(self, self.v4_sock, data, self.ha_addr)

    def send_mh(self, pkt):
        """A whole IPv6 packet (the BU with its Home Address option)."""
        return send_counted(self, self.raw, pkt, self.ha_addr)

    def send_raw(self, pkt):
        """A whole IPv6 packet as it is on the access network (route optimisation's direct path)."""
        return self.raw is not None and send_counted(self, self.raw, pkt, sockaddr_of(pkt))

    def close(self):
        for s in (self.t41, self.raw, self.pkt, self.v4_sock):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        self.t41 = self.raw = self.pkt = self.link_sock = self.v4_sock = None


def sockaddr_of(pkt):
    """The destination of a whole IPv6 packet as a sockaddr (IPPROTO_RAW sends where we say)."""
    return sockaddr(socket.inet_ntop(AF_INET6, bytes(pkt[24:40])), 0)


def link_in(node, buf, n):
    """One packet read on the access link into buf[:n], for `node` (the driver's MobileNode): a
    BA with a type 2 routing header from the HA, or route optimisation's (a CoT, data from a CN
    with a type 2 routing header). Here rather than in the driver: only ip6 nodes load it."""
    cfg = node.cfg
    got = ba_in(buf, n, cfg.hoa)
    now = node.now()
    ro = node.ro
    if got is not None and got[1] == cfg.ha:
        if buf[40] == 50 and getattr(node, "ipsec", None) is not None:    # the BA in ESP (ipsecglue.py)
            k = node.reg.receive_esp(got[0], got[1], cfg.hoa, now)
        else:
            k = node.reg.receive_mh(got[0], got[1], cfg.hoa, now)
        if k == "unknown" and got[0][2] == 16:      # Binding Revocation (core/revocation.py)
            from roam6.core.revocation import node_bri
            node_bri(node, got[0], got[1], now)
        elif k == "unknown" and got[0][2] == 12:     # RFC 5142 Home Agent Switch
            from .haswitch import switch_in
            switch_in(node, got[1], got[0], now)
        elif k is not None and ro is not None:
            ro.home_changed(now)
    elif n >= 48 and buf[6] == 58 and buf[40] == 145:   # a DHAAD Reply (haswitch.py asked)
        from .haswitch import dhaad_in
        dhaad_in(node, memoryview(buf)[:n], now)
        return
    elif ro is not None and n >= 40:
        pkt = ro.link_in(memoryview(buf)[:n], now)
        if pkt is not None:
            ro.deliver(pkt)
    else:
        return                          # anything else on the link is the kernel's
    node.flush()


def ba_in(pkt, n, hoa):
    """(MH memoryview, HA address) of a packet read on the link that is IPv6 | type 2 routing
    header naming `hoa` | Mobility Header (or ESP holding one, with IPsec), else None."""
    if n < 72 or (pkt[0] >> 4) != 6 or pkt[6] != 43 or pkt[42] != 2 or pkt[41] != 2:
        return None
    plen = (pkt[4] << 8) | pkt[5]
    if 40 + plen > n or (pkt[40] != 135 and pkt[40] != 50) or bytes(pkt[48:64]) != hoa:
        return None
    return memoryview(pkt)[64:40 + plen], bytes(pkt[8:24])
