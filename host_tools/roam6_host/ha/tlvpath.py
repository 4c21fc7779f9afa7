"""The HA's side of the RFC 5555 TLV header on udp4 (docs/PROTOCOL-NOTES.md §4.2).

The BU rules grant it (ha/cache.py: BA flag T and `Binding.tlv` when an accepted udp4 BU sets T
and the HA has IPv4 home addresses); the driver (ha/driver.py) calls `tlv_in` for a udp4 datagram
whose first byte is 1 (a bare IPv4/IPv6 packet starts with its version nibble), before its usual
tests on the inner packet, and `frame` for what the TUN sends to a binding with `tlv`. A frame
that is not a well formed Type 1 frame is dropped and logged once per source.
"""
from roam6_codec.udptlv import encode as frame, ip_packet

__all__ = ["frame", "tlv_in"]


def tlv_in(ha, data, peer):
    """The inner packet of a TLV frame from `peer`, or None (dropped, logged once per source)."""
    inner = ip_packet(data)
    if inner is None:
        ha.log.once((peer[0], "tlv"), "dropped", source="udp4:%s:%d" % tuple(peer),
                    reason="TLV header malformed (Type 1, Length = the bytes that follow, an IP packet)")
    return inner
