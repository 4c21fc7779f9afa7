"""IKEv2 initiator (RFC 7296), sans-IO: IKE_SA_INIT + IKE_AUTH with a pre-shared key and one CHILD_SA.

What it offers (one proposal each, what an MCU affords and strongSwan accepts):
  IKE SA:    ENCR_AES_CBC-128 (12), PRF_HMAC_SHA1 (2) or PRF_HMAC_SHA2_256 (5),
             AUTH_HMAC_SHA1_96 (2) or AUTH_HMAC_SHA2_256_128 (12), DH group 31 (Curve25519)
  CHILD_SA:  ESP, ENCR_AES_CBC-128, the same INTEG, no ESN (with `esp_gcm`: ENCR_AES_GCM_16-128,
             no INTEG, RFC 4106, roam6.ipsec.gcm loaded only then); tunnel mode, or transport mode
             (N(USE_TRANSPORT_MODE), RFC 7296 §1.3.1) for the MH selector of RFC 4877
IDi is the NAI as ID_RFC822_ADDR (3); AUTH is method 2 (Shared Key MIC, §2.15). With `natt`
(the default) every IKE message goes to and from UDP 4500 with the 4-byte non-ESP marker
(RFC 3948 §2.2), from the first one: the udp4 path is behind NAT anyway, and strongSwan's
userspace ESP (kernel-libipsec) always encapsulates; NAT-D notifies are sent (§2.23).

Contract (docs/ARCHITECTURE.md "Sans-IO core"; `now` int ms, last):
  ike = Initiator(psk, nai, local, remote, ts_i, ts_r, now)   local/remote: (ip bytes, port)
  ike.datagrams_to_send(now) -> [(udp_payload, (ip bytes, port))]
  ike.receive(udp_payload, now)    an IKE datagram (with its marker under natt); anything else,
                                   malformed or unexpected, is dropped and counted in `dropped`
  ike.get_timer() / ike.handle_timer(now)   retransmission: retrans_ms, doubling, `tries` sends
  ike.next_event()
Events (kind first):
  ("ike_up", handshake_ms)                      IKE SA authenticated (ms since the first request)
  ("hoa", address, prefix_len)                  with request_hoa (True, or address + prefix length
                                                as 17 bytes to propose): the address the responder assigned
                                                (CP(CFG_REPLY) INTERNAL_IP6_ADDRESS, §3.15.1; RFC 4877 §4.4)
  ("child_up", spi_in, spi_out, transport)      ESP SAs ready: `esp_in`, `esp_out` (roam6.ipsec.esp.SA)
  ("child_failed", notify_type)                 IKE SA up, CHILD_SA refused (NO_PROPOSAL_CHOSEN...)
  ("failed", reason, notify_type)               reason: "timeout", "notify", "auth", "proposal", "ke"
  ("retransmit", message_id, send_count)
  ("deleted",)                                  the peer deleted the IKE SA (INFORMATIONAL)
  ("alive", rtt_ms)                             a liveness check (empty INFORMATIONAL, §1.4) answered
  ("child_rekeyed", spi_in, spi_out)            CREATE_CHILD_SA (§1.3.3) done, the old SAs deleted
  ("data_up", spi_in, spi_out)                  create_child's tunnel-mode SAs ready: `data_in`, `data_out`
Verbs once up (each sends one request; one request at a time, else ignored and counted):
  check_liveness(now)   also sent by itself every `liveness_ms` when set; no answer after the
                        retransmissions -> ("failed", "timeout", 0): the MN re-runs the handshake
  delete_ike(now)       a Delete of the IKE SA, sent once (the old SA after a re-authentication)
  rekey_child(now)      new ESP SAs (new nonces, no PFS), then a Delete of the old ones; the old
                        inbound SA keeps opening packets until the peer confirms the Delete
Keys: SKEYSEED and SK_* per §2.14, the CHILD_SA's KEYMAT per §2.17 (attributes `sk`, `keymat`
kept for tests and for tshark's decryption tables). Layouts: docs/PROTOCOL-NOTES.md §9.
"""
import os

from roam6.ipsec import esp, x25519
from roam6.compat import const
from roam6.ipsec.prims import INTEGS, PRFS, aes_cbc, ct_equal, prf_plus
from roam6.wire.errors import DecodeError

