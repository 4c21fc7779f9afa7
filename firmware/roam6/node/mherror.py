"""A Binding Error with status 2 for a Mobility Header of a type the MN does not know (RFC 6275
§9.2, docs/PROTOCOL-NOTES.md §11.13), at most one a second. The driver imports this module when
the first such message arrives: a node that never sees one pays nothing for it. It hands a Home
Agent Switch (MH type 12) to haswitch.py."""
import struct

from roam6.compat import const
from roam6.wire.binding import ipv6_packet
from roam6.wire.checksum import checksum6

_INTERVAL_MS = const(1000)
_last = [None]          # when the last one left (the MN's `now`), for every peer together


def binding_error(src, dst, status, now):
    """The IPv6 packet src -> dst holding a Binding Error (its Home Address unspecified: the
    message that caused it carried no Home Address option), or None while the limit holds."""
    last = _last[0]
    if last is not None and now - last < _INTERVAL_MS:
        return None
    _last[0] = now
    mh = bytearray(24)
    mh[0] = 59          # Payload Proto: IPPROTO_NONE
    mh[1] = 2           # Header Len: 24 bytes
    mh[2] = 7           # MH type: Binding Error
    mh[6] = status
    struct.pack_into(">H", mh, 4, checksum6(src, dst, 135, mh))
    return ipv6_packet(src, dst, 135, mh)


def answer(node, pkt, now):
    """The node's answer to the unknown message in the inner packet pkt (to the HoA): from the
    HoA to its source, on the node's data path (the tunnel to the HA). A Binding Revocation (MH
    16) goes to core/revocation.py and a Home Agent Switch (RFC 5142, MH 12) to haswitch instead
    (each loaded on the first one): no Binding Error for a type the MN implements."""
    if pkt[42] == 16:
        from roam6.core.revocation import node_bri
        node_bri(node, pkt[40:40 + ((pkt[4] << 8) | pkt[5])], bytes(pkt[8:24]), now)
        return
    if pkt[42] == 12:
        from .haswitch import switch_in
        switch_in(node, pkt[8:24], pkt[40:40 + ((pkt[4] << 8) | pkt[5])], now)
        return
    be = binding_error(node.cfg.hoa, bytes(pkt[8:24]), 2, now)
    if be is not None:
        node.send_packet(be)
