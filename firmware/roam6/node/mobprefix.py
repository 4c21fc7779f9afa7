"""Mobile prefix discovery (RFC 6275 §11.4.2-3) under RFC 4285: config.json "prefix_solicit_s"
(CONTRACTS.md §5; docs/PROTOCOL-NOTES.md §11.15 says why an MPA is only a hint here).

- While bound, at the first registration and then at most once per `prefix_solicit_s`, a Mobile
  Prefix Solicitation (ICMPv6 146, an odd Identifier of our own) goes through the tunnel, HoA -> HA.
- An MPA from the current HA without our outstanding Identifier (unsolicited: the HA's prefixes
  changed, RFC 6275 §11.4.3) only prompts an MPS now, unless one is out (for less than a second),
  at most once a second.
- A Mobile Prefix Advertisement (147) is taken only through the tunnel, from the current HA, with
  a right checksum and the Identifier of our outstanding MPS; its first Prefix Information option
  (A flag, a prefix length equal to the home prefix's) naming another prefix is a hint: the node
  tries the home address "new prefix + our interface identifier" with a BU (the HA runs DAD
  first) and adopts the prefix only when that BU gets an authenticated BA with status 0 (the
  registration's own checks: MN-HA authenticator, sequence number, timestamp). Any rejection puts
  the old home address back and registers it again. Anything else is ignored and counted.

Imported by the config checker only when the field is there, before the driver loads (as
node/halist.py): it wraps eventlog.report (the registration's events: when to solicit, the
trial's outcome); the first MPS wraps the node's host input (where an MPA from the tunnel goes).
A node without the field pays nothing."""
import struct

from roam6.wire.checksum import checksum6

from . import eventlog

_report = eventlog.report
_period = [0]           # ms between solicitations (0: the field is absent)
_last = [None]          # when the last MPS left
_ident = [0]            # the outstanding MPS's Identifier (0: none)
_trial = [None]         # (old HoA, new HoA, new prefix) while the new HoA's BU is out
_prompted = [None]      # when an unsolicited MPA last prompted an MPS
IGNORED = [0]           # MPAs dropped: not ours, malformed, wrong checksum, no usable prefix


def parse_config(raw, err):
    v = raw["prefix_solicit_s"]
    if not isinstance(v, int) or isinstance(v, bool) or v < 10 or v > 86400:
        raise err("prefix_solicit_s", "must be an integer from 10 to 86400 (s), got %r" % (v,))
    _period[0] = v * 1000


def mps(node, now):
    """One MPS through the tunnel; the host input is wrapped (once) to catch the MPA."""
    host = node.host
    if getattr(host, "_mp_input", None) is None:
        host._mp_input = host.input
        host.input = lambda buf, n: _input(node, buf, n)
    i = _ident[0] = ((now * 2654435761) & 0xFFFE) | 1       # odd: never 0
    hoa, ha = node.cfg.hoa, node.cfg.ha
    m = bytearray(struct.pack(">BBHHH", 146, 0, 0, i, 0))
    struct.pack_into(">H", m, 2, checksum6(hoa, ha, 58, m))
    _last[0] = now
    node.log("mps", ident=i)
    node.send_packet(struct.pack(">IHBB16s16s", 0x60000000, len(m), 58, 64, hoa, ha) + m)


def _input(node, buf, n):
    if n >= 48 and buf[6] == 58 and buf[40] == 147:
        mpa_in(node, bytes(buf[:n]), node.now())
        return
    node.host._mp_input(buf, n)


