"""Vendor data the MNs attach to their BUs: RFC 5094 Vendor-Specific mobility options (type 19)
and RFC 5096 Experimental ones (type 18); docs/PROTOCOL-NOTES.md §6, §12.2, CONTRACTS.md §14.

The binding cache hands every accepted BU it decoded in full (`c.opts`) to `VendorStore.accepted`
(a BU read on the fast path has the layout, hence the same vendor bytes, of an earlier
authenticated one of the same SA: nothing new to store). Kept per binding (the Binding object it
was stored with: a binding removed and made again starts empty), shown by `roam6 ha status`, sent
in accounting (Roam6-Vendor-Data). Any vendor ID and sub-type is carried, none interpreted; at
most MAX_BYTES of data and MAX_OPTIONS options per BU, else the BU is still accepted and its vendor
data is not stored (counted in `oversize`): never fatal.
"""
from roam6_codec import mhopts as mo

MAX_BYTES = 64          # data bytes of all vendor/experimental options of one BU together
MAX_OPTIONS = 8


def from_options(opts):
    """[(vendor_id or None for experimental, subtype or None, data bytes)] of a BU's options,
    or None when over the caps."""
    items = []
    total = 0
    for o in opts:
        if isinstance(o, mo.VendorSpecific):
            items.append((o.vendor_id, o.subtype, bytes(o.data)))
        elif isinstance(o, mo.ExperimentalOption):
            items.append((None, None, bytes(o.data)))
        else:
            continue
        total += len(items[-1][2])
    if len(items) > MAX_OPTIONS or total > MAX_BYTES:
        return None
    return items


def as_text(items):
    """One RADIUS string (FreeRADIUS's SQL-safe characters): "32473:1:0a0b exp:ff" per option."""
    return " ".join(("exp:%s" % d.hex()) if v is None else ("%d:%d:%s" % (v, s, d.hex())) for v, s, d in items)


def as_json(items):
    return [{"experimental": True, "data": d.hex()} if v is None else
            {"vendor_id": v, "subtype": s, "data": d.hex()} for v, s, d in items]


class VendorStore:
    def __init__(self, bindings):
        self.bindings = bindings    # the cache's {HoA: Binding}
        self.data = {}          # {HoA: (Binding, items)}
        self.oversize = 0       # BUs whose vendor data was over the caps (not stored)

    def accepted(self, c, b):
        """An accepted BU context c (its options decoded) for binding b (None: a deregistration)."""
        if b is None:
            self.data.pop(c.hoa, None)
            return
        items = from_options(c.opts)
        if items is None:
            self.oversize += 1
            return
        if items:
            if len(self.data) > 2 * len(self.bindings) + 1024:     # rows of bindings gone since
                self.data = {h: v for h, v in self.data.items() if self.bindings.get(h) is v[0]}
            self.data[b.hoa] = (b, items)
        else:
            self.data.pop(b.hoa, None)

    def get(self, b):
        got = self.data.get(b.hoa)
        return got[1] if got is not None and got[0] is b else []
