"""The MN's side of Binding Revocation (RFC 5846, MH 16; docs/PROTOCOL-NOTES.md §5, §12.1): the HA
revokes our binding (an operator's RADIUS Disconnect-Request), we acknowledge and stop using it.

Loaded only when a Mobility Header of type 16 arrives (node/mherror.py on the tunnel, node/ip6.py
on the access link): a node that is never revoked pays nothing for this module.

Rules:
- A Binding Revocation Indication counts only when it is authenticated like a BA: from the HA's
  address, B.R. Type 1, P and G flags clear (they are for proxy/global revocation), an MN-ID
  option with our NAI, and the MN-HA option (our SPI) last, ending the message, its MAC =
  HMAC-SHA1(key, CoA | HoA | MH up to the authenticator, checksum 0) with the CoA of our current
  attempt (IPv4-mapped for udp4), exactly as the HA signs it (once revoked: the CoA it revoked,
  whatever movement reported since; a BRI crossing a move is ignored, the HA's next BU answer
  tells the MN instead). With timestamps on (config
  "timestamps"), it must carry a Replay Protection option within _WINDOW_S of our RFC 4285 clock
  and newer than the last one accepted: a recorded BRI cannot be replayed later.
- Under IPsec (`"security": "ipsec"`, core/ipsecreg.py: `reg.esp`) the BRI comes out of the
  CHILD_SA, which authenticated it and whose replay window refuses a repeat (RFC 4877): it carries
  no MN-HA option (an MN-ID option, if any, must be our NAI); the BRA has none either and leaves
  sealed in the CHILD_SA (`node.ipsec.send_mh`).
- Anything else with MH type 16 is ignored and counted (`ignored`, and the registration's
  `rejected`); the node logs "bri_ignored" at most once a minute (a flood costs no log lines).
- Accepted: the home registration goes to its REVOKED state (core/bul.py): no BU leaves, every
  input is ignored (and counted) until the hold-down `hold_ms` (1 hour) ends; then one new
  first registration starts, on its normal back-off. A restart (a new config, e.g.) starts afresh.
  The answer is a Binding Revocation Acknowledgement (B.R. Type 2, status 0 success, the BRI's
  sequence number), with MN-ID, the BRI's timestamp echoed, and our MN-HA option, signed the same
  way; an HA that repeats its BRI (our BRA was lost) gets the BRA again, the hold-down unchanged.
"""
import struct

from roam6.compat import const
from roam6.crypto import mnha_auth_data
from roam6.wire.binding import ipv6_packet, mac_coa, options, pad
from roam6.wire.checksum import checksum6

_S_REVOKED = const(6)          # core/bul.py's state
_WINDOW_S = const(60)          # a BRI's timestamp against our clock (the HA sets it when it sends)
_LOG_EVERY_MS = const(60000)

hold_ms = 3600000              # how long a revoked node keeps silent (tests may shorten it)
ignored = [0]                  # BRIs ignored since start
_last = [0, None, None]        # [timestamp of the last BRI accepted, when "bri_ignored" was logged,
                               #  the care-of address the HA revoked (its repeated BRIs name it)]

TRIGGERS = {0: "unspecified", 1: "administrative", 5: "user-initiated termination",
            6: "access network termination", 7: "possible out-of-sync BCE state"}