def mpa_in(node, pkt, now):
    """An ICMPv6 147 from the tunnel (the whole inner packet): a hint, tried as a BU (above)."""
    cfg, reg = node.cfg, node.reg
    n = len(pkt)
    plen = cfg.home_prefix[1]
    if (pkt[8:24] != cfg.ha or pkt[24:40] != cfg.hoa or pkt[41] != 0 or _trial[0] is not None
            or struct.unpack_from(">H", pkt, 4)[0] != n - 40):
        IGNORED[0] += 1
        return None
    if _ident[0] == 0 or struct.unpack_from(">H", pkt, 44)[0] != _ident[0]:
        # unsolicited (the HA's prefixes changed, RFC 6275 §11.4.3): only a prompt to ask now,
        # at most once a second; the answer to that MPS is what counts
        IGNORED[0] += 1
        if (_ident[0] == 0 or now - _last[0] >= 1000) and (_prompted[0] is None or now - _prompted[0] >= 1000):
            _prompted[0] = now
            mps(node, now)
        return None
    m = bytearray(pkt[40:])
    ck = struct.unpack_from(">H", m, 2)[0]
    struct.pack_into(">H", m, 2, 0)
    if checksum6(pkt[8:24], pkt[24:40], 58, m) != ck:
        IGNORED[0] += 1
        return None
    i = 8
    while i + 2 <= len(m):
        t, ln = m[i], m[i + 1] * 8
        if ln == 0 or i + ln > len(m):
            break
        if t == 3 and ln == 32 and m[i + 2] == plen and m[i + 3] & 0x40:
            prefix = _masked(bytes(m[i + 16:i + 32]), plen)
            _ident[0] = 0           # answered: a second copy is ignored
            if prefix == _masked(cfg.home_prefix[0], plen):
                return None         # our prefix still: nothing to do
            old = cfg.hoa
            new = bytes(prefix[j] | (old[j] & ~_mask_byte(j, plen) & 0xFF) for j in range(16))
            _trial[0] = (old, new, prefix)
            node.log("prefix_hint", prefix=_text(prefix, plen))
            cfg.hoa = reg.hoa = new       # BAs for the new HoA come to it (driver.packet_in)
            reg.first_reg = True          # the HA runs DAD for it
            if reg.coa is not None:
                reg.move(reg.coa, reg.transport, now)
                node.flush()
            return new
        i += ln
    IGNORED[0] += 1
    return None


def _mask_byte(j, plen):
    b = plen - 8 * j
    return 0xFF if b >= 8 else (0 if b <= 0 else (0xFF << (8 - b)) & 0xFF)


def _masked(addr, plen):
    return bytes(addr[j] & _mask_byte(j, plen) for j in range(16))


def _hex(a):
    from .transport import addr_text
    return addr_text(a)


def _text(prefix, plen):
    from .transport import addr_text
    return "%s/%d" % (addr_text(prefix), plen)


def outcome(node, ev, now):
    """The registration's events: adopt or undo a trial; solicit when due. Returns what it did."""
    k = ev[0]
    tr = _trial[0]
    if tr is not None and k == "registered":
        _trial[0] = None
        cfg = node.cfg
        cfg.home_prefix = (tr[2], cfg.home_prefix[1])
        node.host.hoa = tr[1]
        from .transport import addr_text
        node.log("home_prefix", prefix=_text(tr[2], cfg.home_prefix[1]), hoa=addr_text(tr[1]))
        return "adopted"
    if tr is not None and (k == "error" or (k == "ba" and (ev[1] == 128 or ev[1] == 130))):
        _trial[0] = None
        reg = node.reg
        node.cfg.hoa = reg.hoa = tr[0]
        node.log("prefix_refused", status=ev[1] if k == "ba" else ev[2], hoa_tried=_hex(tr[1]))
        reg.first_reg = False             # the old binding may still stand
        if reg.coa is not None:
            reg.move(reg.coa, reg.transport, now)
            node.flush()                  # (re-entered from flush's event loop: sends the BU now)
        return "undone"
    if k == "registered" and _period[0] and (_last[0] is None or now - _last[0] >= _period[0]):
        mps(node, now)
        return "solicited"
    return None


def report(node, ev, sent_us):
    r = _report(node, ev, sent_us)
    outcome(node, ev, node.now())
    return r


eventlog.report = report
