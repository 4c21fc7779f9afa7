"""Raw addresses -> text (RFC 5952): the half of roam6.wire.addr a node keeps while it runs.

On a port whose socket module has no inet_ntop (the ESP32's), the MN's transport formats the
addresses it logs with these; the parsing half (roam6.wire.addr) is needed only at start-up and
is dropped then, which it could not be if both halves shared a module (a function keeps its
module's globals alive).
"""


def ip4_to_text(b):
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


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
