"""Just enough rtnetlink for the HA's data plane: /128 routes, proxy neighbour entries, link up/MTU
(and the same for RFC 5555 IPv4 home addresses: a 4-byte address means a /32 route, proxy ARP).

Talking netlink directly (instead of spawning `ip`) keeps a first registration's route change in
the tens of microseconds, so the binding is live for downstream traffic when the BA leaves.
Every request asks for an ACK; a kernel error becomes NetlinkError(errno).
"""
import errno
import os
import socket
import struct

NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x200, 0x400
NLMSG_ERROR = 2
RTM_NEWLINK, RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWNEIGH, RTM_DELNEIGH = 16, 24, 25, 28, 29
RTA_DST, RTA_OIF = 1, 4
NDA_DST = 1
IFLA_MTU = 4
NTF_PROXY, NUD_PERMANENT = 0x08, 0x80
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 4, 0, 1
IFF_UP = 0x1


class NetlinkError(OSError):
    pass


def _attr(kind, data):
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * (-n & 3)


class Netlink:
    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self):
        self.sock.close()

    def _request(self, kind, flags, body):
        self.seq += 1
        msg = struct.pack("=IHHII", 16 + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK, self.seq, 0) + body
        self.sock.send(msg)
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, mtype, _f, seq, _pid = struct.unpack_from("=IHHII", data, off)
                if mtype == NLMSG_ERROR and seq == self.seq:
                    err = -struct.unpack_from("=i", data, off + 16)[0]
                    if err:
                        raise NetlinkError(err, os.strerror(err))
                    return
                off += (length + 3) & ~3
                if length < 16:
                    break

    def _route(self, kind, flags, dst16, ifindex):
        v4 = len(dst16) == 4            # an RFC 5555 IPv4 home address: /32
        body = struct.pack("=BBBBBBBBI", socket.AF_INET if v4 else socket.AF_INET6, 32 if v4 else 128, 0, 0,
                           RT_TABLE_MAIN, RTPROT_STATIC,
                           RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
        body += _attr(RTA_DST, bytes(dst16)) + _attr(RTA_OIF, struct.pack("=i", ifindex))
        self._request(kind, flags, body)

    def route_add(self, dst16, ifindex):
        """dst/128 dev ifindex; replaces a stale one (e.g. left by a killed HA)."""
        self._route(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, dst16, ifindex)

    def route_del(self, dst16, ifindex):
        try:
            self._route(RTM_DELROUTE, 0, dst16, ifindex)
        except NetlinkError as exc:
            if exc.errno not in (errno.ESRCH, errno.ENOENT, errno.ENODEV):
                raise

    def _proxy(self, kind, flags, dst16, ifindex):
        fam = socket.AF_INET if len(dst16) == 4 else socket.AF_INET6    # proxy ARP / proxy ND
        body = struct.pack("=BBHiHBB", fam, 0, 0, ifindex, NUD_PERMANENT, NTF_PROXY, 0)
        self._request(kind, flags, body + _attr(NDA_DST, bytes(dst16)))

    def proxy_add(self, dst16, ifindex):
        self._proxy(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, dst16, ifindex)

    def proxy_del(self, dst16, ifindex):
        try:
            self._proxy(RTM_DELNEIGH, 0, dst16, ifindex)
        except NetlinkError as exc:
            if exc.errno not in (errno.ENOENT, errno.ESRCH, errno.ENODEV):
                raise

    def link_up(self, ifindex, mtu=None):
        body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, ifindex, IFF_UP, IFF_UP)
        if mtu:
            body += _attr(IFLA_MTU, struct.pack("=I", mtu))
        self._request(RTM_NEWLINK, 0, body)
