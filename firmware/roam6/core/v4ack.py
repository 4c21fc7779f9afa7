"""The IPv4 home address of a registration (RFC 5555 §3.1.1, §3.2.1; docs/PROTOCOL-NOTES.md §4).
Its own module, loaded only by a node whose config has "ipv4_hoa": an IPv6-only node's heap holds
none of it.

enable(reg, address) makes the Registration ask for `address` (4 bytes; 0.0.0.0: "assign me
one"): it sets `reg.v4hoa`, which every BU carries from then on (roam6.wire.binding encode_bu),
and puts an instance attribute in front of `reg.receive_mh` that, after a BA the registration
counted (status < 128: the IPv6 binding accepted; not a deregistration), queues the event

    ("ipv4", status, address)    status < 128: `address` is bound (the next BUs carry it);
                                 >= 128: refused (RFC 5555 §3.2.1 codes); -1: the BA has no
                                 acknowledgement at all (the HA offers no IPv4 home addresses)

A refusal of the configured address sets `reg.v4hoa` to None: the node stays IPv6-only and its BUs
stop asking. A refusal of an address the HA gave earlier (it was reassigned meanwhile, e.g. the
keys file changed) makes the next BUs ask for the configured one again (0.0.0.0: a new one).
(sans-IO as the registration: bytes and `now` in, events out.)
"""
from roam6.compat import const
from roam6.wire.binding import options

_MO_V4ACK = const(30)


def ack_of(raw):
    """(status, IPv4 HoA) of the BA's IPv4 Address Acknowledgement, or None."""
    for t, s, e in options(raw, 12, len(raw)) or ():
        if t == _MO_V4ACK and e - s == 6:
            return raw[s], bytes(raw[s + 2:e])
    return None


def enable(reg, address):
    reg.v4hoa = ask = bytes(address)
    counted = reg.receive_mh

    def receive_mh(raw, src, dst, now):
        kind = counted(raw, src, dst, now)
        if kind == "ba" and reg.v4hoa is not None and raw[6] < 128 and reg.coa != reg.hoa:
            status, addr = ack_of(raw) or (-1, None)
            reg.v4hoa = addr if status < 128 else (ask if status > 0 and reg.v4hoa != ask else None)
            reg._events.append(("ipv4", status, addr))
        return kind
    reg.receive_mh = receive_mh
