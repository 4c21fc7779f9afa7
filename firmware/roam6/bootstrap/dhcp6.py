"""Stateless DHCPv6 (RFC 8415 Information-request/Reply) for RFC 6610 home network information.

Only what the MN needs: DUID-LL client id, Elapsed Time, ORO asking for the Unrestricted (70) or
Identified (69) Home Network Information container, and a Reply parser that takes the HA
address(es), home prefix and HA FQDN from inside a container (RFC 6610 §4: bare 71/72/73 at
the top level are dropped). Sans-IO, on the machines' contract (`now`: int ms, the last
positional argument): `Dhcp6Client` takes answers (`receive`), hands back datagrams
(`datagrams_to_send`: [(bytes, (ff02::1:2, 547, 546))], i.e. (address, port, source port)) and
its next deadline (`get_timer` / `handle_timer`).
"""
import struct

from roam6.compat import const
from roam6.wire.errors import DecodeError
from roam6.bootstrap.dns import encode_name, read_name

CLIENT_PORT = const(546)
SERVER_PORT = const(547)
ALL_SERVERS = b"\xff\x02" + bytes(11) + b"\x01\x00\x02"  # ff02::1:2
_INFORMATION_REQUEST = const(11)
_REPLY = const(7)
_O_CLIENTID = const(1)
_O_SERVERID = const(2)
_O_ORO = const(6)
_O_ELAPSED = const(8)
_O_STATUS = const(13)
_O_IRT = const(32)
_O_INF_MAX_RT = const(83)
_O_HNIDF = const(49)
_O_VDINF = const(50)
_O_IDINF = const(69)
_O_UDINF = const(70)
_O_HNP = const(71)
_O_HAA = const(72)
_O_HAF = const(73)
ORO_UDINF = (_O_UDINF, _O_HNIDF, _O_HNP, _O_HAA, _O_HAF, _O_IRT, _O_INF_MAX_RT)
# RFC 8415 §7.6 timers, ms
INF_MAX_DELAY = const(1000)
INF_TIMEOUT = const(1000)
INF_MAX_RT = const(3600000)
IRT_DEFAULT = const(86400)
IRT_MINIMUM = const(600)
EMPTY_GRACE_MS = const(500)  # after a Reply without home information: wait this long for a better one
_NAT64 = b"\x00\x64\xff\x9b" + bytes(8)  # 64:ff9b::/96, an IPv4 HA (RFC 6610 §4.2.3)


def duid_ll(mac):
    """DUID-LL (type 3, hardware type 1 = Ethernet): stable without storage."""
    return b"\x00\x03\x00\x01" + bytes(mac)


def _opt(code, data):
    return struct.pack(">HH", code, len(data)) + data


def build_information_request(xid, duid, elapsed_cs=0, oro=ORO_UDINF, hnidf=None):
    """Information-request bytes; `hnidf` (a realm name) goes in an HNIDF option for IDINF."""
    m = struct.pack(">I", (_INFORMATION_REQUEST << 24) | (xid & 0xFFFFFF))
    m += _opt(_O_CLIENTID, duid) + _opt(_O_ELAPSED, struct.pack(">H", min(elapsed_cs, 0xFFFF)))
    m += _opt(_O_ORO, b"".join(struct.pack(">H", c) for c in oro))
    if hnidf:
        m += _opt(_O_HNIDF, encode_name(hnidf))
    return m


def _options(buf, off, end):
    """[(code, data_start, data_end)] of the TLVs in buf[off:end]; raises on any overrun."""
    out = []
    while off < end:
        if off + 4 > end:
            raise DecodeError(off, "option header cut short")
        code, n = struct.unpack_from(">HH", buf, off)
        if off + 4 + n > end:
            raise DecodeError(off, "option %d runs past its container" % code)
        out.append((code, off + 4, off + 4 + n))
        off += 4 + n
    return out


def _name(buf, s, e):
    name, after = read_name(buf, s, e, False)
    if after != e:
        raise DecodeError(s, "FQDN does not fill its option")
    return name


def _container(buf, s, e):
    """Sub-options of a home network information container -> info dict (maybe without HA)."""
    info = {"ha": [], "ha_ipv4": [], "home_prefix": None, "ha_fqdn": None, "hnidf": None}
    for code, ds, de in _options(buf, s, e):
        n = de - ds
        if code == _O_HNP:
            if n != 17 or buf[ds] > 128:
                raise DecodeError(ds - 4, "home network prefix must be 17 bytes, length <= 128")
            if info["home_prefix"] is None:
                info["home_prefix"] = (bytes(buf[ds + 1:de]), buf[ds])
        elif code == _O_HAA:
            if n != 16:
                raise DecodeError(ds - 4, "home agent address must be 16 bytes")
            a = bytes(buf[ds:de])
            if a[:12] == _NAT64:
                info["ha_ipv4"].append(a[12:])
            else:
                info["ha"].append(a)
        elif code == _O_HAF:
            info["ha_fqdn"] = _name(buf, ds, de)
        elif code == _O_HNIDF:
            info["hnidf"] = _name(buf, ds, de)
    return info


