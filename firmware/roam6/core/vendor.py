"""Small vendor data on the MN's BUs: RFC 5094 Vendor-Specific mobility options (type 19) and
RFC 5096 Experimental ones (type 18); docs/PROTOCOL-NOTES.md §6, §12.2.

The application's API (the node's registration is `node.reg`):

    from roam6.core import vendor
    vendor.attach(node.reg, 32473, 1, b"fw 1.4.2")     # IANA enterprise number, sub-type, data
    vendor.experimental(node.reg, b"\\x01\\x02")          # RFC 5096 (one; testing only)
    vendor.clear(node.reg)

Each call replaces the option of that (vendor ID, sub-type) and goes out with the next BU (a
refresh, a move); it is not persisted. At most MAX_BYTES of data in all (the HA keeps no more):
ValueError beyond, nothing changed. Imported only by an application that uses it: a node that
never does pays nothing. Attaching swaps the registration's BU encoder for the one here: the plain
encoder's BU with these options inserted before the MN-HA option (so its MAC covers them).
"""
import struct

from roam6.compat import const
from roam6.core import registration as _reg
from roam6.wire.binding import encode_bu as _plain, pad

MAX_BYTES = const(64)
_opts = []               # [(vendor ID or -1 for experimental, sub-type, data)], in the order set


def attach(reg, vendor_id, subtype, data):
    if not 0 <= vendor_id <= 0xFFFFFFFF or not 0 <= subtype <= 255:
        raise ValueError("vendor ID is 32 bits, sub-type 8 bits")
    _set(reg, vendor_id, subtype, bytes(data))


def experimental(reg, data):
    _set(reg, -1, 0, bytes(data))


def clear(reg):
    _opts[:] = []
    _reg.encode_bu = _plain


def options():
    """What the next BU carries: [(vendor ID or -1, sub-type, data)]."""
    return list(_opts)


def _set(reg, vendor_id, subtype, data):
    keep = [o for o in _opts if o[0] != vendor_id or o[1] != subtype]
    if sum(len(o[2]) for o in keep) + len(data) > MAX_BYTES:
        raise ValueError("vendor data over %d bytes in all" % MAX_BYTES)
    keep.append((vendor_id, subtype, data))
    _opts[:] = keep
    _reg.encode_bu = encode_bu


def _no_mac(prefix):
    return bytes(12)


def encode_bu(seq, flags, lifetime_units, nai, spi, v4coa, timestamp, mac, *more):
    """roam6.wire.binding.encode_bu (same arguments, whatever options it lays out) plus the
    options set here between its last option and the MN-HA option (which the MAC then covers)."""
    out = _plain(seq, flags, lifetime_units, nai, spi, v4coa, timestamp, _no_mac, *more)
    i = end = 12
    while out[i] != 9:                       # up to the MN-HA option, the last; padding dropped
        if out[i] == 0:
            i += 1
            continue
        nxt = i + 2 + out[i + 1]
        if out[i] != 1:
            end = nxt
        i = nxt
    out = out[:end]                          # (MicroPython: no del on a bytearray slice)
    for vid, sub, data in _opts:
        if vid < 0:                          # RFC 5096: Type 18 | Length | Data
            out.append(18)
            out.append(len(data))
        else:                                # RFC 5094: 4n+2; Vendor ID (4), Sub-Type (1), Data
            pad(out, (2 - len(out)) % 4)
            out.append(19)
            out.append(5 + len(data))
            out.extend(struct.pack(">I", vid))
            out.append(sub)
        out.extend(data)
    pad(out, (5 - len(out)) % 8)
    out.append(9)
    out.append(17)
    out.append(1)
    out.extend(struct.pack(">I", spi))
    out[1] = (len(out) + 12) // 8 - 1
    out.extend(mac(out))
    return out
