"""Changing home agents: the Home Agent Switch (RFC 5142) and the MN's list of HAs.

Loaded only when needed (a node with one HA that never receives a Home Agent Switch pays
nothing): by `mherror.answer` on the first MH type 12 from the tunnel, and by `halist` (the node's first
event) when config.json lists several HAs (CONTRACTS.md §5).

- `parse_switch(mh, key, spi, hoa)`: the compact decoder; (targets, refresh_units, timestamp) or
  None when malformed or not authentic (docs/PROTOCOL-NOTES.md §11.14: options Binding Refresh
  Advice, Replay Protection, MN-HA authentication last over HoA | HoA | MH data).
- `switch_in(node, src, mh, now)`: an authenticated switch from our HA, newer than the last one
  (and, with RFC 4285 timestamps on, within 30 s of our clock), moves the node to the first
  target that is not the current HA. udp4/udp6: make before break (`haswitchmbb.py`: registered there first,
  the old HA's socket kept, read and carrying data until then; its binding removed after); a refusal
  (134: the new HA's DAD meets the old HA's proxy ND) or 3 s of silence falls back to break
  before make, as ip6 and IPsec do (docs/PROTOCOL-NOTES.md §11.14). Anything else is ignored
  and counted in `IGNORED`.
- Under IPsec (core/ipsecreg.py, `reg.esp`): the switch comes out of the CHILD_SA, which
  authenticated it and refuses replays, so it carries no MN-HA/Replay options (RFC 4877); the
  deregistration at the old HA is the SA form of the BU, sealed in the old HA's CHILD_SA, and the
  glue (ipsecglue.py) deletes that IKE SA and runs a handshake with the new HA before the BU.
- `go(node, target, now, why)`: register with `target` (same HoA, key and SPI) from the current
  care-of address; `watch(node)`: the HA stopped answering -> the next HA of the list.
"""
import asyncio
import struct

from roam6.crypto import mnha_auth_data
from roam6.wire.binding import V4MAPPED, encode_bu, ipv6_packet, mac_coa
from roam6.wire.checksum import checksum6

from .transport import UdpTransport, addr_text, sleep_ms

IGNORED = [0]          # switches dropped: malformed, not authentic, replayed, from a stranger
_last = [0, None]      # timestamp of the last switch acted on; the HA it moved us away from
_busy = [0]            # a make-before-break switch in progress (haswitchmbb): watch() waits


def parse_switch(mh, key, spi, hoa, esp=False):
    n = len(mh)
    if n < 8 or mh[2] != 12:
        return None
    off = 8 + 16 * mh[6]
    if off > n:
        return None
    targets = [bytes(mh[i:i + 16]) for i in range(8, off, 16)]
    bra = ts = None
    while off < n:
        t = mh[off]
        if t == 0:                    # Pad1
            off += 1
            continue
        if off + 2 > n:
            return None
        e = off + 2 + mh[off + 1]
        if e > n:
            return None
        if t == 2 and e - off == 4:
            bra = (mh[off + 2] << 8) | mh[off + 3]
        elif t == 10 and e - off == 10:
            ts = struct.unpack_from(">Q", mh, off + 2)[0]
        elif t == 9 and not esp:      # MN-HA authentication: last, ours, right
            if (e != n or e - off != 19 or mh[off + 2] != 1 or ts is None
                    or struct.unpack_from(">I", mh, off + 3)[0] != spi):
                return None
            prefix = bytearray(mh[:off + 7])
            prefix[4] = prefix[5] = 0
            if mnha_auth_data(key, hoa, hoa, prefix) != bytes(mh[off + 7:e]):
                return None
            return targets, bra, ts
        off = e
    return (targets, bra, ts) if esp else None    # esp: out of the CHILD_SA, which authenticated it


def switch_in(node, src, mh, now):
    reg = node.reg
    src = bytes(src)
    esp = getattr(reg, "esp", False)  # IPsec: the CHILD_SA authenticated it, its window refuses replays
    r = None
    if src == reg.ha or src == _last[1]:
        r = parse_switch(mh, reg.key, reg.spi, reg.hoa, esp)
    if r is not None:
        targets, _bra, ts = r
        mine = now + reg.ntp_offset_ms
        if esp:
            ts = _last[0]
        elif ts <= _last[0] or (reg.last_ts is not None and abs((ts >> 32) * 1000 - mine) > 30000):
            r = None
    if r is None:
        IGNORED[0] += 1
        if IGNORED[0] == 1:
            node.log("error", reason="Home Agent Switch ignored (not authentic, malformed or replayed)")
        return
    _last[0] = ts
    if src != reg.ha:                 # the old HA again: our deregistration there got lost
        asyncio.create_task(_dereg_old(node, (src,) + tuple(_last[2:])))
        return
    for t in targets:
        if t != reg.ha:
            go(node, t, now, "switch")
            return
    nxt = _next_ha(node)              # none named (RFC 5142: discover one): the config's next
    if nxt is not None:
        go(node, nxt, now, "switch")