# exchange types, payload types, notify types (RFC 7296 §3). `_X = const(N)`: folded by mpy-cross,
# no name interned on the MN (a qstr each); the public names (PL_SA...) for host tools and tests
# are in roam6.ipsec.ikenames, reached as ikev2.PL_SA through __getattr__ below (same values).
_IKE_SA_INIT = const(34)
_IKE_AUTH = const(35)
_CREATE_CHILD_SA = const(36)
_INFORMATIONAL = const(37)
_PL_SA = const(33)
_PL_KE = const(34)
_PL_IDI = const(35)
_PL_IDR = const(36)
_PL_AUTH = const(39)
_PL_NONCE = const(40)
_PL_NOTIFY = const(41)
_PL_DELETE = const(42)
_PL_TSI = const(44)
_PL_TSR = const(45)
_PL_SK = const(46)
_PL_CP = const(47)
_CFG_REQUEST = const(1)
_CFG_REPLY = const(2)
_INTERNAL_IP6_ADDRESS = const(8)
_KNOWN = const((33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48))
_N_INVALID_SYNTAX = const(7)
_N_NO_PROPOSAL_CHOSEN = const(14)
_N_INVALID_KE = const(17)
_N_AUTH_FAILED = const(24)
_N_TS_UNACCEPTABLE = const(38)
_N_NAT_D_SRC = const(16388)
_N_NAT_D_DST = const(16389)
_N_COOKIE = const(16390)
_N_USE_TRANSPORT_MODE = const(16391)
_N_REKEY_SA = const(16393)
_F_I = const(0x08)
_F_R = const(0x20)
_GROUP_CURVE25519 = const(31)
_ID_RFC822_ADDR = const(3)
_ID_FQDN = const(2)
_AUTH_PSK = const(2)
_TS_IPV4 = const(7)
_TS_IPV6 = const(8)
_ENCR_AES_CBC = const(12)        # roam6.ipsec.prims.ENCR_AES_CBC
_ENCR_AES_GCM_16 = const(20)     # ESP only (RFC 4106, roam6.ipsec.gcm)
MARKER = b"\x00\x00\x00\x00"
_KEY_PAD = const(b"Key Pad for IKEv2")
_MAX_DATAGRAM = const(3000)

# states
_IDLE = const(0)
_INIT_SENT = const(1)
_AUTH_SENT = const(2)
_UP = const(3)
_FAILED = const(4)


def __getattr__(name):
    """ikev2.PL_SA etc. (host tools, tests): the public names live in roam6.ipsec.ikenames."""
    from roam6.ipsec import ikenames
    return getattr(ikenames, name)


def ts_range(start, end, proto=0, sport=0, eport=65535):
    """A traffic selector (§3.13.1): addresses as bytes (4 or 16 each), proto 0 = any."""
    return (_TS_IPV6 if len(start) == 16 else _TS_IPV4, proto, sport, eport, bytes(start), bytes(end))


def ts_host(addr, proto=0):
    return ts_range(addr, addr, proto)


def ts_payload(tss):
    out = bytearray((len(tss), 0, 0, 0))
    for t, proto, sp, ep, a, b in tss:
        out += bytes((t, proto)) + (8 + 2 * len(a)).to_bytes(2, "big")
        out += sp.to_bytes(2, "big") + ep.to_bytes(2, "big") + a + b
    return bytes(out)


def parse_ts(body):
    if len(body) < 4:
        raise DecodeError(0, "TS payload short")
    n, off, out = body[0], 4, []
    for _ in range(n):
        if off + 8 > len(body):
            raise DecodeError(off, "TS truncated")
        t, proto = body[off], body[off + 1]
        ln = int.from_bytes(body[off + 2:off + 4], "big")
        alen = 4 if t == _TS_IPV4 else 16 if t == _TS_IPV6 else 0
        if not alen or ln != 8 + 2 * alen or off + ln > len(body):
            raise DecodeError(off, "TS entry length")
        sp = int.from_bytes(body[off + 4:off + 6], "big")
        ep = int.from_bytes(body[off + 6:off + 8], "big")
        a = bytes(body[off + 8:off + 8 + alen])
        out.append((t, proto, sp, ep, a, bytes(body[off + 8 + alen:off + ln])))
        off += ln
    return out


def _transforms(items):
    out = bytearray()
    for i, (ttype, tid, attr) in enumerate(items):
        body = bytes((ttype, 0)) + tid.to_bytes(2, "big") + attr
        out += bytes((0 if i == len(items) - 1 else 3, 0)) + (len(body) + 4).to_bytes(2, "big") + body
    return out


def sa_payload(proto, spi, items):
    """One proposal (number 1): proto 1 = IKE, 3 = ESP; items (type, id, attribute bytes)."""
    body = bytes((1, proto, len(spi), len(items))) + spi + _transforms(items)
    return bytes((0, 0)) + (len(body) + 4).to_bytes(2, "big") + body


