"""Codec objects <-> JSON-ready dicts (for `roam6 mh decode|encode`; the device need not load this).

Field names are the attribute names (RFC field names in snake_case); addresses are text, other
byte strings hex, flag words lists of flag letters (an int when unnamed bits are set). The field
tables live here so the modules the device loads stay small.

Checksums: a dict carries the `checksum` it was decoded with and `checksum_ok`. Encoding recomputes
the checksum unless `checksum_ok` is false, in which case the given (wrong) value is kept: so
decode | encode reproduces the bytes exactly, and an edited message gets a fresh checksum.

Encoding checks every number against the width of its wire field (read off the classes' struct
formats, plus the few packed by hand: _BITS/_CLASS_BITS) and every fixed-size byte string against
its size before anything is packed: a value that does not fit raises FieldError naming the
message, the option and the field, never a bare struct error.
"""
import binascii
import struct
from . import mh, mhopts, icmp6, nd
from roam6.wire.addr import ip6_to_text, ip6_from_text, ip4_to_text, ip4_from_text
from roam6.wire.errors import DecodeError
from roam6.wire.ipv6 import decode_ipv6, build_ipv6, pseudo_src, pseudo_dst, hao_header, rh2_header
from .ipv4 import decode_ipv4, build_ipv4
from .udp import decode_udp, udp_checksum_ok, build_udp

_ADDR = ("address", "home_address", "prefix", "addresses", "src", "dst", "hao", "rh2")
FLAGS = {
    mh.BindingUpdate: (("A", 0x8000), ("H", 0x4000), ("L", 0x2000), ("K", 0x1000), ("M", 0x0800),
                       ("R", 0x0400), ("P", 0x0200), ("F", 0x0100), ("T", 0x0080), ("B", 0x0040)),
    mh.BindingAck: (("K", 0x80), ("R", 0x40), ("P", 0x20), ("T", 0x10), ("B", 0x08)),
    mh.Heartbeat: (("U", 0x02), ("R", 0x01)),
    mh.BindingRevocation: (("P", 0x8000), ("V", 0x4000), ("G", 0x2000)),
    mhopts.DNSUpdate: (("R", 0x80),),
    nd.RouterAdvertisement: (("M", 0x80), ("O", 0x40), ("H", 0x20)),
    nd.PrefixInformation: (("L", 0x80), ("A", 0x40), ("R", 0x20)),
    icmp6.MobilePrefixAdvertisement: (("M", 0x8000), ("O", 0x4000)),
}
BA_STATUS = {
    0: "accepted", 1: "accepted, prefix discovery necessary", 128: "reason unspecified",
    129: "administratively prohibited", 130: "insufficient resources", 131: "home registration not supported",
    132: "not home subnet", 133: "not home agent for this mobile node", 134: "duplicate address detection failed",
    135: "sequence number out of window", 136: "expired home nonce index", 137: "expired care-of nonce index",
    138: "expired nonces", 139: "registration type change disallowed", 144: "MIPV6-ID-MISMATCH",
    145: "MIPV6-MESG-ID-REQD", 146: "MIPV6-AUTH-FAIL", 174: "invalid care-of address",
}
# attribute -> JSON name where the attribute is shorter than the RFC field name
RENAME = {
    mh.HomeTestInit: {"cookie": "home_init_cookie"},
    mh.CareofTestInit: {"cookie": "careof_init_cookie"},
    mh.HomeTest: {"nonce_index": "home_nonce_index", "cookie": "home_init_cookie", "token": "home_keygen_token"},
    mh.CareofTest: {"nonce_index": "careof_nonce_index", "cookie": "careof_init_cookie",
                    "token": "careof_keygen_token"},
    mhopts.NonceIndices: {"home": "home_nonce_index", "careof": "careof_nonce_index"},
    mhopts.BindingRefreshAdvice: {"interval": "refresh_interval"},
    mhopts.MobilityAuth: {"spi": "mobility_spi", "auth_data": "authentication_data"},
    mhopts.NATDetection: {"refresh": "refresh_time"},
}
_UNKNOWN = {mh.UnknownMH: "mh_type", mhopts.UnknownOption: "otype", nd.UnknownNDOption: "otype",
            nd.LinkLayerAddress: "otype", icmp6.UnknownICMPv6: "icmp_type"}
CLASSES = {}
for _c in (mh.CLASSES + mhopts.CLASSES + icmp6.CLASSES + nd.OPTION_CLASSES
           + (mhopts.Pad1, nd.LinkLayerAddress) + tuple(_UNKNOWN)):
    CLASSES[_c.__name__] = _c
