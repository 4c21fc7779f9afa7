"""DNS stub resolver for RFC 5026 bootstrapping: SRV `_mip6._ipv6.<domain>`, then AAAA/A.

RFC 1035 messages over UDP only (a truncated answer is refused, there is no TCP on the board).
Names are parsed with compression pointers that must point strictly backwards and are bounded
in number, so a hostile answer cannot loop the parser. Sans-IO, on the machines' contract
(`now`: int ms, the last positional argument): `DnsClient` is fed answers (`receive`) and hands
back queries (`datagrams_to_send`: [(bytes, (server, 53, 0))], i.e. (address, port, source port;
0 = any)) and its next deadline (`get_timer` / `handle_timer`).
"""
import struct

from roam6.compat import const
from roam6.wire.errors import DecodeError

PORT = const(53)
A = const(1)
CNAME = const(5)
AAAA = const(28)
SRV = const(33)
TIMEOUT_MS = const(1000)
ROUNDS = const(2)  # each query goes to every server up to this many times
_MAX_JUMPS = const(16)


def encode_name(name):
    """'ha.example.test' -> DNS wire format (also the DHCPv6 FQDN format)."""
    out = bytearray()
    for label in name.rstrip(".").split("."):
        b = label.encode()
        if not 0 < len(b) < 64:
            raise ValueError("bad DNS name %r: labels must be 1-63 bytes" % name)
        out.append(len(b))
        out += b
    out.append(0)
    if len(out) > 255:
        raise ValueError("bad DNS name %r: longer than 255 bytes" % name)
    return bytes(out)


def read_name(buf, off, end=None, ptrs=True):
    """Decode the name at `off` -> (lowercase dotted text, offset after it in place)."""
    if end is None:
        end = len(buf)
    labels = []
    after = None
    seg = off  # start of the current run of labels: a pointer must go before it
    jumps = 0
    total = 1
    while True:
        if off >= end:
            raise DecodeError(off, "name runs past the end")
        n = buf[off]
        if n == 0:
            off += 1
            break
        if n >= 0xC0:
            if not ptrs:
                raise DecodeError(off, "compression pointer where none is allowed")
            if off + 2 > end:
                raise DecodeError(off, "compression pointer cut short")
            p = ((n & 0x3F) << 8) | buf[off + 1]
            jumps += 1
            if p >= seg or jumps > _MAX_JUMPS:
                raise DecodeError(off, "compression pointer loops or points forwards")
            if after is None:
                after = off + 2
            off = seg = p
            end = len(buf)  # a pointer may reach back before a record's data
            continue
        if n > 63:
            raise DecodeError(off, "unknown label type 0x%02x" % n)
        if off + 1 + n > end:
            raise DecodeError(off, "label runs past the end")
        total += n + 1
        if total > 255:
            raise DecodeError(off, "name longer than 255 bytes")
        label = bytes(buf[off + 1:off + 1 + n])
        for c in label:
            if c < 33 or c > 126:
                raise DecodeError(off, "name has a non-printable byte")
        labels.append(label.decode().lower())
        off += 1 + n
    return ".".join(labels), (off if after is None else after)


def build_query(qid, name, qtype):
    """A recursive query (RD) for one name and type, class IN."""
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack(">HH", qtype, 1)


def parse_response(buf, qid, name, qtype):
    """Check an answer to our query -> (rcode, records); a record is (name, type, data).

    data: 4/16 bytes for A/AAAA, (priority, weight, port, target) for SRV, the name for CNAME,
    None for other types. Answer and additional sections are both returned, in order.
    """
    if len(buf) < 12:
        raise DecodeError(0, "shorter than a DNS header")
    rid, flags, qd, an, ns, ar = struct.unpack_from(">HHHHHH", buf, 0)
    if rid != qid:
        raise DecodeError(0, "not the id of our query")
    if not flags & 0x8000 or flags & 0x7800:
        raise DecodeError(2, "not a standard query response")
    if flags & 0x0200:
        raise DecodeError(2, "truncated answer (TC), no TCP fallback here")
    if qd != 1:
        raise DecodeError(4, "expected our one question echoed")
    qn, off = read_name(buf, 12)
    if off + 4 > len(buf):
        raise DecodeError(off, "question cut short")
    if qn != name.rstrip(".").lower() or struct.unpack_from(">HH", buf, off) != (qtype, 1):
        raise DecodeError(12, "answer to another question")
    off += 4
    recs = []
    for i in range(an + ns + ar):
        rn, off = read_name(buf, off)
        if off + 10 > len(buf):
            raise DecodeError(off, "resource record header cut short")
        rtype, rclass, _ttl, rdlen = struct.unpack_from(">HHIH", buf, off)
        off += 10
        end = off + rdlen
        if end > len(buf):
            raise DecodeError(off, "record data runs past the end")
        if an <= i < an + ns or rclass != 1:
            off = end
            continue
        data = None
        if rtype == A or rtype == AAAA:
            if rdlen != (4 if rtype == A else 16):
                raise DecodeError(off, "address record of length %d" % rdlen)
            data = bytes(buf[off:end])
        elif rtype == SRV:
            if rdlen < 7:
                raise DecodeError(off, "SRV record too short")
            t, e = read_name(buf, off + 6, end)
            if e != end:
                raise DecodeError(off, "SRV target does not fill the record")
            data = struct.unpack_from(">HHH", buf, off) + (t,)
        elif rtype == CNAME:
            data, e = read_name(buf, off, end)
            if e != end:
                raise DecodeError(off, "CNAME does not fill the record")
        recs.append((rn, rtype, data))
        off = end
    return flags & 0xF, recs