def parse_cp_ip6(body):
    """The first INTERNAL_IP6_ADDRESS (address, prefix length) of a CP(CFG_REPLY), or None."""
    if len(body) < 4 or body[0] != _CFG_REPLY:
        raise DecodeError(0, "CP: not a reply")
    off = 4
    while off + 4 <= len(body):
        atype = int.from_bytes(body[off:off + 2], "big") & 0x7FFF
        alen = int.from_bytes(body[off + 2:off + 4], "big")
        if off + 4 + alen > len(body):
            raise DecodeError(off, "CP attribute length")
        if atype == _INTERNAL_IP6_ADDRESS and alen == 17:
            return bytes(body[off + 4:off + 20]), body[off + 20]
        off += 4 + alen
    return None


def parse_sa(body):
    """The chosen proposal of a response: (proto, spi, [(type, id, attr)]); exactly one expected."""
    if len(body) < 8:
        raise DecodeError(0, "SA payload short")
    plen = int.from_bytes(body[2:4], "big")
    if body[0] != 0 or plen != len(body) or plen < 8:
        raise DecodeError(0, "SA: one proposal expected")
    proto, spisz, n = body[5], body[6], body[7]
    off = 8 + spisz
    if off > plen:
        raise DecodeError(6, "SA: SPI size")
    spi, items = bytes(body[8:off]), []
    for i in range(n):
        if off + 8 > plen:
            raise DecodeError(off, "transform truncated")
        tl = int.from_bytes(body[off + 2:off + 4], "big")
        if tl < 8 or off + tl > plen or body[off] != (0 if i == n - 1 else 3):
            raise DecodeError(off, "transform length")
        items.append((body[off + 4], int.from_bytes(body[off + 6:off + 8], "big"), bytes(body[off + 8:off + tl])))
        off += tl
    if off != plen:
        raise DecodeError(off, "proposal length")
    return proto, spi, items


def parse_chain(buf, off, end, first):
    """Generic payload headers from off to end: [(type, body)]; SK (46) must be last and its body
    runs to the end. An unknown payload with the critical bit refuses the message (§2.5)."""
    out, nxt = [], first
    while nxt:
        if off + 4 > end:
            raise DecodeError(off, "payload header truncated")
        plen = int.from_bytes(buf[off + 2:off + 4], "big")
        if plen < 4 or off + plen > end:
            raise DecodeError(off, "payload length")
        if nxt not in _KNOWN and buf[off + 1] & 0x80:
            raise DecodeError(off, "unsupported critical payload %d" % nxt)
        out.append((nxt, buf[off], buf[off + 4:off + plen]))
        if nxt == _PL_SK:
            if off + plen != end:
                raise DecodeError(off, "SK not last")
            break
        nxt = buf[off]
        off += plen
    if off != end and (not out or out[-1][0] != _PL_SK):
        raise DecodeError(off, "trailing bytes")
    return out


def chain(payloads):
    """[(type, body)] -> bytes with each generic header's Next Payload set."""
    out = bytearray()
    for i, (_, body) in enumerate(payloads):
        nxt = payloads[i + 1][0] if i + 1 < len(payloads) else 0
        out += bytes((nxt, 0)) + (len(body) + 4).to_bytes(2, "big") + body
    return bytes(out)


def notify(ntype, data=b"", proto=0, spi=b""):
    return bytes((proto, len(spi))) + ntype.to_bytes(2, "big") + spi + data


def _sha1(*parts):
    import hashlib
    h = hashlib.sha1()
    for p in parts:
        h.update(p)
    return h.digest()


def esp_pair(prf, sk_d, nonces, encr, integ, spi_ir, spi_ri, rng):
    """A CHILD_SA's two ESP SAs from KEYMAT = prf+(SK_d, Ni | Nr) (§2.17: the initiator->responder
    keys first): (SA i->r, SA r->i, KEYMAT). AES-GCM: 16-byte key + 4-byte salt each (RFC 4106 §8.1)."""
    if encr == _ENCR_AES_GCM_16:
        from roam6.ipsec.gcm import GcmSA
        km = prf_plus(prf, sk_d, nonces, 40)
        return GcmSA(spi_ir, km[:20], rng), GcmSA(spi_ri, km[20:], rng), km
    ilen = INTEGS[integ][1]
    km = prf_plus(prf, sk_d, nonces, 2 * (16 + ilen))
    return (esp.SA(spi_ir, km[:16], km[16:16 + ilen], integ, rng),
            esp.SA(spi_ri, km[16 + ilen:32 + ilen], km[32 + ilen:], integ, rng), km)