def parse_reply(buf, xid, duid=None, hnidf=None):
    """Check a Reply to our Information-request -> info dict, or None if it has no usable
    home network information. Raises DecodeError for malformed, foreign or refused replies.

    info: {"ha": [16-byte], "ha_ipv4": [4-byte], "home_prefix": (16 bytes, len) or None,
           "ha_fqdn": str or None, "refresh_s": int, "max_rt_ms": int or None, "container": 69|70|50}
    """
    if len(buf) < 4:
        raise DecodeError(0, "shorter than a DHCPv6 header")
    if buf[0] != _REPLY:
        raise DecodeError(0, "message type %d is not a Reply" % buf[0])
    if struct.unpack_from(">I", buf, 0)[0] & 0xFFFFFF != xid:
        raise DecodeError(1, "not the transaction id of our request")
    opts = _options(buf, 4, len(buf))
    got = {}
    for code, s, e in opts:
        got.setdefault(code, (s, e))
    if _O_SERVERID not in got:
        raise DecodeError(4, "Reply without a Server Identifier")
    if duid is not None:
        c = got.get(_O_CLIENTID)
        if c is None or bytes(buf[c[0]:c[1]]) != duid:
            raise DecodeError(4, "Reply for another client (Client Identifier)")
    if _O_STATUS in got:
        s, e = got[_O_STATUS]
        if e - s < 2:
            raise DecodeError(s - 4, "status code option too short")
        st = struct.unpack_from(">H", buf, s)[0]
        if st:
            raise DecodeError(s, "server refused: status %d" % st)
    refresh = IRT_DEFAULT
    if _O_IRT in got:
        s, e = got[_O_IRT]
        if e - s != 4:
            raise DecodeError(s - 4, "information refresh time must be 4 bytes")
        refresh = max(struct.unpack_from(">I", buf, s)[0], IRT_MINIMUM)
    max_rt = None
    if _O_INF_MAX_RT in got:
        s, e = got[_O_INF_MAX_RT]
        if e - s != 4:
            raise DecodeError(s - 4, "INF_MAX_RT must be 4 bytes")
        v = struct.unpack_from(">I", buf, s)[0]
        if 60 <= v <= 86400:  # RFC 8415 §21.25: other values are ignored
            max_rt = v * 1000
    found = None
    for code, s, e in opts:
        if code not in (_O_UDINF, _O_IDINF, _O_VDINF):
            continue
        info = _container(buf, s, e)  # parse all of them: a malformed one spoils the Reply
        if code == _O_IDINF and (hnidf is None or info["hnidf"] != hnidf.rstrip(".").lower()):
            continue  # RFC 6610: IDINF must name the realm we asked for
        if found is None and (info["ha"] or info["ha_ipv4"] or info["ha_fqdn"]):
            found = info
            info["container"] = code  # 69 identified, 70 unrestricted, 50 visited
    if found is not None:
        found["refresh_s"] = refresh
        found["max_rt_ms"] = max_rt
        del found["hnidf"]
    return found


class Dhcp6Client:
    """One Information-request exchange with RFC 8415 §15 retransmission (same xid, growing RT).

    `delay_ms` None -> the RFC's random 0..INF_MAX_DELAY wait before the first message.
    Done on the first valid Reply with home network information (`result`). A valid Reply without
    it stops the retransmissions; EMPTY_GRACE_MS later, if no better Reply came, it ends with
    `error` (a rogue server cannot cut the exchange short at once). Malformed or foreign Replies
    are counted in `ignored` and otherwise change nothing, as is anything after the end.
    """

    kind = "dhcpv6"

    def __init__(self, mac, rand, now, delay_ms=None, hnidf=None):
        self.duid = duid_ll(mac)
        self._rand = rand
        self.xid = struct.unpack(">I", b"\0" + rand(3))[0]
        self.hnidf = hnidf
        self.oro = ((_O_IDINF,) if hnidf else ()) + ORO_UDINF
        self.done = False
        self.result = None
        self.error = None
        self.ignored = 0
        self.last_error = None
        self._start = None
        self._rt = 0
        self._mrt = INF_MAX_RT
        self._empty = False
        if delay_ms is None:
            delay_ms = struct.unpack(">H", rand(2))[0] * INF_MAX_DELAY // 65536
        self._next = now + delay_ms

    def _rand_part(self, base):
        # RAND * base with RAND uniform in [-0.1, +0.1] (RFC 8415 §15)
        return base * (struct.unpack(">H", self._rand(2))[0] - 32768) // 327680

    def get_timer(self):
        return None if self.done else self._next

    def handle_timer(self, now):
        # retransmissions happen in datagrams_to_send(now) once the deadline has passed
        if self._empty and now >= self._next and not self.done:
            self.done = True
            self.error = "DHCPv6 Reply without home network information (RFC 6610 options)"

    def datagrams_to_send(self, now):
        if self.done or self._empty or now < self._next:
            return []
        if self._start is None:
            self._start = now
            self._rt = INF_TIMEOUT + self._rand_part(INF_TIMEOUT)
        else:
            self._rt = 2 * self._rt + self._rand_part(self._rt)
            if self._rt > self._mrt:
                self._rt = self._mrt + self._rand_part(self._mrt)
        self._next = now + self._rt
        msg = build_information_request(self.xid, self.duid, (now - self._start) // 10, self.oro, self.hnidf)
        return [(msg, (ALL_SERVERS, SERVER_PORT, CLIENT_PORT))]

    def receive(self, data, now):
        """Feed a datagram from port 547; True when it ended the exchange."""
        if self.done:
            self.ignored += 1
            return False
        try:
            info = parse_reply(data, self.xid, self.duid, self.hnidf)
        except DecodeError as e:
            self.ignored += 1
            self.last_error = str(e)
            return False
        if info is None:
            if not self._empty:
                self._empty = True
                self._next = now + EMPTY_GRACE_MS
            return False
        self.done = True
        self.result = info
        return True