class DnsClient:
    """Find HA addresses: SRV `_mip6._ipv6.<domain>` then AAAA and A per target, or AAAA/A of `name`.

    Addresses in the SRV answer's additional section are used without asking again. Each query
    is tried on every server in turn, ROUNDS times, TIMEOUT_MS each. `result` when done: dict
    with "ha" (16-byte addresses), "ha_ipv4" (4-byte), "ha_fqdn"; or None and `error`.
    """

    kind = "dns"

    def __init__(self, servers, rand, now, domain=None, name=None):
        self.servers = list(servers)
        self._rand = rand
        self.done = False
        self.result = None
        self.error = None
        self.ignored = 0  # answers dropped as malformed or unexpected
        self.targets = []
        self._addrs = {}  # name -> [v6 list, v4 list]
        self._queue = []
        if domain:
            self._queue.append(("_mip6._ipv6." + domain.rstrip("."), SRV))
        elif name:
            self._want(name.rstrip(".").lower())
        self._q = None
        self._sent = False
        self._tries = 0
        self._next = now
        if not self.servers or not self._queue:
            self._finish("no DNS server or nothing to look up")

    def _want(self, name):
        self.targets.append(name)
        self._addrs.setdefault(name, [[], []])
        self._queue.append((name, AAAA))
        self._queue.append((name, A))

    def get_timer(self):
        return None if self.done else self._next

    def handle_timer(self, now):
        if self.done or now < self._next or self._q is None or not self._sent:
            return  # (nothing in flight: the next query waits for datagrams_to_send)
        self._tries += 1
        if self._tries >= ROUNDS * len(self.servers):
            self._advance("no answer for %s" % self._q[0])
        else:
            self._sent = False

    def datagrams_to_send(self, now):
        if self.done:
            return []
        if self._q is None:
            self._q = self._queue.pop(0)
            self._tries = 0
            self._sent = False
        if self._sent:
            return []
        self._qid = struct.unpack(">H", self._rand(2))[0]
        self._server = self.servers[self._tries % len(self.servers)]
        self._sent = True
        self._next = now + TIMEOUT_MS
        return [(build_query(self._qid, self._q[0], self._q[1]), (self._server, PORT, 0))]

    def receive(self, data, src, now):
        """Feed a datagram from port 53; returns True when it was the answer we wait for."""
        if self.done or self._q is None or not self._sent or src != self._server:
            self.ignored += 1
            return False
        name, qtype = self._q
        try:
            rcode, recs = parse_response(data, self._qid, name, qtype)
        except DecodeError as e:
            self.ignored += 1
            self.last_error = str(e)
            return False
        if rcode == 2:  # SERVFAIL: the next server may do better
            self.handle_timer(self._next)
            return True
        if qtype == SRV:
            srv = [d for n, t, d in recs if t == SRV and d[3]]
            if rcode or not srv:
                self._finish("no SRV record for %s (rcode %d)" % (name, rcode))
                return True
            srv.sort(key=lambda d: (d[0], -d[1]))
            for d in srv:
                self._addrs.setdefault(d[3], [[], []])
            for n, t, d in recs:
                if (t == AAAA or t == A) and n in self._addrs:
                    lst = self._addrs[n][t == A]
                    if d not in lst:
                        lst.append(d)
            for d in srv:
                if d[3] not in self.targets:
                    self.targets.append(d[3])
                    v6, v4 = self._addrs[d[3]]
                    if not v6:
                        self._queue.append((d[3], AAAA))
                    if not v4:
                        self._queue.append((d[3], A))
        elif rcode == 0:
            lst = self._addrs[name][qtype == A]
            for n, t, d in recs:
                if t == qtype and d not in lst:
                    lst.append(d)
        self._advance(None)
        return True

    def _advance(self, why):
        if why:
            self.error = why
        self._q = None
        self._sent = False
        if not self._queue:
            ha, ha4 = [], []
            for n in self.targets:
                ha += self._addrs[n][0]
                ha4 += self._addrs[n][1]
            if ha or ha4:
                self.done = True
                self.result = {"ha": ha, "ha_ipv4": ha4, "ha_fqdn": self.targets[0]}
            else:
                self._finish(self.error or "no address for %s" % ", ".join(self.targets))

    def _finish(self, why):
        self.done = True
        self.error = why
