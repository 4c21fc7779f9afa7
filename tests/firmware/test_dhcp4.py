"""DHCPv4 client messages of the board's own addressing (roam6.node.dhcp4); the server side is
real dnsmasq in tests/hil/test_dna.py."""
import struct

from roam6.node import dhcp4

MAC = b"\x02\x00\x00\x00\xb0\x01"
XID = 0x1234ABCD


def _opts(pkt):
    assert pkt[236:240] == b"\x63\x82\x53\x63"
    out, i = {}, 240
    while pkt[i] != 255:
        out[pkt[i]] = bytes(pkt[i + 2:i + 2 + pkt[i + 1]])
        i += 2 + pkt[i + 1]
    return out


def _reply(mtype, yiaddr=b"\xc0\x00\x02\x32", xid=XID, mac=MAC, extra=b""):
    head = struct.pack(">BBBBIHH", 2, 1, 6, 0, xid, 0, 0x8000) + bytes(4) + yiaddr + bytes(8) + mac + bytes(202)
    return (head + b"\x63\x82\x53\x63" + bytes((53, 1, mtype)) + b"\x01\x04\xff\xff\xff\x00\x03\x04\xc0\x00\x02\x01"
            + b"\x06\x08\xc0\x00\x02\x01\x08\x08\x08\x08\x33\x04\x00\x00\x0e\x10\x36\x04\xc0\x00\x02\x01" + extra
            + b"\xff")


def test_discover_asks_rapid_commit_and_broadcast():
    p = dhcp4.discover(XID, MAC)
    assert p[0] == 1 and struct.unpack_from(">I", p, 4)[0] == XID and p[28:34] == MAC
    assert struct.unpack_from(">H", p, 10)[0] == 0x8000         # BROADCAST: no address to answer to yet
    o = _opts(p)
    assert o[53] == b"\x01" and 80 in o                          # DISCOVER, rapid commit (RFC 4039)
    assert 80 not in _opts(dhcp4.discover(XID, MAC, rapid=False))


def test_init_reboot_request_has_no_server_id():
    o = _opts(dhcp4.request(XID, MAC, b"\xc0\x00\x02\x32"))
    assert o[53] == b"\x03" and o[50] == b"\xc0\x00\x02\x32" and 54 not in o   # RFC 2131 §4.3.2
    o = _opts(dhcp4.request(XID, MAC, b"\xc0\x00\x02\x32", b"\xc0\x00\x02\x01"))
    assert o[54] == b"\xc0\x00\x02\x01"                          # SELECTING: the server chosen


def test_parse_ack():
    mtype, yiaddr, o = dhcp4.parse(_reply(dhcp4.ACK, extra=b"\x50\x00"), XID, MAC)
    assert mtype == dhcp4.ACK and yiaddr == b"\xc0\x00\x02\x32"
    assert o["router"] == b"\xc0\x00\x02\x01" and o["lease"] == 3600 and o["rapid"]
    assert o["dns"] == [b"\xc0\x00\x02\x01", b"\x08\x08\x08\x08"] and dhcp4.plen_of(o["mask"]) == 24


def test_parse_refuses_what_is_not_ours():
    assert dhcp4.parse(_reply(dhcp4.ACK, xid=XID + 1), XID, MAC) is None
    assert dhcp4.parse(_reply(dhcp4.ACK, mac=b"\x02" * 6), XID, MAC) is None
    assert dhcp4.parse(_reply(dhcp4.ACK)[:200], XID, MAC) is None
    bad = bytearray(_reply(dhcp4.NAK))
    bad[-1] = 60      # an option running past the end
    bad += b"\x10"
    assert dhcp4.parse(bytes(bad), XID, MAC) is None
    assert dhcp4.parse(dhcp4.discover(XID, MAC), XID, MAC) is None   # a client's message (op 1)


def test_plen_of():
    assert dhcp4.plen_of(b"\xff\xff\xfe\x00") == 23 and dhcp4.plen_of(None) == 24


def test_parse_from_a_shared_buffer():
    """The adapter reads every reply into one buffer: only the first n bytes count (a second
    datagram glued behind the end option, or old bytes, are not options)."""
    r = _reply(dhcp4.ACK)
    buf = bytearray(600)
    buf[:len(r)] = r
    buf[len(r):len(r) + 3] = b"\x35\x01\x06"        # stale bytes after it: a NAK's type option
    mtype, yiaddr, _o = dhcp4.parse(buf, XID, MAC, len(r))
    assert mtype == dhcp4.ACK and yiaddr == b"\xc0\x00\x02\x32"
    assert dhcp4.parse(buf, XID, MAC, 239) is None