def _ha4(cfg, target):
    for a6, a4 in getattr(cfg, "has", ()):
        if a6 == target:
            return a4
    return target[12:] if target[:12] == V4MAPPED else None


def _next_ha(node):
    has = getattr(node.cfg, "has", None)
    if not has:
        return None
    cur = node.reg.ha
    for i in range(len(has)):
        if has[i][0] == cur:
            return has[(i + 1) % len(has)][0]
    return has[0][0]


def go(node, target, now, why):
    cfg, reg = node.cfg, node.reg
    ha4 = _ha4(cfg, target)
    tr, coa = reg.transport, reg.coa
    if tr == "udp4" and ha4 is None:
        node.log("error", reason="cannot switch to HA %s: no IPv4 address for it (udp4)" % addr_text(target))
        return False
    if why == "switch" and tr is not None and coa is not None and coa != reg.hoa:
        # break before make: the old HA defends the HoA on the home link (proxy ND) while it holds
        # our binding, so the new HA's DAD would fail (BA 134) until the old binding is gone
        old = (reg.ha, cfg.ha_ipv4, tr, coa)
        _last[1:] = old
        up = node.uplink
        kept = up.active
        start = None
        if (tr != "ip6" and not getattr(reg, "esp", False) and kept is not None and up.old is None
                and kept.sock is not None):
            try:
                from .haswitchmbb import start    # (not in every board's bundle: board.json)
            except (ImportError, MemoryError):    # (no room for it: break before make)
                start = None
        # (start: no import back, no cycle; False: no memory for it, nothing changed)
        if start is None or not start(node, target, ha4, old, kept, _point, _dereg_bu, _busy):
            asyncio.create_task(_switch(node, target, ha4, old))
    else:
        _point(node, target, ha4, why)
    return True


async def _switch(node, target, ha4, old):
    try:
        await _dereg_old(node, old)
    except MemoryError:
        node.log("error", reason="no memory for the deregistration at the old HA")
    _point(node, target, ha4, "switch")


def _point(node, target, ha4, why, move=True):
    """From now on the HA is `target`: new transports (connected to it), a BU from the same CoA."""
    cfg, reg, up = node.cfg, node.reg, node.uplink
    tr, coa = reg.transport, reg.coa
    old = reg.ha
    cfg.ha = reg.ha = target
    cfg.ha_ipv4 = ha4
    for t in up.transports.values():
        t.close()
    up.transports = {}
    up.active = None
    node.log("ha_switch", ha=addr_text(target), old=addr_text(old), why=why)
    reg.first_reg = True              # the new HA runs DAD before it answers
    if move and coa is not None and tr is not None and coa != reg.hoa:
        asyncio.create_task(_move(node, coa, tr))   # (the uplink's reading task may be the caller)


async def _move(node, coa, tr):
    node.moved(coa, tr)