# the short names `from_dict` also takes as "type", as the RFCs abbreviate them (case-sensitive):
# RFC 6275 (MH messages; MPS/MPA, ICMPv6) and RFC 4861 (ND). to_dict always writes the class name.
SHORT = {"BRR": mh.BindingRefreshRequest, "HoTI": mh.HomeTestInit, "CoTI": mh.CareofTestInit,
         "HoT": mh.HomeTest, "CoT": mh.CareofTest, "BU": mh.BindingUpdate, "BA": mh.BindingAck,
         "BE": mh.BindingError, "MPS": icmp6.MobilePrefixSolicitation,
         "MPA": icmp6.MobilePrefixAdvertisement, "RS": nd.RouterSolicitation, "RA": nd.RouterAdvertisement,
         "PIO": nd.PrefixInformation}


def type_names():
    """The accepted "type" values, for an error message: class names, then SHORT (class name)."""
    return "%s; or short: %s" % (", ".join(sorted(CLASSES)), ", ".join(
        "%s (%s)" % (k, SHORT[k].__name__) for k in sorted(SHORT, key=lambda k: k.lower())))


def class_of(name):
    """The class a "type" value names (class name or SHORT name), else None."""
    if not isinstance(name, str):
        return None
    return CLASSES.get(name) or SHORT.get(name)


_SKIP = ("raw", "auto_pad", "checksum")
_META = ("type", "checksum", "checksum_ok", "header_len", "auto_pad", "status_text", "identifier_text", "length")


class FieldError(ValueError):
    """A JSON value that does not fit its field. `where`: the path to it, outermost first (e.g.
    ["mh", "BindingUpdate", "options[0]", "NonceIndices"]); `field`: its JSON name."""

    def __init__(self, where, field, msg):
        super().__init__(("%s: %s" % (" ".join(where), msg)) if where else msg)
        self.where = list(where)
        self.field = field
        self.msg = msg

    def inside(self, *outer):
        return FieldError(list(outer) + self.where, self.field, self.msg)


def _within(outer, fn, *args):
    """fn(*args), a FieldError from it placed inside `outer` (a list of path parts)."""
    try:
        return fn(*args)
    except FieldError as e:
        raise e.inside(*outer)


# integer fields no struct format declares (header bytes, the type of an unknown message or
# option), and fields packed into a shared word by hand: attribute -> bits
_BITS = {"payload_proto": 8, "mh_reserved": 8, "code": 8, "mh_type": 8, "otype": 8, "icmp_type": 8}
_CLASS_BITS = {
    mh.HomeAgentSwitch: {"reserved": 8},
    mhopts.IPv4HomeAddress: {"prefix_len": 6, "p": 1, "reserved": 9, "address": -4},
    mhopts.IPv4AddressAck: {"status": 8, "prefix_len": 6, "reserved": 2, "address": -4},
    mhopts.NATDetection: {"reserved": 15, "refresh": 32},
}
_FMT_BITS = {"B": 8, "H": 16, "I": 32, "Q": 64}
_LAYOUT = {}


def _layout(cls):
    """attribute -> bits of an integer field, or -n for a byte string of exactly n bytes."""
    lay = _LAYOUT.get(cls)
    if lay is None:
        lay = {}
        names = list(getattr(cls, "names", ()))
        n = ""
        for c in getattr(cls, "fmt", ""):
            if "0" <= c <= "9":
                n += c
                continue
            k = int(n) if n else 1
            n = ""
            if c == "s":
                if names:
                    lay[names.pop(0)] = -k
            elif c in _FMT_BITS:
                for _ in range(k):
                    if names:
                        lay[names.pop(0)] = _FMT_BITS[c]
        lay.update(_CLASS_BITS.get(cls, {}))
        _LAYOUT[cls] = lay
    return lay


def _fits(label, v, bits):
    """v (already an int) for a field of `bits` bits, else ValueError naming the field."""
    if not 0 <= v < 1 << bits:
        raise ValueError("field %r: %d is out of range 0..%d" % (label, v, (1 << bits) - 1))
    return v


