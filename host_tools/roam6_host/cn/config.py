"""`roam6 cn --config FILE`: the correspondent node's settings, checked field by field.

```json
{"address": "2001:db8:f3::2",   // required: the CN's IPv6 address (configured in this namespace)
 "interface": "eth0",           // optional: read Home Address option packets on this link only
 "echo_port": 7,                // the UDP echo application's port on that address (0: none)
 "kcn": "<40 hex>",             // optional: fixed Kcn (tests); random per start otherwise
 "nonce_period": 30,            // seconds between new nonces (<= 30 keeps MN tokens usable)
 "max_lifetime": 420,          // cap on granted binding lifetimes, seconds (<= 420)
 "probe": {"hoa": "2001:db8:aa::100", "port": 9000, "interval_ms": 100, "sport": 9002}}
```
`probe` (optional, for the bench): every interval_ms a `R6PD` datagram (seq u32, send time us
u64) from [address]:sport to hoa:port, which the MN's probe application echoes (CONTRACTS
§8.2); each echo is logged as an `rtt` event saying which way it went and came back (the HA
tunnel, or direct with RH2/HAO).
"""
import json

from roam6.wire.addr import ip6_from_text

from ..errors import UserError

FIELDS = ("address", "interface", "echo_port", "kcn", "nonce_period", "max_lifetime", "probe")
PROBE_FIELDS = ("hoa", "port", "interval_ms", "sport")


class CNConfig:
    def __init__(self, address, interface=None, echo_port=7, kcn=None, nonce_period=30, max_lifetime=420,
                 probe=None):
        self.address_text = address
        self.address = ip6_from_text(address)
        self.interface = interface
        self.echo_port = echo_port
        self.kcn = kcn
        self.nonce_period = nonce_period
        self.max_lifetime = max_lifetime
        self.probe = probe  # None or {"hoa": 16 bytes, "hoa_text", "port", "interval_ms", "sport"}


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
    probe = _probe(d.get("probe"), path, port)
    return CNConfig(d["address"], iface, port, kcn, period, life, probe)


def _port(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 65535


def _probe(p, path, echo_port):
    if p is None:
        return None
    if not isinstance(p, dict):
        _fail(path, "field 'probe' must be an object", '{"hoa": "2001:db8:aa::100", "port": 9000}')
    for k in p:
        if k not in PROBE_FIELDS:
            _fail(path, "unknown field 'probe.%s'" % k, "known: " + ", ".join(PROBE_FIELDS))
    try:
        hoa = ip6_from_text(p.get("hoa")) if isinstance(p.get("hoa"), str) else None
    except ValueError:
        hoa = None
    if hoa is None:
        _fail(path, "field 'probe.hoa': want the MN's home address (IPv6 text)")
    out = {"hoa": hoa, "hoa_text": p["hoa"], "port": p.get("port", 9000),
           "interval_ms": p.get("interval_ms", 100), "sport": p.get("sport", 9002)}
    for k in ("port", "sport"):
        if not _port(out[k]):
            _fail(path, "field 'probe.%s': want a UDP port 1..65535" % k)
    if out["sport"] == echo_port:
        _fail(path, "field 'probe.sport' is the echo application's port: pick another")
    iv = out["interval_ms"]
    if not isinstance(iv, int) or isinstance(iv, bool) or not 1 <= iv <= 60000:
        _fail(path, "field 'probe.interval_ms': want 1..60000")
    return out


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
