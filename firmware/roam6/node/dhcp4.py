"""DHCPv4 client messages (RFC 2131/2132, rapid commit RFC 4039), plain functions on bytes, for a
link adapter that does its own addressing (the unix board; docs/PROTOCOL-NOTES.md "DHCPv4").

    pkt = discover(xid, mac, rapid=True)                 # -> OFFER, or ACK at once with rapid commit
    pkt = request(xid, mac, addr, server=None)           # server None: INIT-REBOOT (RFC 2131 §4.3.2)
    m = parse(data, xid, mac)  # -> (mtype, yiaddr, {"mask","router","dns","lease","server","rapid"}) or None

Every request sets the BROADCAST flag: the client has no address yet (or one it has not confirmed),
so the server's answer comes to 255.255.255.255:68.
"""
import struct

from roam6.compat import const

DISCOVER = const(1)
OFFER = const(2)
REQUEST = const(3)
ACK = const(5)
NAK = const(6)
_COOKIE = b"\x63\x82\x53\x63"


def _msg(xid, mac, mtype, opts, ciaddr=bytes(4)):
    head = struct.pack(">BBBBIHH", 1, 1, 6, 0, xid, 0, 0x8000) + ciaddr + bytes(12) + mac + bytes(10 + 64 + 128)
    return head + _COOKIE + bytes((53, 1, mtype)) + opts + b"\x37\x04\x01\x03\x06\x33\xff"


def discover(xid, mac, rapid=True):
    return _msg(xid, mac, DISCOVER, b"\x50\x00" if rapid else b"")


def request(xid, mac, addr, server=None):
    """REQUEST for `addr`: SELECTING (after an OFFER from `server`) or, server None, INIT-REBOOT
    (a remembered address on a network the client believes it is back on)."""
    opts = b"\x32\x04" + addr
    if server:
        opts += b"\x36\x04" + server
    return _msg(xid, mac, REQUEST, opts)


def parse(data, xid, mac, n=None):
    """A server's reply for (xid, mac) in data[:n] (default: all of it) -> (mtype, yiaddr, opts)
    or None (not ours, or malformed)."""
    if n is None:
        n = len(data)
    if n < 240 or data[0] != 2 or data[236:240] != _COOKIE:
        return None
    if struct.unpack_from(">I", data, 4)[0] != xid or data[28:34] != mac:
        return None
    o = {"mask": None, "router": None, "dns": [], "lease": None, "server": None, "rapid": False}
    mtype = None
    i = 240
    while i < n:
        t = data[i]
        if t == 255:
            break
        if t == 0:
            i += 1
            continue
        if i + 2 > n or i + 2 + data[i + 1] > n:
            return None
        ln = data[i + 1]
        v = bytes(data[i + 2:i + 2 + ln])
        i += 2 + ln
        if t == 53 and ln == 1:
            mtype = v[0]
        elif t == 1 and ln == 4:
            o["mask"] = v
        elif t == 3 and ln >= 4:
            o["router"] = v[:4]
        elif t == 6 and ln >= 4:
            o["dns"] = [v[k:k + 4] for k in range(0, ln - 3, 4)]
        elif t == 51 and ln == 4:
            o["lease"] = struct.unpack(">I", v)[0]
        elif t == 54 and ln == 4:
            o["server"] = v
        elif t == 80:
            o["rapid"] = True
    if mtype is None:
        return None
    return mtype, bytes(data[16:20]), o


def plen_of(mask):
    n = 0
    for b in mask or b"\xff\xff\xff\x00":
        while b & 0x80:
            n += 1
            b = (b << 1) & 0xFF
    return n
