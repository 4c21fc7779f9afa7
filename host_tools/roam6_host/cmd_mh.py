"""`roam6 mh decode|encode`: Mobile IPv6 messages as hex <-> one JSON object per line.

decode takes hex (arguments, or one per line on stdin) of a whole IP packet (IPv6, or IPv4 with
RFC 5555 UDP encapsulation), `--mh` for a bare Mobility Header, or `--pcap FILE` (only the packets
that carry a Mobility Header, tunnelled ones too, unless --all). Each message shows its MH type
number ("mh_type") and, for BU and BA, the lifetime in seconds ("lifetime_s") beside the raw
4-second units; encode drops both (they must agree with "type" and "lifetime"). encode takes
the JSON lines decode prints (edited or not) and prints hex; `decode | encode` gives the input
bytes back. encode takes a message's or option's "type" as decode writes it (the class name) or as
the RFCs abbreviate it (BU, BA, BE, BRR, HoTI, CoTI, HoT, CoT, MPS, MPA, RS, RA, PIO). A malformed
input prints {"error": ..., "offset": ...} and the command exits 1; a value that does not fit its
field (out of range, wrong type, wrong size) prints {"error": ..., "field": ..., "where": ...}
naming the field and the message/option/header it is in.
"""
import argparse
import binascii
import json
import struct
import sys

from roam6_codec import jsonform as wjson
from roam6.wire.addr import ip6_from_text
from roam6.wire.errors import DecodeError
from roam6_codec.mh import Message, UnknownMH, decode_mh, checksum_ok

from .errors import UserError
from . import pcap


def register(sub):
    p = sub.add_parser("mh", help="decode/encode Mobile IPv6 messages (hex <-> JSON)",
                       description=__doc__.split("\n\n")[1])
    msub = p.add_subparsers(dest="mh_command", metavar="decode|encode")
    msub.required = True
    d = msub.add_parser("decode", help="hex (or a pcap) -> one JSON object per message",
                        description="Decode IP packets (or bare Mobility Headers with --mh) given as hex, one "
                                    "JSON object per message;\nerrors are JSON lines too, and the exit code is 1.",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="examples:\n  roam6 mh decode < examples/messages.hex\n"
                               "  roam6 mh decode --mh 3b010600bcb900800000002a01020000\n"
                               "  roam6 mh decode --pcap reports/demo/pcap/core-ha.pcap      # mobility messages only\n"
                               "  roam6 mh decode --pcap reports/demo/pcap/core-ha.pcap --all  # every packet")
    d.add_argument("hex", nargs="*", help="hex strings (default: one per line on stdin)")
    d.add_argument("--mh", action="store_true", help="inputs are bare Mobility Headers, not IP packets")
    d.add_argument("--src", help="with --mh: pseudo-header source (the home address) to verify the checksum")
    d.add_argument("--dst", help="with --mh: pseudo-header destination to verify the checksum")
    d.add_argument("--pcap", metavar="FILE", help="read the packets of a pcap/pcapng capture instead")
    d.add_argument("--all", action="store_true",
                   help="with --pcap: print every packet (default: only those carrying a Mobility Header, directly or "
                        "tunnelled in IPv6, UDP 4191 over IPv4 or IPv6; decode errors are always printed)")
    d.add_argument("--indent", type=int, default=None, help="pretty-print with this indent")
    d.set_defaults(func=run_decode)
    e = msub.add_parser("encode", help="JSON objects (as decode prints them) -> hex",
                        description="Encode the JSON objects `mh decode` prints (edited or not) back to hex;\n"
                                    "checksums are recomputed unless the object says checksum_ok false.\n"
                                    "\"type\" is the class name decode writes or an RFC short name (case-sensitive):\n"
                                    "BRR HoTI CoTI HoT CoT BU BA BE (MH), MPS MPA, RS RA PIO.",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="examples:\n  roam6 mh decode < examples/messages.hex | roam6 mh encode\n"
                               "  roam6 mh encode '{\"type\": \"BRR\"}'")
    e.add_argument("json", nargs="*", help="JSON objects (default: one per line on stdin)")
    e.add_argument("--src", help="bare MH: pseudo-header source for the checksum")
    e.add_argument("--dst", help="bare MH: pseudo-header destination for the checksum")
    e.set_defaults(func=run_encode)