def _dereg_bu(node, ha6, coa, ip6):
    """A lifetime-0 BU to ha6 from coa (a fresh sequence number and timestamp of our own)."""
    reg = node.reg
    seq = reg.seq
    reg.seq = (seq + 1) & 0xFFFF
    if not 0 < ((reg.seq_reserved - reg.seq) & 0xFFFF) < 0x8000:
        reg.seq_reserved = (reg.seq + 16) & 0xFFFF
        reg._dirty = True
        node.flush()          # the reservation on disk before the number is used
    ts = None
    if reg.last_ts is not None:
        m = node.now() + reg.ntp_offset_ms
        ts = (((m // 1000) & 0xFFFFFFFF) << 32) | (((m % 1000) << 32) // 1000)
        if ts <= reg.last_ts:
            ts = reg.last_ts + 1
        reg.last_ts = ts
    if getattr(reg, "esp", False):    # IPsec: the SA form, sealed in the old HA's CHILD_SA (still ours)
        from roam6.core.ipsecreg import encode_bu_sa
        mh = encode_bu_sa(seq, 0xD000 if ip6 else 0xD100, 0, coa if len(coa) == 4 else None)
        struct.pack_into(">H", mh, 4, checksum6(reg.hoa, ha6, 135, mh))
        node.log("old_ha_dereg", seq=seq, ha=addr_text(ha6))
        return reg.seal_mh(mh, coa, ip6, ha6)
    key, hoa, mc = reg.key, reg.hoa, mac_coa(coa)
    mh = encode_bu(seq, 0xC000 if ip6 else 0xC100, 0, reg.nai, reg.spi, coa if len(coa) == 4 else None, ts,
                   lambda p: mnha_auth_data(key, mc, hoa, p))
    struct.pack_into(">H", mh, 4, checksum6(hoa, ha6, 135, mh))
    node.log("old_ha_dereg", seq=seq, ha=addr_text(ha6))
    if ip6:                   # RFC 6275: from the CoA with a Home Address option
        return ipv6_packet(bytes(coa), ha6, 135, mh, hao=hoa)
    return ipv6_packet(hoa, ha6, 135, mh)


async def _dereg_old(node, old):
    """A lifetime-0 BU to the old HA from the care-of address: up to 3, 1 s apart, until it answers
    (ip6: its BA comes on the link, for the registration, which ignores it: one BU, 150 ms)."""
    ha6, ha4, tr, coa = old
    if coa is None:
        return
    if tr == "ip6":
        up = node.uplink.active
        p = _dereg_bu(node, ha6, coa, True)
        if up is not None and hasattr(up, "send_raw") and p is not None:
            up.send_raw(p)
            await sleep_ms(150)
        return
    t = UdpTransport(tr, addr_text(ha4 if tr == "udp4" else ha6))
    try:
        t.open(addr_text(coa))
        for _ in range(3):
            p = _dereg_bu(node, ha6, coa, False)
            if p is None:                     # (IPsec without a CHILD_SA: nothing leaves in clear)
                break
            t.send(p)
            for k in range(120):
                await sleep_ms(2 if k < 25 else 10)     # its BA comes within ms here: look often first
                try:
                    if t.sock.recv(8):    # (small: the heap may be 64 KB; the rest is dropped)
                        t.close()         # the old HA answered (its BA: deregistered)
                        return
                except OSError:
                    pass
    except OSError as e:
        node.log("error", reason="deregistration at the old HA failed: %s" % e)
    t.close()


async def watch(node):
    """Several HAs configured: when the current one stops answering (the BU back-off at its cap,
    or `ha_liveness_s` without a BA) register with the next one of the list. Every HA of the list
    tried in vain, on the ip6 transport: ask the home agents anycast address (DHAAD, RFC 6275
    §11.4.1) and take the HAs its Reply lists."""
    reg = node.reg
    lim = getattr(node.cfg, "ha_liveness_s", 0) * 1000
    tried = 0
    while True:
        await sleep_ms(250)
        st = reg.state
        if _busy[0]:              # a switch's own fallback decides (a 134 from the new HA is no silence)
            continue
        if st == 2:                                 # BOUND (core/bul.py)
            tried = 0
        elif (st == 1 or st == 3) and reg.sent:     # REGISTERING, REFRESHING
            now = node.now()
            if reg.timeout_ms >= reg.max_bindack_ms or (lim and now - reg.attempt_started >= lim):
                tried += 1
                if tried >= len(node.cfg.has) and reg.transport == "ip6" and dhaad_out(node, now):
                    tried = 0
                    reg.attempt_started = now       # one request per liveness period
                    continue
                nxt = _next_ha(node)
                if nxt is not None and nxt != reg.ha:
                    go(node, nxt, now, "liveness")


_dhaad = [0]        # the Identifier of the outstanding DHAAD Request (0: none)


def dhaad_out(node, now):
    """A Home Agent Address Discovery Request from the care-of address to the home agents
    anycast address of the home prefix (RFC 2526: ones, the last 7 bits 0x7e; /64: fdff:...fffe)."""
    tr, coa, hp = node.uplink.active, node.reg.coa, node.cfg.home_prefix
    if tr is None or coa is None or hp is None or len(coa) != 16:
        return False
    a, n = hp
    dst = bytearray(16)
    for i in range(16):
        bits = min(8, max(0, n - 8 * i))            # prefix bits in byte i
        dst[i] = (a[i] & (0xFF00 >> bits)) | (0xFF >> bits)
    dst[15] &= 0xFE                                 # last 7 bits: anycast ID 0x7e
    if n == 64:
        dst[8] &= 0xFD                              # EUI-64: universal/local bit 0
    ident = _dhaad[0] = (now & 0x7FFF) | 1
    icmp = bytearray(struct.pack(">BBHHH", 144, 0, 0, ident, 0))
    struct.pack_into(">H", icmp, 2, checksum6(coa, dst, 58, icmp))
    node.log("dhaad", ident=ident, to=addr_text(dst))
    return tr.send_raw(ipv6_packet(coa, bytes(dst), 58, icmp)) if hasattr(tr, "send_raw") else False


def dhaad_in(node, pkt, now):
    """A DHAAD Reply on the link: the HAs it lists become the node's list; register with the first."""
    n = len(pkt)
    plen = 40 + ((pkt[4] << 8) | pkt[5])
    if (not _dhaad[0] or plen > n or plen < 56 or (plen - 48) % 16 or pkt[41] != 0
            or ((pkt[44] << 8) | pkt[45]) != _dhaad[0]
            or checksum6(bytes(pkt[8:24]), bytes(pkt[24:40]), 58, pkt[40:plen]) != 0):
        IGNORED[0] += 1
        return
    _dhaad[0] = 0
    has = [(bytes(pkt[i:i + 16]), None) for i in range(48, plen, 16)]
    node.cfg.has = has
    node.log("dhaad", has=[addr_text(h) for h, _ in has])
    for h, _ in has:
        if h != node.reg.ha:
            go(node, h, now, "dhaad")
            return

