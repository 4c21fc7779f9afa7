"""The IPv4 side of the user-space host: the IPv4 home address (RFC 5555 §3.1.1, §4.1).

Loaded only when config.json has "ipv4_hoa" (an IPv6-only node never imports it). It shares the
IPv6 host's `roam6` sockets, port table and transmit buffer: a socket is dual-stack, the
application picks the family by the address it sends to (4 bytes or "a.b.c.d": IPv4 from the
IPv4 HoA; else IPv6 from the HoA), and a datagram that came to the IPv4 HoA is reported with its
4-byte source address, so answering with the address recvfrom gave goes back over IPv4. Echo
requests to the IPv4 HoA are answered (the IPv4 HoA answers ping).

Inner IPv4 packets ride the same transport as the IPv6 ones: whole packets in the UDP payload
(udp4/udp6, told apart by the version nibble, docs/PROTOCOL-NOTES.md §4); `addr` is None until
the HA acknowledged the address (BA with an IPv4 Address Acknowledgement of status < 128), and
nothing is sent from it meanwhile.
"""
import struct

from roam6.compat import const
from roam6.wire.checksum import finish, inet_sum, pseudo_sum

_P_ICMP = const(1)
_P_UDP = const(17)
_MTU = const(1280)

# RFC 5555 §3.2.1 status codes, for the log line that says why the IPv4 HoA was refused (short:
# each text is an object on the heap of a node that has this module)
REASONS = {-1: "the HA offers none", 128: "unspecified", 129: "prohibited", 130: "another node's",
           131: "outside the home prefix", 132: "pool exhausted", 133: "prefix unauthorized"}


def attach(node):
    """Give `node` (a driver.MobileNode whose config has "ipv4_hoa") its IPv4 side, all of it here
    so an IPv6-only node carries none of it: the BUs ask for the address and the BA's answer is
    read (roam6.core.v4ack.enable); the host gets its IPv4 half; three of the node's methods get an instance attribute
    in front of them that adds the IPv4 part and calls them for the rest:
    - packet_in (each datagram from the HA; the uplink reads it when a transport opens, so this
      is set before any): IPv4 packets go to the IPv4 half;
    - reg.next_event (read by the node's flush): the registration's ("ipv4", status, address)
      events are handled and logged here (`report`), the others passed on;
    - uplink.open: over ip6, the IPv4-in-IPv6 socket (`Ip6Transport.v4_sock`) is read too."""
    from roam6.core.v4ack import enable
    cfg = node.cfg
    reg = node.reg
    enable(reg, cfg.ipv4_hoa)
    v4 = Host4(node)
    six = node.packet_in

    def packet_in(n):
        buf = node.rx
        if n >= 20 and buf[0] >> 4 == 4:
            v4.input(buf, n)
        else:
            six(n)
    node.packet_in = packet_in
    nxt = reg.next_event

    def next_event():
        ev = nxt()
        while ev is not None and ev[0] == "ipv4":
            report(node, ev)
            ev = nxt()
        return ev
    reg.next_event = next_event
    if getattr(cfg, "ipv4_tlv_header", False):      # RFC 5555 TLV header on udp4 (tlvhdr.py)
        from .tlvhdr import attach as tlv
        tlv(node)
    if "ip6" in cfg.transports:
        try:
            from .ip6 import Ip6Transport
        except ImportError:
            return
        Ip6Transport.v4 = True                # IPv4-in-IPv6 beside IPv6-in-IPv6
        up = node.uplink
        opn = up.open

        def open_(name, coa):
            tr = opn(name, coa)
            s = getattr(tr, "v4_sock", None)
            if s is not None:
                from .transport import read_each
                import asyncio
                up.tasks.append(asyncio.create_task(read_each(s, node.rx, node.packet_in)))
            return tr
        up.open = open_


