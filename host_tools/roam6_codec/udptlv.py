"""The TLV header between UDP and the tunnelled packet (RFC 5555 §4.1, negotiated by the BU/BA
flag T; roam6's layout and when it is used: docs/PROTOCOL-NOTES.md §4.2).

    Type(1) | Length(2, big-endian: octets of the packet that follows) | Reserved(1) | packet

Type 1: the packet is an IP packet, IPv4 or IPv6 by its version nibble. A bare packet in the UDP
payload starts with that nibble (4 or 6), so a receiver tells the two framings apart by the first
byte (`is_tlv`). The MN's compact form is firmware/roam6/node/tlvhdr.py (tests hold them equal).
"""
import struct

from roam6.wire.errors import DecodeError

TLV_IP = 1
HEADER = 4
_HDR = struct.Struct(">BHB")


def encode(packet, type_=TLV_IP):
    """The UDP payload carrying `packet` behind a TLV header."""
    n = len(packet)
    if n > 0xFFFF:
        raise ValueError("a packet of %d bytes does not fit the TLV header's 16-bit Length" % n)
    return _HDR.pack(type_, n, 0) + bytes(packet)


def is_tlv(payload):
    """True when a UDP payload starts like a TLV frame rather than a bare IP packet."""
    return len(payload) > 0 and payload[0] >> 4 not in (4, 6)


def decode(payload):
    """(type, packet) of a TLV frame; DecodeError (offset, why) when it is not a well formed one."""
    n = len(payload)
    if n < HEADER:
        raise DecodeError(n, "a TLV header is %d bytes, got %d" % (HEADER, n))
    t, length, _res = _HDR.unpack_from(payload, 0)
    if length != n - HEADER:
        raise DecodeError(1, "TLV Length %d, but %d bytes follow the header" % (length, n - HEADER))
    return t, memoryview(payload)[HEADER:]


def ip_packet(payload):
    """The IP packet of a Type 1 frame (bytes), or None for anything else (the HA drops it)."""
    n = len(payload)
    if n < HEADER + 20 or payload[0] != TLV_IP or ((payload[1] << 8) | payload[2]) != n - HEADER \
            or payload[4] >> 4 not in (4, 6):
        return None
    return payload[HEADER:]
