"""`roam6 cn --config FILE`: the correspondent node's settings, checked field by field.

```json
{"address": "2001:db8:f3::2",   // required: the CN's IPv6 address (configured in this namespace)
 "interface": "eth0",           // optional: read Home Address option packets on this link only
 "echo_port": 7,                // the UDP echo application's port on that address (0: none)
 "kcn": "<40 hex>",             // optional: fixed Kcn (tests); random per start otherwise
 "nonce_period": 30,            // seconds between new nonces (<= 30 keeps MN tokens usable)
 "max_lifetime": 420}           // cap on granted binding lifetimes, seconds (<= 420)
```
"""
import json

from roam6.wire.addr import ip6_from_text

from ..errors import UserError

FIELDS = ("address", "interface", "echo_port", "kcn", "nonce_period", "max_lifetime")


class CNConfig:
    def __init__(self, address, interface=None, echo_port=7, kcn=None, nonce_period=30, max_lifetime=420):
        self.address_text = address
        self.address = ip6_from_text(address)
        self.interface = interface
        self.echo_port = echo_port
        self.kcn = kcn
        self.nonce_period = nonce_period
        self.max_lifetime = max_lifetime


def _fail(path, msg, hint=None):
    raise UserError("%s: %s" % (path, msg), hint=hint)


def parse_config(d, path="cn config"):
    if not isinstance(d, dict):
        _fail(path, "must be a JSON object", 'e.g. {"address": "2001:db8:f3::2"}')
    for k in d:
        if k not in FIELDS:
            _fail(path, "unknown field %r" % k, "known fields: " + ", ".join(FIELDS))
    if "address" not in d:
        _fail(path, "field 'address' is missing", "the CN's IPv6 address, e.g. \"2001:db8:f3::2\"")
    try:
        if not isinstance(d["address"], str):
            raise ValueError
        ip6_from_text(d["address"])
    except ValueError:
        _fail(path, "field 'address': %r is not an IPv6 address" % (d["address"],))
    iface = d.get("interface")
    if iface is not None and (not isinstance(iface, str) or not 0 < len(iface) < 16):
        _fail(path, "field 'interface': want an interface name (1-15 characters)")
    port = d.get("echo_port", 7)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        _fail(path, "field 'echo_port': want a UDP port 0..65535 (0 = no echo application)")
    kcn = d.get("kcn")
    if kcn is not None:
        try:
            kcn = bytes.fromhex(kcn)
        except (TypeError, ValueError):
            kcn = b""
        if len(kcn) != 20:
            _fail(path, "field 'kcn': want 40 hex digits (20 bytes)", "or leave it out for a random Kcn")
    period = d.get("nonce_period", 30)
    if not isinstance(period, (int, float)) or isinstance(period, bool) or not 0 < period <= 240:
        _fail(path, "field 'nonce_period': want seconds in (0, 240]")
    life = d.get("max_lifetime", 420)
    if not isinstance(life, int) or isinstance(life, bool) or not 4 <= life <= 420:
        _fail(path, "field 'max_lifetime': want seconds 4..420 (MAX_RR_BINDING_LIFETIME)")
    return CNConfig(d["address"], iface, port, kcn, period, life)


def load_config(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise UserError("cannot read %s: %s" % (path, exc.strerror),
                        hint="give the CN's JSON config with --config FILE") from None
    try:
        d = json.loads(text)
    except ValueError as exc:
        raise UserError("%s is not valid JSON: %s" % (path, exc)) from None
    return parse_config(d, path)
