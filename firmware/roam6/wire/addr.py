"""IPv6/IPv4 addresses: raw bytes inside the codec, text only at the edges (no `ipaddress` here).

Text output follows RFC 5952: lower case, longest run of two or more zero groups as `::`
(the first one on a tie), and `::ffff:a.b.c.d` for IPv4-mapped addresses.
"""


def ip4_to_text(b):
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


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


def ip6_to_text(b):
    if len(b) != 16:
        raise ValueError("an IPv6 address is 16 bytes, not %d" % len(b))
    if b[:12] == b"\0\0\0\0\0\0\0\0\0\0\xff\xff":
        return "::ffff:" + ip4_to_text(b[12:])
    g = [(b[i] << 8) | b[i + 1] for i in range(0, 16, 2)]
    best = blen = 0
    i = 0
    while i < 8:  # find the longest run of zero groups
        if g[i] == 0:
            j = i
            while j < 8 and g[j] == 0:
                j += 1
            if j - i > blen:
                best, blen = i, j - i
            i = j
        else:
            i += 1
    if blen < 2:
        return ":".join("%x" % x for x in g)
    return (":".join("%x" % x for x in g[:best]) + "::"
            + ":".join("%x" % x for x in g[best + blen:]))


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