def _addr(text, what):
    if text is None:
        return None
    try:
        return ip6_from_text(text)
    except ValueError as exc:
        raise UserError("%s: %s" % (what, exc), hint="give an IPv6 address such as 2001:db8::1")


def _inputs(items):
    if items:
        return [(i + 1, s) for i, s in enumerate(items)]
    if sys.stdin.isatty():
        raise UserError("nothing to read", hint="give hex/JSON as arguments or pipe it in, one per line")
    out = []
    for n, line in enumerate(sys.stdin, 1):
        line = line.strip()
        if line and not line.startswith("#"):
            out.append((n, line))
    if not out:
        raise UserError("nothing on stdin (blank and # lines are skipped)",
                        hint="pipe in one message per line, or give them as arguments")
    return out


def _unhex(text):
    s = "".join(text.split())
    if s[:2] in ("0x", "0X"):
        s = s[2:]
    if not s:
        raise DecodeError(0, "empty input: no hex digits")
    for i, c in enumerate(s):
        if c not in "0123456789abcdefABCDEF":
            raise DecodeError(i // 2, "character %r at position %d is not hex" % (c, i))
    if len(s) % 2:
        raise DecodeError(len(s) // 2, "odd number of hex digits (%d)" % len(s))
    return binascii.unhexlify(s)


def _error(exc, **where):
    d = dict(where)
    if isinstance(exc, DecodeError):
        d.update(error=str(exc), offset=exc.offset, reason=exc.reason)
    else:
        d["error"] = str(exc)
    return d


def _print(obj, indent=None):
    print(json.dumps(obj, indent=indent))


# ---- presentation-only fields: the MH type number, and BU/BA lifetimes in seconds ----------

LIFETIME_UNIT_S = 4          # RFC 6275 §6.1.7, §6.1.8: BU and BA lifetimes count 4-second units
_LIFETIME_TYPES = ("BindingUpdate", "BindingAck")


def _mh_dicts(d):
    """Every decoded Mobility Header in a packet dict, tunnels included (inner, udp.inner)."""
    for k, v in d.items():
        if isinstance(v, dict):
            if k == "mh":
                yield v
            else:
                yield from _mh_dicts(v)


def _fixed_type(cls):
    """The MH type number a class always has; None where it is a field of the message (unknown types)."""
    if cls is None or not issubclass(cls, Message) or issubclass(cls, UnknownMH):
        return None
    return cls.mh_type


def _annotate(m):
    """A decoded MH dict with "mh_type" after "type" and "lifetime_s" after "lifetime"."""
    n = _fixed_type(wjson.class_of(m.get("type")))
    out = {}
    for k, v in m.items():
        out[k] = v
        if k == "type" and n is not None:
            out["mh_type"] = n
        elif k == "lifetime" and m.get("type") in _LIFETIME_TYPES and isinstance(v, int):
            out["lifetime_s"] = v * LIFETIME_UNIT_S
    return out


def _annotate_packet(d):
    for k, v in list(d.items()):
        if isinstance(v, dict):
            d[k] = _annotate(v) if k == "mh" else _annotate_packet(v)
    return d


def _strip(m):
    """Undo _annotate before encoding: the added fields go, but only when they agree."""
    m = dict(m)
    n = _fixed_type(wjson.class_of(m.get("type")))
    if n is not None and "mh_type" in m:
        if m["mh_type"] != n:
            raise ValueError("mh_type %r disagrees with type %s (MH type %d): edit \"type\", or drop mh_type"
                             % (m["mh_type"], m["type"], n))
        del m["mh_type"]
    if "lifetime_s" in m and m.get("type") in _LIFETIME_TYPES:
        life = m.get("lifetime", 0)
        if not isinstance(life, int) or m["lifetime_s"] != life * LIFETIME_UNIT_S:
            raise ValueError("lifetime_s %r disagrees with lifetime %r (4-second units): edit \"lifetime\", or drop "
                             "lifetime_s" % (m["lifetime_s"], m.get("lifetime")))
        del m["lifetime_s"]
    return m


def _strip_packet(d):
    return {k: (_strip(v) if k == "mh" else _strip_packet(v)) if isinstance(v, dict) else v for k, v in d.items()}


def _decode_one(buf, args, src, dst):
    if args.mh:
        m = decode_mh(buf)
        d = wjson.to_dict(m)
        if src is not None and dst is not None:
            d["checksum_ok"] = checksum_ok(m.raw, src, dst)
        return _annotate(d)
    return _annotate_packet(wjson.packet_to_dict(buf))


def run_decode(args):
    src, dst = _addr(args.src, "--src"), _addr(args.dst, "--dst")
    if (src is None) != (dst is None):
        raise UserError("--src and --dst go together", hint="give both pseudo-header addresses, or neither")
    failed = 0
    if args.pcap:
        if args.hex:
            raise UserError("--pcap reads the capture; do not give hex as well")
        hidden = shown = 0
        try:
            frames = pcap.read_frames(args.pcap)
            for fr in frames:
                where = {"frame": fr.index, "time": round(fr.ts, 6)}
                off, v = pcap.ip_packet(fr.linktype, fr.data)
                if off is None:
                    if args.all:
                        _print(dict(where, skipped=v), args.indent)
                    else:
                        hidden += 1
                    continue
                where["ip_offset"] = off  # error offsets count from the IP header, this far into the frame
                try:
                    d = _decode_one(fr.data[off:], args, src, dst)
                    if not (args.all or args.mh or next(_mh_dicts(d), None) is not None):
                        hidden += 1
                        continue
                    shown += 1
                    _print(dict(where, **d), args.indent)
                except DecodeError as exc:
                    failed += 1
                    _print(_error(exc, **where), args.indent)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise UserError("cannot read %s: %s" % (args.pcap, exc.strerror or exc))
        except pcap.PcapError as exc:
            failed += 1
            _print({"error": str(exc)}, args.indent)
        if hidden and not shown and not failed:
            print("roam6: none of the %d packets in %s carries a Mobility Header (--all prints them all)"
                  % (hidden, args.pcap), file=sys.stderr)
        return 1 if failed else 0
    for n, text in _inputs(args.hex):
        try:
            _print(_decode_one(_unhex(text), args, src, dst), args.indent)
        except DecodeError as exc:
            failed += 1
            _print(_error(exc, input=n), args.indent)
    return 1 if failed else 0


def _encode_one(d, src, dst):
    if not isinstance(d, dict):
        raise ValueError("want a JSON object, got %s" % type(d).__name__)
    if "ipv6" in d or "ipv4" in d:
        return wjson.packet_from_dict(_strip_packet(d))
    if "type" in d:
        return wjson.mh_from_dict(_strip(d), src, dst)
    if "error" in d:
        raise ValueError("this line is a decode error, not a message: %s" % d["error"])
    raise ValueError("want an object with 'ipv6', 'ipv4' or an MH 'type'")


def run_encode(args):
    src, dst = _addr(args.src, "--src"), _addr(args.dst, "--dst")
    if (src is None) != (dst is None):
        raise UserError("--src and --dst go together", hint="give both pseudo-header addresses, or neither")
    failed = 0
    for n, text in _inputs(args.json):
        try:
            d = json.loads(text)
            print(_encode_one(d, src, dst).hex())
        except json.JSONDecodeError as exc:
            failed += 1
            _print({"input": n, "error": "not JSON: %s" % exc.msg, "offset": exc.pos})
        except wjson.FieldError as exc:
            failed += 1
            # a value that does not fit its field: the error names it, and where it sits
            line = {"input": n, "error": str(exc), "field": exc.field}
            if exc.where:
                line["where"] = " ".join(exc.where)
            _print(line)
        except (ValueError, KeyError, TypeError, struct.error, OverflowError, AttributeError, IndexError) as exc:
            failed += 1
            # a wrong type the codec did not name (e.g. a number where an address goes) still gets a line
            msg = ("missing field %s" % exc if isinstance(exc, KeyError) else
                   "a field has the wrong type (%s)" % exc if isinstance(exc, AttributeError) else str(exc))
            _print({"input": n, "error": msg})
    return 1 if failed else 0
