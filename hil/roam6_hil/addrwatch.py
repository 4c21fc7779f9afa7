"""Watch an interface's carrier and addresses through netlink and print one JSON line per change,
stamped with time.monotonic(): the bench's record of when the board's address became usable.

    python -m roam6_hil.addrwatch wlan0
    {"t": 812.3051, "ev": "link", "up": true}
    {"t": 812.3093, "ev": "addr", "family": 6, "addr": "2001:db8:a1::ff:fe00:b001", "plen": 64,
     "flags": 0, "added": true}
"""
import ipaddress
import json
import socket
import struct
import sys
import time

RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR = 0x1, 0x10, 0x100
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR = 16, 17, 20, 21
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFF_LOWER_UP = 0x10000


def _attrs(buf, off, end):
    while off + 4 <= end:
        ln, typ = struct.unpack_from("HH", buf, off)
        if ln < 4:
            break
        yield typ & 0x3FFF, buf[off + 4:off + ln]
        off += (ln + 3) & ~3


def parse(buf, ifindex):
    """Netlink messages -> event dicts for `ifindex`."""
    off = 0
    while off + 16 <= len(buf):
        ln, typ = struct.unpack_from("IH", buf, off)
        if ln < 16:
            break
        body = off + 16
        if typ in (RTM_NEWADDR, RTM_DELADDR) and ln >= 24:
            fam, plen, flags, _scope, idx = struct.unpack_from("BBBBi", buf, body)
            if idx == ifindex and fam in (socket.AF_INET, socket.AF_INET6):
                addr = None
                for a, val in _attrs(buf, body + 8, off + ln):
                    if a == IFA_FLAGS and len(val) >= 4:
                        flags = struct.unpack("I", val[:4])[0]
                    elif a == IFA_LOCAL or (a == IFA_ADDRESS and addr is None):
                        addr = str(ipaddress.ip_address(bytes(val)))
                yield {"ev": "addr", "family": 4 if fam == socket.AF_INET else 6, "addr": addr, "plen": plen,
                       "flags": flags, "added": typ == RTM_NEWADDR}
        elif typ in (RTM_NEWLINK, RTM_DELLINK) and ln >= 32:
            _fam, _pad, _type, idx, flags, _change = struct.unpack_from("BBHiII", buf, body)
            if idx == ifindex:
                yield {"ev": "link", "up": bool(flags & IFF_LOWER_UP) and typ == RTM_NEWLINK}
        off += (ln + 3) & ~3


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    iface = argv[0] if argv else "wlan0"
    ifindex = socket.if_nametoindex(iface)
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
    print(json.dumps({"t": time.monotonic(), "ev": "ready", "ifindex": ifindex}), flush=True)
    last_link = None
    while True:
        data = s.recv(65536)
        t = time.monotonic()
        for ev in parse(data, ifindex):
            if ev["ev"] == "link":
                if ev["up"] == last_link:
                    continue
                last_link = ev["up"]
            ev["t"] = t
            print(json.dumps(ev), flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