class Host4:
    def __init__(self, node):
        self.node = node
        self.host = host = node.host
        self.addr = None                # the IPv4 HoA the HA bound (4 bytes) or None
        self.ident = 0
        self.dropped = 0
        host.v4 = self

    def _out(self, mv):
        node = self.node
        tr = node.uplink.active
        o = node.uplink.old           # a switch of transport: the old one until the BU has left
        if o is not None and o[3]:
            tr = o[0]
        if tr is None or self.host.home is not None:
            return False
        return getattr(tr, "send4", tr.send)(mv)

    def send_udp(self, sport, dst, dport, data):
        n = len(data)
        if 28 + n > _MTU:
            raise ValueError("datagram of %d bytes is larger than %d" % (n, _MTU - 28))
        src = self.addr
        if src is None:
            return 0
        host = self.host
        tx = host.tx
        txv = host.txv
        self.ident = (self.ident + 1) & 0xFFFF
        struct.pack_into(">BBHHHBBH4s4sHHHH", tx, 0, 0x45, 0, 28 + n, self.ident, 0x4000, 64, _P_UDP, 0,
                         src, dst, sport, dport, 8 + n, 0)
        tx[28:28 + n] = data
        c = finish(inet_sum(txv[:20]))
        tx[10] = c >> 8
        tx[11] = c & 0xFF
        c = finish(inet_sum(txv[20:28 + n], pseudo_sum(src, dst, 8 + n, _P_UDP))) or 0xFFFF
        tx[26] = c >> 8
        tx[27] = c & 0xFF
        return n if self._out(txv[:28 + n]) else 0

    def input(self, buf, n):
        """One inner IPv4 packet in buf[:n] from the HA's tunnel. True when it was used."""
        if n < 28 or buf[0] != 0x45 or self.addr is None:
            return False
        mv = memoryview(buf)
        tot = (buf[2] << 8) | buf[3]
        if tot > n or tot < 28 or bytes(mv[16:20]) != self.addr or finish(inet_sum(mv[:20])) \
                or (buf[6] & 0x3F) or buf[7]:           # no fragments
            self.dropped += 1
            return False
        p = buf[9]
        if p == _P_UDP:
            sport, dport, ulen, ck = struct.unpack_from(">HHHH", buf, 20)
            sock = self.host.ports.get(dport)
            if (sock is None or ulen < 8 or 20 + ulen > tot
                    or (ck and finish(inet_sum(mv[20:20 + ulen], pseudo_sum(mv[12:16], mv[16:20], ulen, _P_UDP))))):
                self.dropped += 1
                return False
            sock._deliver(bytes(mv[28:20 + ulen]), bytes(mv[12:16]), sport)
            return True
        if p != _P_ICMP or buf[20] != 8 or buf[21] != 0 or finish(inet_sum(mv[20:tot])):
            self.dropped += 1
            return False
        # echo request: answer in place (swap the addresses, type 0, both checksums again)
        t = bytes(mv[12:16])
        buf[12:16] = mv[16:20]
        buf[16:20] = t
        buf[8] = 64
        buf[10] = buf[11] = 0
        c = finish(inet_sum(mv[:20]))
        buf[10] = c >> 8
        buf[11] = c & 0xFF
        buf[20] = 0
        buf[22] = buf[23] = 0
        c = finish(inet_sum(mv[20:tot]))
        buf[22] = c >> 8
        buf[23] = c & 0xFF
        self._out(mv[:tot])
        return True


def report(node, ev):
    """The registration's ("ipv4", status, address) event: the address bound or why not."""
    from .transport import addr_text
    _, status, addr = ev
    v4 = node.host.v4
    if status >= 0 and status < 128:
        v4.addr = addr
        node.log("ipv4", status=status, hoa4=addr_text(addr))
    else:
        v4.addr = None
        node.log("ipv4", status=status, hoa4=None,
                 reason="IPv4 HoA refused (%s): IPv6 only" % REASONS.get(status, status))