class Initiator:
    def __init__(self, psk, nai, local, remote, ts_i, ts_r, now, idr=None, prf=2, integ=2,
                 transport=False, natt=True, rng=os.urandom, retrans_ms=500, tries=6, request_hoa=False,
                 liveness_ms=None, esp_gcm=False, pfs=False):
        if prf not in PRFS or integ not in INTEGS:
            raise ValueError("unsupported PRF/INTEG")
        self.psk = bytes(psk)
        self.idi = bytes((_ID_RFC822_ADDR, 0, 0, 0)) + nai.encode()
        self.idr = idr
        self.local, self.remote = local, remote
        self.ts_i, self.ts_r = list(ts_i), list(ts_r)
        self.prf_id, self.integ_id = prf, integ
        self.transport, self.natt = transport, natt
        self.esp_encr = _ENCR_AES_GCM_16 if esp_gcm else _ENCR_AES_CBC    # ESP: AES-GCM (RFC 4106) or CBC
        self.pfs = pfs            # CHILD_SA rekeys with a KE (X25519): new keys not derived from SK_d alone
        self.request_hoa = request_hoa
        self.liveness_ms = liveness_ms
        self._live_at = None
        self._pending = None      # the kind of request awaiting its response
        self._sent_at = 0
        self.esp_in_old = None
        self.hoa = None
        self.rng = rng
        self.retrans_ms, self.tries = retrans_ms, tries
        self.state = _IDLE
        self.dropped = self.ignored = 0
        self._events = []
        self._out = []
        self._req = None          # the current request (bytes, no marker), its msg id, sends, deadline
        self._msgid = 0
        self._deadline = None
        self._sends = 0
        self.spi_i = b"\x00" * 8
        while self.spi_i == b"\x00" * 8:
            self.spi_i = rng(8)
        self.spi_r = bytes(8)
        self.ni = rng(32)
        self._priv = rng(32)
        self._cookie = None
        self.esp_in = self.esp_out = None
        self.data_in = self.data_out = None     # create_child's (the payload tunnel)
        self.sk = None
        self.keymat = None
        self.t0 = now
        self._start(now)

    # -- output --------------------------------------------------------------------------
    def datagrams_to_send(self, now):
        out, self._out = self._out, []
        return out

    def _emit(self, msg):
        self._out.append(((MARKER + msg) if self.natt else msg, self.remote))

    def _request(self, msg, now, kind=None):
        self._pending = kind
        self._sent_at = now
        self._req = msg
        self._sends = 1
        self._deadline = now + self.retrans_ms
        self._emit(msg)

    def get_timer(self):
        if self._live_at is not None and (self._deadline is None or self._live_at < self._deadline):
            return self._live_at
        return self._deadline

    def handle_timer(self, now):
        if self._live_at is not None and now >= self._live_at and self._pending is None:
            self._live_at = None
            self.check_liveness(now)
            return
        if self._deadline is None or now < self._deadline:
            return
        if self._sends >= self.tries:
            self._deadline = None
            self._fail("timeout", 0)
            return
        self._sends += 1
        self._deadline = now + (self.retrans_ms << (self._sends - 1))
        self._events.append(("retransmit", self._msgid, self._sends))
        self._emit(self._req)

    def next_event(self):
        return self._events.pop(0) if self._events else None

    def _fail(self, reason, ntype):
        self.state = _FAILED
        self._deadline = self._live_at = self._pending = None
        self._events.append(("failed", reason, ntype))

    # -- messages ------------------------------------------------------------------------
    def _header(self, first, xchg, flags, msgid, length):
        return (self.spi_i + self.spi_r + bytes((first, 0x20, xchg, flags)) + msgid.to_bytes(4, "big")
                + length.to_bytes(4, "big"))

    def _nat_d(self, addr):
        ip, port = addr
        return _sha1(self.spi_i, self.spi_r, ip, port.to_bytes(2, "big"))

    def _start(self, now):
        ike = [(1, _ENCR_AES_CBC, b"\x80\x0e\x00\x80"), (2, self.prf_id, b""), (3, self.integ_id, b""),
               (4, _GROUP_CURVE25519, b"")]
        pls = []
        if self._cookie:
            pls.append((_PL_NOTIFY, notify(_N_COOKIE, self._cookie)))
        pls += [(_PL_SA, sa_payload(1, b"", ike)),
                (_PL_KE, _GROUP_CURVE25519.to_bytes(2, "big") + b"\x00\x00" + x25519.public_key(self._priv)),
                (_PL_NONCE, self.ni),
                (_PL_NOTIFY, notify(_N_NAT_D_SRC, self._nat_d(self.local))),
                (_PL_NOTIFY, notify(_N_NAT_D_DST, self._nat_d(self.remote)))]
        body = chain(pls)
        self.msg1 = self._header(pls[0][0], _IKE_SA_INIT, _F_I, 0, 28 + len(body)) + body
        self.state = _INIT_SENT
        self._msgid = 0
        self._request(self.msg1, now)

    def _encrypted(self, payloads, xchg, flags, msgid):
        """HDR, SK{payloads} with SK_ei/SK_ai (§3.14)."""
        inner = chain(payloads) if payloads else b""
        pad = 15 - len(inner) % 16
        plain = inner + bytes(pad) + bytes((pad,))
        iv = self.rng(16)
        ct = aes_cbc(self.sk["ei"], iv, plain, True)
        fn, _, icv = INTEGS[self.integ_id]
        sk_len = 4 + 16 + len(ct) + icv
        msg = (self._header(_PL_SK, xchg, flags, msgid, 28 + sk_len)
               + bytes((payloads[0][0] if payloads else 0, 0)) + sk_len.to_bytes(2, "big") + iv + ct)
        return msg + fn(self.sk["ai"], msg)[:icv]

    def _decrypt(self, msg, pls):
        """The inner payloads of a response's SK, or None (bad ICV / padding: dropped)."""
        if not pls or pls[-1][0] != _PL_SK:
            return None
        first, body = pls[-1][1], pls[-1][2]
        fn, _, icv = INTEGS[self.integ_id]
        if len(body) < 16 + 16 + icv or (len(body) - 16 - icv) % 16:
            return None
        if not ct_equal(fn(self.sk["ar"], msg[:len(msg) - icv])[:icv], msg[len(msg) - icv:]):
            return None
        plain = aes_cbc(self.sk["er"], body[:16], body[16:len(body) - icv], False)
        pad = plain[-1]
        if pad + 1 > len(plain):
            return None
        return parse_chain(plain, 0, len(plain) - 1 - pad, first)

    # -- input ---------------------------------------------------------------------------
    def receive(self, data, now):
        try:
            self._receive(bytes(data), now)
        except (DecodeError, ValueError, IndexError, KeyError):
            self.dropped += 1

    def _receive(self, data, now):
        if self.natt:
            if data[:4] != MARKER:
                self.ignored += 1      # ESP (or garbage): the driver hands ESP to esp_in
                return
            data = data[4:]
        if len(data) < 28 or len(data) > _MAX_DATAGRAM:
            raise DecodeError(0, "IKE datagram length")
        if data[:8] != self.spi_i or data[17] >> 4 != 2 or int.from_bytes(data[24:28], "big") != len(data):
            raise DecodeError(0, "IKE header: bad")
        xchg, flags = data[18], data[19]
        msgid = int.from_bytes(data[20:24], "big")
        pls = parse_chain(data, 28, len(data), data[16])
        if flags & _F_R:
            if self.state not in (_INIT_SENT, _AUTH_SENT, _UP) or msgid != self._msgid or flags & _F_I:
                self.ignored += 1
                return
            if self.state == _UP:
                if self._pending is None or data[8:16] != self.spi_r:
                    self.ignored += 1
                else:
                    self._up_response(data, pls, xchg, now)
            elif self.state == _INIT_SENT and xchg == _IKE_SA_INIT:
                self._init_response(data, pls, now)
            elif self.state == _AUTH_SENT and xchg == _IKE_AUTH and data[8:16] == self.spi_r:
                self._auth_response(data, pls, now)
            else:
                self.ignored += 1
        elif self.state == _UP and data[8:16] == self.spi_r and not flags & _F_I:
            self._peer_request(data, pls, xchg, msgid)
        else:
            self.ignored += 1

    def _notifies(self, pls):
        out = {}
        for t, _, body in pls:
            if t == _PL_NOTIFY:
                if len(body) < 4 or 4 + body[1] > len(body):
                    raise DecodeError(0, "notify")
                out[int.from_bytes(body[2:4], "big")] = bytes(body[4 + body[1]:])
        return out

    def _init_response(self, msg, pls, now):
        ns = self._notifies(pls)
        if _N_COOKIE in ns and self._cookie is None:
            self._cookie = ns[_N_COOKIE]
            self._start(now)
            return
        for nt in ns:
            if nt < 16384:
                self._fail("ke" if nt == _N_INVALID_KE else "notify", nt)
                return
        got = {t: b for t, _, b in pls}
        if _PL_SA not in got or _PL_KE not in got or _PL_NONCE not in got or msg[8:16] == bytes(8):
            raise DecodeError(0, "IKE_SA_INIT response incomplete")
        proto, spi, items = parse_sa(got[_PL_SA])
        want = {(1, _ENCR_AES_CBC), (2, self.prf_id), (3, self.integ_id), (4, _GROUP_CURVE25519)}
        if proto != 1 or spi or {(t, i) for t, i, _ in items} != want:
            self._fail("proposal", 0)
            return
        ke, nr = got[_PL_KE], bytes(got[_PL_NONCE])
        if len(ke) != 36 or int.from_bytes(ke[:2], "big") != _GROUP_CURVE25519 or not 16 <= len(nr) <= 256:
            raise DecodeError(0, "KE or Nonce missing")
        shared = x25519.x25519(self._priv, bytes(ke[4:]))
        if shared == bytes(32):
            self._fail("ke", 0)
            return
        self.spi_r = bytes(msg[8:16])
        self.nr = nr
        self.msg2 = msg
        if _N_NAT_D_SRC in ns:
            self.nat = ns[_N_NAT_D_SRC] != self._nat_d(self.remote) or ns.get(_N_NAT_D_DST) != self._nat_d(self.local)
        prf, plen = PRFS[self.prf_id]
        _, ilen, _ = INTEGS[self.integ_id]
        skeyseed = prf(self.ni + nr, shared)
        km = prf_plus(prf, skeyseed, self.ni + nr + self.spi_i + self.spi_r, 3 * plen + 2 * ilen + 32)
        sk, off = {}, 0
        for name, n in (("d", plen), ("ai", ilen), ("ar", ilen), ("ei", 16), ("er", 16), ("pi", plen), ("pr", plen)):
            sk[name] = km[off:off + n]
            off += n
        self.sk = sk
        self._send_auth(now)

    def _send_auth(self, now):
        prf = PRFS[self.prf_id][0]
        auth = prf(prf(self.psk, _KEY_PAD), self.msg1 + self.nr + prf(self.sk["pi"], self.idi))
        self.spi_esp = self.rng(4)
        while self.spi_esp[0] == 0:     # SPIs 0-255 are reserved (RFC 4303 §2.1)
            self.spi_esp = self.rng(4)
        esp = self._esp_items()
        pls = [(_PL_IDI, self.idi)]
        if self.idr:
            pls.append((_PL_IDR, bytes((_ID_FQDN, 0, 0, 0)) + self.idr.encode()))
        pls.append((_PL_AUTH, bytes((_AUTH_PSK, 0, 0, 0)) + auth))
        if self.request_hoa:    # CP(CFG_REQUEST) asking for an INTERNAL_IP6_ADDRESS: empty, or the
            # configured address + prefix length (17 bytes) the responder may confirm (§3.15.1)
            v = self.request_hoa if isinstance(self.request_hoa, bytes) else b""
            pls.append((_PL_CP, bytes((_CFG_REQUEST, 0, 0, 0)) + _INTERNAL_IP6_ADDRESS.to_bytes(2, "big")
                        + len(v).to_bytes(2, "big") + v))
        if self.transport:
            pls.append((_PL_NOTIFY, notify(_N_USE_TRANSPORT_MODE)))
        pls += [(_PL_SA, sa_payload(3, self.spi_esp, esp)), (_PL_TSI, ts_payload(self.ts_i)),
                (_PL_TSR, ts_payload(self.ts_r))]
        self._msgid = 1
        self.state = _AUTH_SENT
        self._request(self._encrypted(pls, _IKE_AUTH, _F_I, 1), now)

    def _auth_response(self, msg, pls, now):
        inner = self._decrypt(msg, pls)
        if inner is None:
            self.dropped += 1
            return
        self._deadline = None
        ns = self._notifies(inner)
        got = {t: b for t, _, b in inner}
        if _PL_AUTH not in got or _PL_IDR not in got:
            nt = min(ns) if ns else 0
            self._fail("auth" if nt == _N_AUTH_FAILED else "notify", nt)
            return
        prf = PRFS[self.prf_id][0]
        a = got[_PL_AUTH]
        want = prf(prf(self.psk, _KEY_PAD), self.msg2 + self.ni + prf(self.sk["pr"], bytes(got[_PL_IDR])))
        if len(a) < 4 or a[0] != _AUTH_PSK or not ct_equal(bytes(a[4:]), want):
            self._fail("auth", _N_AUTH_FAILED)
            return
        self.state = _UP
        self._msgid = 2
        self._pending = None
        self.msg1 = self.msg2 = self._priv = None     # the handshake's, not needed once up (heap)
        self._schedule_liveness(now)
        self._events.append(("ike_up", now - self.t0))
        errs = [nt for nt in ns if nt < 16384]
        if _PL_SA not in got or errs:
            self._events.append(("child_failed", min(errs) if errs else 0))
            return
        proto, spi, items = parse_sa(got[_PL_SA])
        want = {(t, i) for t, i, _ in self._esp_items()}
        if proto != 3 or len(spi) != 4 or {(t, i) for t, i, _ in items} != want:
            self._events.append(("child_failed", _N_NO_PROPOSAL_CHOSEN))
            return
        if self.request_hoa and _PL_CP in got:
            self.hoa = parse_cp_ip6(got[_PL_CP])
            if self.hoa:
                self._events.append(("hoa", self.hoa[0], self.hoa[1]))
        self.ts_i_got = parse_ts(got[_PL_TSI]) if _PL_TSI in got else []
        self.ts_r_got = parse_ts(got[_PL_TSR]) if _PL_TSR in got else []
        transport = _N_USE_TRANSPORT_MODE in ns
        out_spi, in_spi = int.from_bytes(spi, "big"), int.from_bytes(self.spi_esp, "big")
        self.esp_out, self.esp_in, self.keymat = self._pair(self.ni + self.nr, out_spi, in_spi)
        self._events.append(("child_up", in_spi, out_spi, transport))

    # -- once up: liveness and CHILD_SA rekeying ------------------------------------------
    def _esp_items(self):
        if self.esp_encr == _ENCR_AES_GCM_16:          # AEAD: no INTEG transform (RFC 5282 §8)
            return [(1, _ENCR_AES_GCM_16, b"\x80\x0e\x00\x80"), (5, 0, b"")]
        return [(1, _ENCR_AES_CBC, b"\x80\x0e\x00\x80"), (3, self.integ_id, b""), (5, 0, b"")]

    def _pair(self, nonces, out_spi, in_spi):
        return esp_pair(PRFS[self.prf_id][0], self.sk["d"], nonces, self.esp_encr, self.integ_id, out_spi, in_spi,
                        self.rng)

    def _new_spi(self):
        spi = self.rng(4)
        while spi[0] == 0:      # SPIs 0-255 are reserved (RFC 4303 §2.1)
            spi = self.rng(4)
        return spi

    def _schedule_liveness(self, now):
        self._live_at = now + self.liveness_ms if self.liveness_ms else None

    def check_liveness(self, now):
        if self.state != _UP or self._pending is not None:
            self.ignored += 1
            return
        self._live_at = None
        self._request(self._encrypted([], _INFORMATIONAL, _F_I, self._msgid), now, "info")

    def create_child(self, ts_i, ts_r, now):
        """Another CHILD_SA of this IKE SA (§1.3.1, no KE): tunnel mode, e.g. the payload tunnel of
        RFC 4877 (TSi = the HoA, TSr = ::/0, protocol any). Its SAs: `data_in`, `data_out`; event
        ("data_up", spi_in, spi_out), or ("child_failed", notify_type)."""
        if self.state != _UP or self._pending is not None:
            self.ignored += 1
            return
        self._live_at = None
        self._rekey_ni = self.rng(32)
        self._rekey_spi = self._new_spi()
        pls = [(_PL_SA, sa_payload(3, self._rekey_spi, self._esp_items())), (_PL_NONCE, self._rekey_ni),
               (_PL_TSI, ts_payload(ts_i)), (_PL_TSR, ts_payload(ts_r))]
        self._request(self._encrypted(pls, _CREATE_CHILD_SA, _F_I, self._msgid), now, "child")

    def delete_ike(self, now):
        """Delete this IKE SA (and its CHILD_SAs) with an INFORMATIONAL Delete (proto IKE, §1.4.1),
        sent once and not waited for: after a re-authentication, the old SA's last message."""
        if self.state != _UP:
            self.ignored += 1
            return
        self._emit(self._encrypted([(_PL_DELETE, b"\x01\x00\x00\x00")], _INFORMATIONAL, _F_I, self._msgid))
        self.state = _FAILED
        self._deadline = self._live_at = self._pending = None

    def rekey_child(self, now):
        if self.state != _UP or self._pending is not None or self.esp_in is None:
            self.ignored += 1
            return
        self._live_at = None
        self._rekey_ni = self.rng(32)
        self._rekey_spi = self._new_spi()
        pls = [(_PL_NOTIFY, notify(_N_REKEY_SA, b"", 3, self.spi_esp))]
        if self.transport:
            pls.append((_PL_NOTIFY, notify(_N_USE_TRANSPORT_MODE)))
        pls += [(_PL_SA, sa_payload(3, self._rekey_spi, self._rekey_items())), (_PL_NONCE, self._rekey_ni)]
        if self.pfs:              # §1.3.3 with PFS: a KE of the IKE SA's group (31), a fresh key pair
            self._priv = self.rng(32)
            pls.append((_PL_KE, bytes((0, _GROUP_CURVE25519, 0, 0)) + x25519.public_key(self._priv)))
        pls += [(_PL_TSI, ts_payload(self.ts_i_got or self.ts_i)), (_PL_TSR, ts_payload(self.ts_r_got or self.ts_r))]
        self._request(self._encrypted(pls, _CREATE_CHILD_SA, _F_I, self._msgid), now, "rekey")

    def _rekey_items(self):
        return self._esp_items() + [(4, _GROUP_CURVE25519, b"")] if self.pfs else self._esp_items()

    def _up_response(self, msg, pls, xchg, now):
        inner = self._decrypt(msg, pls)
        if inner is None:
            self.dropped += 1
            return
        errs = [nt for nt in self._notifies(inner) if nt < 16384]     # raises on a malformed notify
        kind, self._pending = self._pending, None
        self._deadline = None
        self._msgid += 1
        if kind == "info":
            self._events.append(("alive", now - self._sent_at))
        elif kind == "child":
            got = {t: b for t, _, b in inner}
            sa = parse_sa(got[_PL_SA]) if _PL_SA in got and _PL_NONCE in got and not errs else None
            if sa is None or sa[0] != 3 or len(sa[1]) != 4 or {(t, i) for t, i, _ in sa[2]} != \
                    {(t, i) for t, i, _ in self._esp_items()}:
                self._events.append(("child_failed", min(errs) if errs else _N_NO_PROPOSAL_CHOSEN))
            else:
                out_spi, in_spi = int.from_bytes(sa[1], "big"), int.from_bytes(self._rekey_spi, "big")
                self.data_out, self.data_in, _ = self._pair(self._rekey_ni + bytes(got[_PL_NONCE]), out_spi, in_spi)
                self._events.append(("data_up", in_spi, out_spi))
        elif kind == "rekey":
            got = {t: b for t, _, b in inner}
            if errs or _PL_SA not in got or _PL_NONCE not in got:
                self._events.append(("child_failed", min(errs) if errs else 0))
            else:
                proto, spi, items = parse_sa(got[_PL_SA])
                want = {(t, i) for t, i, _ in self._rekey_items()}
                shared = b""
                if self.pfs:
                    ke = got.get(_PL_KE)
                    if ke is not None and len(ke) == 36 and ke[:2] == bytes((0, _GROUP_CURVE25519)):
                        shared = x25519.x25519(self._priv, bytes(ke[4:]))
                    self._priv = None
                if proto != 3 or len(spi) != 4 or {(t, i) for t, i, _ in items} != want or \
                        (self.pfs and (len(shared) != 32 or shared == bytes(32))):
                    self._events.append(("child_failed", _N_NO_PROPOSAL_CHOSEN))
                else:
                    nr = bytes(got[_PL_NONCE])
                    old_spi = self.spi_esp
                    self.esp_in_old = self.esp_in
                    self.spi_esp = self._rekey_spi
                    out_spi, in_spi = int.from_bytes(spi, "big"), int.from_bytes(self.spi_esp, "big")
                    # KEYMAT seed: [g^ir (new) |] Ni | Nr (§2.17)
                    self.esp_out, self.esp_in, self.keymat = self._pair(shared + self._rekey_ni + nr, out_spi, in_spi)
                    delete = bytes((3, 4)) + (1).to_bytes(2, "big") + old_spi
                    req = self._encrypted([(_PL_DELETE, delete)], _INFORMATIONAL, _F_I, self._msgid)
                    self._request(req, now, "delete")
                    return
        elif kind == "delete":
            self.esp_in_old = None
            self._events.append(("child_rekeyed", self.esp_in.spi, self.esp_out.spi))
        self._schedule_liveness(now)

    def _peer_request(self, msg, pls, xchg, msgid):
        """The responder's requests once up: INFORMATIONAL (liveness, Delete) gets an empty answer;
        anything else (CREATE_CHILD_SA: rekeying is not done yet) N(NO_PROPOSAL_CHOSEN)... ignored."""
        if xchg != _INFORMATIONAL:
            self.ignored += 1
            return
        # the peer's requests are protected with SK_er/SK_ar, like its responses
        inner = self._decrypt(msg, pls)
        if inner is None:
            self.dropped += 1
            return
        self._emit(self._encrypted([], _INFORMATIONAL, _F_I | _F_R, msgid))
        for t, _, body in inner:
            if t == _PL_DELETE and len(body) >= 4 and body[0] == 1:
                self.state = _FAILED
                self._deadline = self._live_at = self._pending = None
                self._events.append(("deleted",))