def _num(d, key, default, bits, where):
    """d[key] (default when absent; None = required) as an int of `bits` bits, else FieldError."""
    v = d.get(key, default)
    if v is None:
        raise FieldError([where], key, "field %r is missing" % key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise FieldError([where], key, "field %r: want an integer, got %r" % (key, v))
    try:
        return _fits(key, v, bits)
    except ValueError as e:
        raise FieldError([where], key, str(e))


def _hex(b):
    return binascii.hexlify(bytes(b)).decode()


def _unhex(name, s):
    if not isinstance(s, str):
        raise ValueError("field %r: want a hex string" % name)
    try:
        return binascii.unhexlify("".join(s.split()))
    except Exception:
        raise ValueError("field %r: %r is not hex" % (name, s))


def _out(name, v):
    if isinstance(v, (bytes, bytearray)):
        if name in _ADDR and len(v) == 16:
            return ip6_to_text(v)
        if name in _ADDR and len(v) == 4:
            return ip4_to_text(v)
        return _hex(v)
    if isinstance(v, list):
        return [to_dict(x) if hasattr(x, "__dict__") else _out(name, x) for x in v]
    return v


def _printable(b):
    for c in b:
        if c < 0x20 or c > 0x7E:
            return False
    return len(b) > 0


def to_dict(obj):
    """A dict of every field of a message or option (decoded or built)."""
    cls = type(obj)
    d = {"type": cls.__name__}
    if isinstance(obj, mhopts.PadN) and obj.data == bytes(len(obj.data)):
        d["length"] = len(obj.data)
        return d
    ren = RENAME.get(cls, {})
    items = [kv for kv in obj.__dict__.items() if kv[0] != "options"]
    if hasattr(obj, "options") and (obj.options or obj.has_options):
        items.append(("options", obj.options))
    for k, v in items:
        if k in _SKIP:
            continue
        if k == "flags" and cls in FLAGS and isinstance(v, int):
            table = FLAGS[cls]
            known = 0
            for _n, b in table:
                known |= b
            if not v & ~known:
                v = [n for n, b in table if v & b]
        if k == "identifier" and _printable(v):
            d["identifier_text"] = bytes(v).decode()
            continue
        d[ren.get(k, k)] = _out(k, v)
    if isinstance(obj, mh.BindingAck) and obj.status in BA_STATUS:
        d["status_text"] = BA_STATUS[obj.status]
    if isinstance(obj, (mh.Message, icmp6.ICMPv6Message)):
        d["checksum"] = obj.checksum
        if isinstance(obj, mh.Message) and obj.raw is not None:
            d["header_len"] = obj.raw[1]
            d["auto_pad"] = obj.auto_pad
    return d


def _addr(name, s):
    if not isinstance(s, str):
        raise ValueError("field %r: want an address as text" % name)
    try:
        if ":" in s:
            return ip6_from_text(s)
        return ip4_from_text(s) if "." in s else _unhex(name, s)
    except ValueError as e:
        raise ValueError("field %r: %s" % (name, e) if not str(e).startswith("field") else str(e))


def _in(cls, name, default, v, label=None):
    label = label or name
    if name == "options":
        if not isinstance(v, list):
            raise ValueError("field 'options': want a list")
        return [_within(["options[%d]" % i], from_dict, v[i]) for i in range(len(v))]
    if name == "addresses":
        if not isinstance(v, list):
            raise ValueError("field %r: want a list of addresses" % label)
        if cls is mh.HomeAgentSwitch and len(v) > 255:
            raise ValueError("field %r: %d addresses, the most is 255" % (label, len(v)))
        return [_addr(label, a) for a in v]
    if name == "flags" and isinstance(v, list):
        table = dict(FLAGS.get(cls, ()))
        w = 0
        for n in v:
            if n not in table:
                raise ValueError("flag %r: %s knows %s" % (n, cls.__name__, ", ".join(sorted(table))))
            w |= table[n]
        return w
    if isinstance(default, bool):
        if not isinstance(v, bool):
            raise ValueError("field %r: want true or false" % label)
        return v
    size = _layout(cls).get(name, _BITS.get(name))
    if isinstance(default, int):
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError("field %r: want an integer, got %r" % (label, v))
        return v if size is None or size < 0 else _fits(label, v, size)
    if isinstance(default, (bytes, bytearray)) or default is None:
        if v is None and (size is None or size > 0):
            return None
        b = _addr(label, v) if name in _ADDR else _unhex(label, v)
        if size is not None and size < 0 and len(b) != -size:
            raise ValueError("field %r: want %d bytes, got %d" % (label, -size, len(b)))
        return b
    return v


def from_dict(d):
    """The message or option a dict describes; ValueError naming the field when it is wrong."""
    if not isinstance(d, dict):
        raise ValueError("want a JSON object, got %r" % (d,))
    cls = class_of(d.get("type"))
    if cls is None:
        raise FieldError([], "type", "unknown type %r: want one of %s" % (d.get("type"), type_names()))
    name = cls.__name__
    if cls in _UNKNOWN:
        key = _UNKNOWN[cls]
        if not isinstance(d.get(key), int):
            raise FieldError([name], key, "%s needs an integer %r" % (name, key))
        obj = cls(_num(d, key, None, 8, name))
    elif cls is mhopts.PadN and "length" in d:
        try:
            return mhopts.PadN(_fits("length", _in(cls, "length", 0, d["length"]), 8) + 2)
        except ValueError as e:
            raise FieldError([name], "length", str(e))
    else:
        obj = cls()
    ren = RENAME.get(cls, {})
    for k, default in list(obj.__dict__.items()):
        j = ren.get(k, k)
        if k == "raw":
            continue
        try:
            if k == "identifier" and "identifier_text" in d:
                obj.identifier = str(d["identifier_text"]).encode()
            elif j in d:
                setattr(obj, k, _in(cls, k, default, d[j], j))
        except FieldError as e:  # in one of its options
            raise e.inside(name)
        except ValueError as e:
            raise FieldError([name], j, str(e))
    known = [ren.get(k, k) for k in obj.__dict__]
    for k in d:
        if k not in known and k not in _META:
            raise FieldError([name], k, "no field %r (its fields: %s)" % (k, ", ".join(
                sorted(x for x in known if x not in _SKIP))))
    if "auto_pad" in d:
        obj.auto_pad = bool(d["auto_pad"])
    return obj


# ---- whole packets (IPv6 header, extension headers, upper layer) ----

_PKT_KEYS = ("ipv6", "ipv4", "mh", "icmp6", "udp", "inner", "payload", "trailer", "frame", "time", "ip_offset")
_EXT_NAMES = {0: "hop_by_hop", 43: "routing", 60: "destination_options"}
_EXT_NUM = {"hop_by_hop": 0, "routing": 43, "destination_options": 60}


def _ext_to_dict(t, h):
    d = {"header": _EXT_NAMES[t]}
    if t == 43:
        rt, left = h[2], h[3]
        d["routing_type"] = rt
        d["segments_left"] = left
        if rt in (0, 2) and (len(h) - 8) % 16 == 0:
            d["reserved"] = _hex(h[4:8])
            d["addresses"] = [ip6_to_text(h[i:i + 16]) for i in range(8, len(h), 16)]
        else:
            d["data"] = _hex(h[4:])
        return d
    opts = []
    i = 2
    while i < len(h):
        ot = h[i]
        if ot == 0:
            opts.append({"type": 0})
            i += 1
            continue
        n = h[i + 1]
        if ot == 0xC9 and t == 60:
            opts.append({"type": ot, "home_address": ip6_to_text(h[i + 2:i + 2 + n])})
        else:
            opts.append({"type": ot, "data": _hex(h[i + 2:i + 2 + n])})
        i += 2 + n
    d["options"] = opts
    return d


def _ext_from_dict(d):
    if not isinstance(d, dict) or d.get("header") not in _EXT_NUM:
        raise ValueError("extension header %r: want 'header' one of %s" % (d, ", ".join(sorted(_EXT_NUM))))
    t = _EXT_NUM[d["header"]]
    b = bytearray(2)
    if t == 43:
        b += bytes((_num(d, "routing_type", 2, 8, "routing"), _num(d, "segments_left", 1, 8, "routing")))
        if "addresses" in d:
            b += _unhex("reserved", d.get("reserved", "00000000"))
            for a in d["addresses"]:
                b += ip6_from_text(a)
        else:
            b += _unhex("data", d.get("data", ""))
    else:
        for o in d.get("options", []):
            ot = o.get("type") if isinstance(o, dict) else None
            if not isinstance(ot, int) or not 0 <= ot <= 255:
                raise ValueError("option %r: want an integer 'type'" % (o,))
            if ot == 0:
                b.append(0)
                continue
            data = ip6_from_text(o["home_address"]) if "home_address" in o else _unhex("data", o.get("data", ""))
            b += bytes((ot, len(data))) + data
        n = -len(b) % 8
        if n == 1:
            b.append(0)
        elif n:
            b += bytes((1, n - 2)) + bytes(n - 2)
    if len(b) % 8 or len(b) > 2048:
        raise ValueError("%s header is %d bytes, want a multiple of 8" % (d["header"], len(b)))
    b[1] = len(b) // 8 - 1
    return (t, bytes(b))


def _udp_to_dict(src, dst, pl, base):
    u = _rel(decode_udp, pl, base)
    d = {"sport": u.sport, "dport": u.dport, "length": u.length, "checksum": u.checksum,
         "checksum_ok": udp_checksum_ok(src, dst, pl[:u.length])}
    inner = u.payload
    if 4191 in (u.sport, u.dport) and len(inner) and inner[0] >> 4 in (4, 6):
        d["inner"] = packet_to_dict(inner, base + 8)  # RFC 5555 / udp6: a whole IP packet inside
    else:
        d["payload"] = _hex(inner)
    if len(pl) > u.length:
        d["trailer"] = _hex(pl[u.length:])
    return d


def _upper_to_dict(nh, pl, src, dst, base):
    if nh == 135:
        m = _rel(mh.decode_mh, pl, base)
        d = to_dict(m)
        d["checksum_ok"] = mh.checksum_ok(m.raw, src, dst)
        return "mh", d
    if nh == 58:
        m = _rel(icmp6.decode_icmp6, pl, base)
        d = to_dict(m)
        d["checksum_ok"] = icmp6.checksum_ok(m.raw, src, dst)
        return "icmp6", d
    if nh == 17:
        return "udp", _udp_to_dict(src, dst, pl, base)
    if nh in (4, 41) and len(pl):
        return "inner", packet_to_dict(pl, base)
    return "payload", _hex(pl)


def packet_to_dict(buf, base=0):
    """A whole IP packet as a dict: "ipv6" (header, extension headers) or "ipv4", then the upper
    layer under "mh", "icmp6", "udp", "inner" (a tunnelled packet) or "payload" (hex); bytes after
    the IP length under "trailer". DecodeError offsets count from the start of buf (plus base)."""
    try:
        if len(buf) and buf[0] >> 4 == 4:
            p = decode_ipv4(buf)
            h = {"version": 4, "tos": p.tos, "ident": p.ident, "flags_frag": p.flags_frag, "ttl": p.ttl,
                 "proto": p.proto, "checksum": p.checksum, "checksum_ok": p.checksum_ok,
                 "src": ip4_to_text(p.src), "dst": ip4_to_text(p.dst)}
            if p.options:
                h["options"] = _hex(p.options)
            d = {"ipv4": h}
            nh, src, dst = p.proto, p.src, p.dst
        else:
            p = decode_ipv6(buf)
            h = {"version": 6, "tclass": p.tclass, "flow": p.flow, "payload_length": p.length - 40,
                 "next_header": buf[6], "upper_header": p.nh, "hop_limit": p.hop_limit,
                 "src": ip6_to_text(p.src), "dst": ip6_to_text(p.dst)}
            if p.ext:
                h["ext"] = [_ext_to_dict(t, x) for t, x in p.ext]
            if p.hao is not None:
                h["hao"] = ip6_to_text(p.hao)
            if p.rh2 is not None:
                h["rh2"] = ip6_to_text(p.rh2)
            d = {"ipv6": h}
            nh, src, dst = p.nh, pseudo_src(p), pseudo_dst(p)
    except DecodeError as e:
        raise DecodeError(base + e.offset, e.reason)
    k, v = _upper_to_dict(nh, p.payload, src, dst, base + p.payload_offset)
    d[k] = v
    if len(buf) > p.length:
        d["trailer"] = _hex(buf[p.length:])
    return d


def _rel(fn, buf, base):
    """fn(buf) with a DecodeError's offset made absolute (base = where buf starts)."""
    try:
        return fn(buf)
    except DecodeError as e:
        raise DecodeError(base + e.offset, e.reason)


def _fixed_checksum(d, where):
    """The checksum to write as given (checksum_ok false), else None (compute it)."""
    if d.get("checksum_ok") is False:
        c = d.get("checksum")
        if not isinstance(c, int):
            raise ValueError("checksum_ok is false: give the 'checksum' to keep")
        return _num(d, "checksum", None, 16, where)
    return None


def mh_from_dict(d, src=None, dst=None):
    """MH bytes from a decoded-MH dict (checksum computed when src/dst are known and not kept)."""
    m = from_dict(d)
    if not isinstance(m, mh.Message):
        raise ValueError("%s is not a Mobility Header message" % type(m).__name__)
    c = _fixed_checksum(d, type(m).__name__)
    if c is None and src is None:
        c = _num(d, "checksum", 0, 16, type(m).__name__)
    return m.encode(src, dst, checksum=c)


def _upper_from_dict(d, src, dst, default_nh):
    if "mh" in d:
        return 135, _within(["mh"], mh_from_dict, d["mh"], src, dst)
    if "icmp6" in d:
        m = _within(["icmp6"], from_dict, d["icmp6"])
        if not isinstance(m, icmp6.ICMPv6Message):
            raise ValueError("icmp6: %s is not an ICMPv6 message" % type(m).__name__)
        return 58, m.encode(src, dst, checksum=_within(["icmp6"], _fixed_checksum, d["icmp6"], type(m).__name__))
    if "udp" in d:
        u = d["udp"]
        if not isinstance(u, dict):
            raise ValueError("udp: want an object")
        inner = _within(["udp", "inner"], packet_from_dict, u["inner"]) if "inner" in u else \
            _unhex("payload", u.get("payload", ""))
        body = build_udp(_num(u, "sport", None, 16, "udp"), _num(u, "dport", None, 16, "udp"), inner, src, dst)
        c = _fixed_checksum(u, "udp")
        if c is not None:
            body = body[:6] + struct.pack(">H", c) + body[8:]
        return 17, body + _unhex("trailer", u.get("trailer", ""))
    if "inner" in d:
        b = _within(["inner"], packet_from_dict, d["inner"])
        return (4 if b[0] >> 4 == 4 else 41), b
    return default_nh, _unhex("payload", d.get("payload", ""))


def packet_from_dict(d):
    """Bytes of a packet described as packet_to_dict makes it (edited or not). Without "ext", an
    IPv6 header gets a type 2 routing header from "rh2" and a Home Address option from "hao"."""
    if not isinstance(d, dict):
        raise ValueError("want a JSON object, got %r" % (d,))
    for k in d:
        if k not in _PKT_KEYS:
            raise ValueError("unknown key %r: a packet has %s" % (k, ", ".join(_PKT_KEYS)))
    if isinstance(d.get("ipv4"), dict):
        h = d["ipv4"]
        src, dst = ip4_from_text(h["src"]), ip4_from_text(h["dst"])
        nh, body = _upper_from_dict(d, src, dst, _num(h, "proto", 0, 8, "ipv4"))
        out = bytearray(build_ipv4(src, dst, nh, _unhex("options", h.get("options", "")) + body,
                                   _num(h, "ttl", 64, 8, "ipv4"), _num(h, "ident", 0, 16, "ipv4"),
                                   _num(h, "tos", 0, 8, "ipv4"), _num(h, "flags_frag", 0, 16, "ipv4")))
        if h.get("options"):
            raise ValueError("ipv4: header options are not supported for encoding")
        if h.get("checksum_ok") is False:
            struct.pack_into(">H", out, 10, _num(h, "checksum", None, 16, "ipv4"))
        return bytes(out) + _unhex("trailer", d.get("trailer", ""))
    h = d.get("ipv6")
    if not isinstance(h, dict):
        raise ValueError("want an 'ipv6' or 'ipv4' object (or a bare MH object with 'type')")
    for k in ("src", "dst"):
        if k not in h:
            raise ValueError("ipv6: %r is missing" % k)
    src, dst = ip6_from_text(h["src"]), ip6_from_text(h["dst"])
    if "ext" in h:
        ext = [_within(["ipv6", "ext[%d]" % i], _ext_from_dict, h["ext"][i]) for i in range(len(h["ext"]))]
    else:
        ext = []
        if h.get("rh2"):
            ext.append((43, rh2_header(ip6_from_text(h["rh2"]))))
        if h.get("hao"):
            ext.append((60, hao_header(ip6_from_text(h["hao"]))))
    p = decode_ipv6(build_ipv6(src, dst, 59, b"", ext=ext))  # to learn the pseudo-header addresses
    nh = _num(h, "upper_header", _num(h, "next_header", 59, 8, "ipv6"), 8, "ipv6")
    hop, tclass, flow = _num(h, "hop_limit", 64, 8, "ipv6"), _num(h, "tclass", 0, 8, "ipv6"), _num(h, "flow", 0, 20,
                                                                                                   "ipv6")
    nh, body = _upper_from_dict(d, pseudo_src(p), pseudo_dst(p), nh)
    out = build_ipv6(src, dst, nh, body, hop_limit=hop, tclass=tclass, flow=flow, ext=ext)
    return out + _unhex("trailer", d.get("trailer", ""))
