"""The TLV header format on the udp4 path (RFC 5555 §4.1, BU/BA flag T; docs/PROTOCOL-NOTES.md §4.2).

Loaded only when config.json has "ipv4_tlv_header": true (with "ipv4_hoa"; node/host4.py attaches
it): a node without it carries none of this, and a board's bundle may exclude the module.

Negotiation: every BU the node sends over udp4 sets T (0x0080 of the flags word; the MN-HA MAC
covers it). A counted BA (status < 128) for a udp4 binding with T (0x10 of its flags byte) turns
the framing on; a BA without T, or any move, turns it off until the next such BA. While on, every
inner packet the node sends over udp4 (data, IPv4 or IPv6, and BUs) leaves as

    UDP payload = Type(1) = 1 | Length(2, big-endian: octets of the packet) | Reserved(1) = 0 | packet

What comes from the HA is taken in both framings (a TLV frame starts with 1, a bare packet with
its IP version nibble 4 or 6), so the moments around a move, when the two ends have not yet
agreed, lose nothing. A TLV frame whose Type is not 1 or whose Length does not match is dropped.
"""
from roam6.compat import const

TLV_IP = const(1)             # Type: an IP packet follows (its version nibble says 4 or 6)
_BU_T = const(0x0080)
_BA_T = const(0x10)
_BU_F = const(0x0100)
_TMP = memoryview(bytearray(64))


def frame(buf, n):
    """Write the TLV header before the n-byte packet already at buf[4:4 + n]; the frame's length."""
    buf[0] = TLV_IP
    buf[1] = n >> 8
    buf[2] = n & 0xFF
    buf[3] = 0
    return n + 4


def unframe(buf, n):
    """buf[:n] holds a TLV frame: move the packet it carries to buf[0:] and return its length;
    0 when the frame is not a well formed Type 1 frame (Length = the bytes after the header, and
    they start like an IPv4 or IPv6 packet)."""
    if n < 5 or buf[0] != TLV_IP or ((buf[1] << 8) | buf[2]) != n - 4 or (buf[4] >> 4) not in (4, 6):
        return 0
    mv = memoryview(buf)
    t = _TMP
    for i in range(0, n - 4, 64):        # forward, through a small buffer: slices may not overlap
        k = min(64, n - 4 - i)
        t[:k] = mv[i + 4:i + 4 + k]
        mv[i:i + k] = t[:k]
    return n - 4


def parse_config(raw, err):
    """config.json "ipv4_tlv_header": a bool, and only beside "ipv4_hoa" (node/config.py)."""
    v = raw["ipv4_tlv_header"]
    if v is not True and v is not False:
        raise err("ipv4_tlv_header", "must be true or false, got %r" % (v,))
    if v and "ipv4_hoa" not in raw:
        raise err("ipv4_tlv_header", "needs \"ipv4_hoa\" (the TLV header carries the IPv4 home address's traffic)")


def attach(node):
    """Give `node` the TLV framing (called by host4.attach, after its own wrappers)."""
    import roam6.core.registration as registration
    from . import transport
    reg = node.reg
    st = [False, None]            # on: the HA acknowledged T for the current udp4 binding; last BA's T
    out = bytearray(1284)         # frame + packet, so a send allocates nothing
    outv = memoryview(out)
    enc = registration.encode_bu

    def encode_bu(seq, flags, lifetime_units, nai, spi, v4coa, timestamp, mac, v4hoa=None):
        if v4coa is not None and flags & _BU_F:          # over udp4: ask for the TLV header
            flags |= _BU_T
        return enc(seq, flags, lifetime_units, nai, spi, v4coa, timestamp, mac, v4hoa)
    registration.encode_bu = encode_bu

    mv_ = reg.move

    def move(coa, tr, now):
        st[0] = False                 # a new path: bare until its BA says T
        mv_(coa, tr, now)
    reg.move = move
    rmh = reg.receive_mh

    def receive_mh(raw, src, dst, now):
        kind = rmh(raw, src, dst, now)
        if kind == "ba" and raw[6] < 128 and reg.transport == "udp4":
            st[0] = on = bool(raw[7] & _BA_T)
            if on != st[1]:               # logged when the HA's answer changes, not at every roam
                st[1] = on
                node.log("tlv", on=on)
        return kind
    reg.receive_mh = receive_mh

    cls = transport.UdpTransport
    send = cls.send

    def send_tlv(self, data):
        n = len(data)
        if not st[0] or self.name != "udp4" or n > 1280:
            return send(self, data)
        outv[4:4 + n] = data
        return send(self, outv[:frame(out, n)])
    cls.send = cls.send_mh = send_tlv

    pin = node.packet_in

    def packet_in(n):
        rx = node.rx
        if n and rx[0] == TLV_IP:
            n = unframe(rx, n)
            if not n:
                return
        pin(n)
    node.packet_in = packet_in

    rd = transport.readinto
    if hasattr(transport, "readable"):           # MicroPython: read exactly one datagram

        async def readinto(sock, buf):
            await transport.readable(sock)
            h = sock.recv(4, transport._MSG_PEEK) if transport._MSG_PEEK is not None else None
            if h and len(h) == 4 and h[0] == TLV_IP:
                return sock.readinto(buf, min(4 + ((h[1] << 8) | h[2]), len(buf))) or 0
            return await rd(sock, buf)
        transport.readinto = readinto     # (read_each looks it up there at each read)