def receive_bri(reg, raw, src, now):
    """Sans-IO: raw = a Mobility Header of type 16 (length and checksum already checked by
    Registration.receive_mh), src = its source. Returns (BRA Mobility Header bytes, trigger, new)
    when it is an authentic BRI for us (new: False when we were revoked already), else None (the
    caller counts it)."""
    n = len(raw)
    if n < 16 or raw[2] != 16 or raw[6] != 1 or raw[10] & 0xA0 or bytes(src) != reg.ha:
        return None
    opts = options(raw, 12, n)
    coa = _last[2] if reg.state == _S_REVOKED else reg.coa
    if opts is None or coa is None or coa == reg.hoa:
        return None
    esp = getattr(reg, "esp", False)   # out of the CHILD_SA (core/ipsecreg.py): the SA authenticated it
    nai = ts = None
    auth = -1
    for t, s, e in opts:
        if t == 8 and e - s >= 1 and raw[s] == 1:
            nai = bytes(raw[s + 1:e])
        elif t == 10 and e - s == 8:
            ts = struct.unpack_from(">Q", raw, s)[0]
        elif t == 9 and e - s == 17 and raw[s] == 1 and e == n:
            if struct.unpack_from(">I", raw, s + 1)[0] == reg.spi:
                auth = s - 2
    if esp:                            # RFC 4877: no MN-HA option; an MN-ID, if any, is ours
        if nai is not None and nai != reg.nai:
            return None
    elif nai != reg.nai or auth < 0:
        return None
    else:
        prefix = bytearray(raw[:auth + 7])
        prefix[4] = prefix[5] = 0
        if mnha_auth_data(reg.key, mac_coa(coa), reg.hoa, prefix) != bytes(raw[auth + 7:n]):
            return None
    if reg.last_ts is not None:        # replay protection on: a fresh timestamp, never one again
        if ts is None or ts <= _last[0]:
            return None
        mine = ((now + reg.ntp_offset_ms) // 1000) & 0xFFFFFFFF
        d = ((ts >> 32) - mine) & 0xFFFFFFFF
        if _WINDOW_S < d < 0x100000000 - _WINDOW_S:
            return None
        _last[0] = ts
    new = reg.state != _S_REVOKED
    if new:
        _last[2] = coa
        reg.state = _S_REVOKED
        reg.retransmit_at = now + hold_ms      # the one timer: REVOKED | TIMEOUT -> a new registration
        reg.refresh_at = reg.expire_at = None
        reg.sent = []
        reg.first_reg = True
        reg._moved_since_bound = True
    return encode_bra(reg, coa, raw[8:10], ts), raw[7], new


def encode_bra(reg, coa, seq2, ts):
    """The BRA's Mobility Header, checksummed for HoA -> HA: status 0, the BRI's sequence
    number (2 bytes), MN-ID, [the BRI's timestamp], MN-HA option last (the BU's layout rules)."""
    out = bytearray(12)
    out[0] = 59
    out[2] = 16
    out[6] = 2
    out[8:10] = seq2
    nai = reg.nai
    out.append(8)
    out.append(1 + len(nai))
    out.append(1)
    out.extend(nai)
    if ts is not None:
        pad(out, (2 - len(out)) % 8)
        out.append(10)
        out.append(8)
        out.extend(struct.pack(">Q", ts))
    if getattr(reg, "esp", False):    # sealed in the CHILD_SA (RFC 4877): no MN-HA option
        pad(out, -len(out) % 8)
        out[1] = len(out) // 8 - 1
    else:
        pad(out, (5 - len(out)) % 8)
        out.append(9)
        out.append(17)
        out.append(1)
        out.extend(struct.pack(">I", reg.spi))
        out[1] = (len(out) + 12) // 8 - 1
        out.extend(mnha_auth_data(reg.key, mac_coa(coa), reg.hoa, out))
    struct.pack_into(">H", out, 4, checksum6(reg.hoa, reg.ha, 135, out))
    return out


def node_bri(node, raw, src, now):
    """The driver's glue: answer an authentic BRI with a BRA on the node's path to the HA and log
    "revoked" (once per revocation); count and (rate-limited) log anything else."""
    reg = node.reg
    got = receive_bri(reg, raw, src, now)
    if got is None:
        ignored[0] += 1
        reg.rejected += 1
        if _last[1] is None or now - _last[1] >= _LOG_EVERY_MS:
            _last[1] = now
            node.log("bri_ignored", count=ignored[0],
                     reason="a Binding Revocation Indication that is not authentic (or not for us)")
        return False
    mh, trigger, new = got
    tr = node.uplink.active
    if getattr(reg, "esp", False):     # under IPsec the BRA leaves sealed (node/ipsecglue.py)
        node.ipsec.send_mh(mh)
    elif tr is not None:
        if reg.transport == "ip6":
            tr.send_mh(ipv6_packet(bytes(reg.coa), reg.ha, 135, mh, hao=reg.hoa))
        else:
            tr.send_mh(ipv6_packet(reg.hoa, reg.ha, 135, mh))
    if new:
        node.log("revoked", trigger=trigger, reason=TRIGGERS.get(trigger, "trigger %d" % trigger),
                 hold_s=hold_ms // 1000)
    return True
