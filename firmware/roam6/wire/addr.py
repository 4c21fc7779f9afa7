"""IPv6/IPv4 addresses: raw bytes inside the codec, text only at the edges (no `ipaddress` here).

Text output follows RFC 5952: lower case, longest run of two or more zero groups as `::`
(the first one on a tie), and `::ffff:a.b.c.d` for IPv4-mapped addresses.
"""
from .addrtext import ip4_to_text, ip6_to_text  # noqa: F401  (the text half, a module of its own)


def ip4_from_text(s):
    parts = s.split(".")
    if len(parts) != 4:
        raise ValueError("bad IPv4 address %r: want a.b.c.d" % s)
    out = bytearray(4)
    for i in range(4):
        p = parts[i]
        if not p.isdigit() or len(p) > 3 or int(p) > 255:
            raise ValueError("bad IPv4 address %r" % s)
        out[i] = int(p)
    return bytes(out)


def _groups(s, whole):
    out = []
    if not s:
        return out
    parts = s.split(":")
    for k in range(len(parts)):
        p = parts[k]
        if "." in p and k == len(parts) - 1:
            v = ip4_from_text(p)
            out.append((v[0] << 8) | v[1])
            out.append((v[2] << 8) | v[3])
            continue
        if not 1 <= len(p) <= 4:
            raise ValueError("bad IPv6 address %r" % whole)
        try:
            out.append(int(p, 16))
        except ValueError:
            raise ValueError("bad IPv6 address %r" % whole)
    return out


def ip6_from_text(s):
    if not isinstance(s, str):
        raise ValueError("an IPv6 address must be text, not %r" % (s,))
    if s.count("::") > 1:
        raise ValueError("bad IPv6 address %r: '::' appears twice" % s)
    if "::" in s:
        head, tail = s.split("::")
        h = _groups(head, s)
        t = _groups(tail, s)
        if len(h) + len(t) > 7:
            raise ValueError("bad IPv6 address %r: too many groups" % s)
        g = h + [0] * (8 - len(h) - len(t)) + t
    else:
        g = _groups(s, s)
        if len(g) != 8:
            raise ValueError("bad IPv6 address %r: want 8 groups" % s)
    out = bytearray(16)
    for i in range(8):
        out[2 * i] = g[i] >> 8
        out[2 * i + 1] = g[i] & 0xFF
    return bytes(out)
