"""IKEv2 responder (RFC 7296) for the HA, sans-IO: IKE_SA_INIT + IKE_AUTH with per-peer pre-shared
keys, one CHILD_SA per IKE SA, liveness/Delete answered. The same algorithms as the MN's initiator
(roam6.ipsec.ikev2, whose encoders and parsers it reuses): AES-CBC-128, HMAC-SHA1-96 or
HMAC-SHA2-256-128, PRF-HMAC-SHA1/SHA2-256, group 31 (Curve25519); for ESP also AES-GCM-128 with a
16-byte ICV (ENCR_AES_GCM_16, RFC 4106, no INTEG transform; the initiator's proposal order wins).
Proven against strongSwan as initiator (tests/ipsec/test_responder_strongswan.py). `roam6 ha` runs it
through ha/ipsecmh.py.

Contract (docs/ARCHITECTURE.md "Sans-IO core"):
  r = Responder({nai: psk}, "ha.example.test", now, assign=None)
      assign(nai) -> (address bytes, prefix length) or None: the home address handed out to a
      CP(CFG_REQUEST) for INTERNAL_IP6_ADDRESS (RFC 4877 §4.4); TSi is narrowed to it
      allowed(nai) -> the device's home addresses (kw): a CREATE_CHILD_SA whose TSi is one of them
      keeps it (a further HoA's own CHILD_SA); any other TSi is narrowed to assign's
  r.receive(udp_payload, peer, local_port, now)   peer = (ip text, port); local_port 500 or 4500
  r.datagrams_to_send(now) -> [(udp_payload, peer, local_port)]
  r.next_event()
Events (NamedTuple-free tuples, kind first):
  ("ike_up", peer_id, spi_i_hex, peer)
  ("hoa", peer_id, address, prefix_len)          assigned through the configuration payload
  ("child_up", peer_id, sa_in, sa_out, transport, ts_i, ts_r)   sa_*: roam6.ipsec.esp.SA
  ("child_rekeyed", peer_id, sa_in, sa_out, old_spi_in)   CREATE_CHILD_SA with N(REKEY_SA) (§1.3.3;
                                           with PFS when the proposal has group 31 and a KE:
                                           X25519, counted in `pfs_exchanges`); the old SAs stay
                                           until the peer's Delete
  A CREATE_CHILD_SA without N(REKEY_SA) (§1.3.1, no KE) makes another CHILD_SA: ("child_up", ...)
  as for IKE_AUTH's, TSi narrowed to the assigned HoA; at most NEW_CHILDREN CHILD_SAs per IKE SA
  (and MAX_CHILDREN with the ones a rekey keeps until their Delete), beyond that N(NO_ADDITIONAL_SAS);
  both per HoA of the device (`allowed`: a device with two HoAs may have twice as many)
  ("child_deleted", peer_id, spi_in)        the peer deleted a CHILD_SA (we answer with ours)
  ("refused", reason, notify_type, peer)   reason: "proposal", "ke", "auth", "malformed"
  ("deleted", peer_id, spis_in)             the peer deleted the IKE SA (and with it these CHILD_SAs)
  ("ike_moved", peer_id, peer)              an authenticated request came from a new address/port:
                                           the IKE SA's peer follows it (RFC 7296 §2.23, RFC 4877 §4.2.1)
Malformed or unexpected datagrams are dropped and counted (`dropped`, `ignored`), never raised.
The number of half-open IKE SAs is bounded (`max_half_open`): the oldest is forgotten first. From
`cookie_threshold` half-open SAs on, an IKE_SA_INIT without a valid N(COOKIE) (RFC 7296 §2.6:
SHA1(Ni | IPi | SPIi | a secret)) is answered with a cookie alone, before any X25519 work, so a
flood of spoofed requests costs a hash each (counted in `cookies_sent`).
"""
import hashlib
import os

from roam6.ipsec import ikev2 as k
from roam6.ipsec import x25519
from roam6.ipsec.ikenames import ENCR_AES_CBC, ENCR_AES_GCM_16
from roam6.ipsec.prims import INTEGS, PRFS, aes_cbc, ct_equal, prf_plus
from roam6.wire.errors import DecodeError

N_INVALID_KE = k.N_INVALID_KE
_KEY_PAD = b"Key Pad for IKEv2"


def _nat_d(spi_i, spi_r, ip, port):
    import socket
    raw = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    return hashlib.sha1(spi_i + spi_r + raw + port.to_bytes(2, "big")).digest()


N_UNSUPPORTED_CRITICAL_PAYLOAD = 1
N_NO_ADDITIONAL_SAS = 35
MAX_CHILDREN = 4          # per IKE SA (RFC 4877: MH transport + payload tunnel, and their rekeyed twins)
NEW_CHILDREN = 2          # made by IKE_AUTH or CREATE_CHILD_SA without REKEY_SA


class _Critical(Exception):
    """An authenticated request holds an unknown critical payload (args[0]: its type)."""


def unknown_critical(buf, off, end, first):
    """The type of the first unknown payload with the critical bit (RFC 7296 §2.5) in a chain,
    or None (a malformed chain too: parse_chain says why)."""
    nxt = first
    while nxt and off + 4 <= end:
        if nxt not in k.KNOWN and buf[off + 1] & 0x80:
            return nxt
        if nxt == k.PL_SK:
            return None
        plen = int.from_bytes(buf[off + 2:off + 4], "big")
        if plen < 4:
            return None
        nxt, off = buf[off], off + plen
    return None


def _asks_ip6(cp):
    off = 4
    while off + 4 <= len(cp):
        if int.from_bytes(cp[off:off + 2], "big") & 0x7FFF == k.INTERNAL_IP6_ADDRESS:
            return True
        off += 4 + int.from_bytes(cp[off + 2:off + 4], "big")
    return False


class _Sa:
    """One IKE SA as the responder sees it."""

    def __init__(self, spi_i, spi_r):
        self.spi_i, self.spi_r = spi_i, spi_r
        self.up = False
        self.peer_id = None
        self.last_msgid = -1
        self.last_response = None
        self.children = []        # [(sa_in, sa_out)], the newest last
        self.peer = None          # (ip text, port) of the last authenticated request


class Responder:
    def __init__(self, psks, local_id, now, local_ip=None, rng=os.urandom, max_half_open=64, assign=None,
                 cookie_threshold=16, allowed=None, lookup=None):
        self.psks = {(n.encode() if isinstance(n, str) else n): (p.encode() if isinstance(p, str) else p)
                     for n, p in psks.items()}
        self.idr = bytes((k.ID_FQDN, 0, 0, 0)) + local_id.encode()
        self.local_ip = local_ip
        self.rng = rng
        self.max_half_open = max_half_open
        self.assign = assign
        self.allowed = allowed   # allowed(nai) -> the device's HoAs: a new CHILD_SA's TSi naming one is kept
        self.cookie_threshold = cookie_threshold
        # lookup(nai, request, peer, port) -> True: IDi has no PSK here and it is being asked for
        # (ha/ipsecaaa.py): no answer now, the request is fed again at the answer; False: refused
        self.lookup = lookup
        self._port = 4500
        self._cookie_secret = rng(16)
        self.cookies_sent = 0
        self.sas = {}            # spi_r -> _Sa
        self._out, self._events = [], []
        self.dropped = self.ignored = 0
        self.pfs_exchanges = 0   # CREATE_CHILD_SAs with a KE (PFS, X25519)

    def datagrams_to_send(self, now):
        out, self._out = self._out, []
        return out

    def next_event(self):
        return self._events.pop(0) if self._events else None

    def _send(self, msg, peer, port):
        self._out.append(((k.MARKER + msg) if port == 4500 else msg, peer, port))

    def receive(self, data, peer, local_port, now):
        try:
            self._receive(bytes(data), peer, local_port)
        except (DecodeError, ValueError, IndexError, KeyError):
            self.dropped += 1

    def _receive(self, data, peer, port):
        self._port = port
        if port == 4500:
            if data[:4] != k.MARKER:
                self.ignored += 1       # ESP: the driver hands it to the CHILD_SA's esp_in
                return
            data = data[4:]
        if len(data) < 28 or len(data) > k.MAX_DATAGRAM or data[17] >> 4 != 2:
            raise DecodeError(0, "IKE header")
        if int.from_bytes(data[24:28], "big") != len(data):
            raise DecodeError(24, "IKE length")
        xchg, flags = data[18], data[19]
        msgid = int.from_bytes(data[20:24], "big")
        if flags & k.F_R:
            self.ignored += 1           # we send no requests yet
            return
        crit = unknown_critical(data, 28, len(data), data[16])
        if crit is not None and xchg == k.IKE_SA_INIT and data[8:16] == bytes(8) and msgid == 0:
            # §2.5: rejected, the response names the payload type (before any state or DH work)
            self.dropped += 1
            self._send(self._plain_error(data, N_UNSUPPORTED_CRITICAL_PAYLOAD, bytes((crit,))), peer, port)
            self._events.append(("refused", "malformed", N_UNSUPPORTED_CRITICAL_PAYLOAD, peer))
            return
        pls = k.parse_chain(data, 28, len(data), data[16])
        if xchg == k.IKE_SA_INIT and data[8:16] == bytes(8) and msgid == 0 and flags & k.F_I:
            self._init(data, pls, peer, port)
            return
        sa = self.sas.get(bytes(data[8:16]))
        if sa is None or sa.spi_i != data[:8]:
            self.ignored += 1
            return
        if msgid == sa.last_msgid and sa.last_response:
            self._send(sa.last_response, peer, port)       # a retransmitted request: same answer
            return
        if msgid != sa.last_msgid + 1:
            self.ignored += 1
            return
        try:
            inner = self._decrypt(sa, data, pls)
        except _Critical as exc:
            # an authenticated request with an unknown critical payload (§2.5): refused, answered
            self.dropped += 1
            resp = self._encrypt(sa, [(k.PL_NOTIFY, k.notify(N_UNSUPPORTED_CRITICAL_PAYLOAD, bytes((exc.args[0],))))],
                                 xchg, msgid)
            sa.last_msgid, sa.last_response = msgid, resp
            self._send(resp, peer, port)
            self._events.append(("refused", "malformed", N_UNSUPPORTED_CRITICAL_PAYLOAD, peer))
            return
        if inner is None:
            self.dropped += 1
            return
        if sa.up and sa.peer != peer:
            sa.peer = peer
            self._events.append(("ike_moved", sa.peer_id, peer))
        if xchg == k.IKE_AUTH and not sa.up:
            resp = self._auth(sa, data, inner, peer)
            if resp is None:
                return              # held: its PSK is being asked for (lookup)
        elif xchg == k.INFORMATIONAL and sa.up:
            answer = []
            for t, _, body in inner:
                if t == k.PL_DELETE and len(body) >= 4 and body[0] == 1:
                    del self.sas[sa.spi_r]
                    self._events.append(("deleted", sa.peer_id, [c[0].spi for c in sa.children]))
                elif t == k.PL_DELETE and len(body) >= 4 and body[0] == 3 and body[1] == 4:
                    mine = self._delete_children(sa, body)
                    if mine:
                        answer.append((k.PL_DELETE, b"\x03\x04" + len(mine).to_bytes(2, "big") + b"".join(mine)))
            resp = self._encrypt(sa, answer, k.INFORMATIONAL, msgid)
        elif xchg == k.CREATE_CHILD_SA and sa.up:
            resp = self._rekey(sa, inner, msgid)
        else:
            resp = self._encrypt(sa, [(k.PL_NOTIFY, k.notify(k.N_NO_PROPOSAL_CHOSEN))], xchg, msgid)
        sa.last_msgid, sa.last_response = msgid, resp
        self._send(resp, peer, port)

    # -- IKE_SA_INIT ---------------------------------------------------------------------
    def _plain_error(self, req, ntype, data=b""):
        body = k.chain([(k.PL_NOTIFY, k.notify(ntype, data))])
        return (req[:8] + bytes(8) + bytes((k.PL_NOTIFY, 0x20, k.IKE_SA_INIT, k.F_R)) + bytes(4)
                + (28 + len(body)).to_bytes(4, "big") + body)

    def _choose(self, body):
        """The first proposal (of possibly several) we can do: (transform items, prf, integ) or None."""
        off = 0
        while off + 8 <= len(body):
            plen = int.from_bytes(body[off + 2:off + 4], "big")
            if plen < 8 or off + plen > len(body):
                raise DecodeError(off, "proposal length")
            one = bytes(body[off:off + plen])
            one = b"\x00" + one[1:]                       # parse_sa wants a lone last proposal
            proto, spi, items = k.parse_sa(one)
            got = {}
            encrs = (ENCR_AES_CBC, ENCR_AES_GCM_16) if proto == 3 else (ENCR_AES_CBC,)   # GCM: ESP only
            for t, i, attr in items:
                ok = ((t == 1 and i in encrs and attr == b"\x80\x0e\x00\x80") or (t == 2 and i in PRFS)
                      or (t == 3 and i in INTEGS) or (t == 4 and i == k.GROUP_CURVE25519) or (t == 5 and i == 0))
                if ok and t not in got:
                    got[t] = (t, i, attr)
            aead = 1 in got and got[1][1] == ENCR_AES_GCM_16
            if aead:
                got.pop(3, None)                           # AES-GCM carries its own ICV (RFC 5282 §8)
            need = (1, 2, 3, 4) if proto == 1 else (1,) if aead else (1, 3)
            if all(t in got for t in need):
                if proto == 3 and 5 not in got and any(t == 5 for t, _, _ in items):
                    pass                                   # only ESN offered: not this one
                elif proto == 3 and 4 not in got and any(t == 4 and i != 0 for t, i, _ in items):
                    pass                                   # PFS with a group other than 31 only
                else:
                    chosen = [got[t] for t in sorted(got)]
                    return body[off + 4], proto, spi, chosen
            if body[off] == 0:
                break
            off += plen
        return None

    def _init(self, req, pls, peer, port):
        got = {}
        nat = {}
        for t, _, b in pls:
            got.setdefault(t, b)
            if t == k.PL_NOTIFY and len(b) >= 4:
                nat[int.from_bytes(b[2:4], "big")] = bytes(b[4 + b[1]:])
        if k.PL_SA not in got or k.PL_KE not in got or k.PL_NONCE not in got:
            raise DecodeError(0, "IKE_SA_INIT request incomplete")
        if sum(1 for x in self.sas.values() if not x.up) >= self.cookie_threshold:
            import socket
            ip = socket.inet_pton(socket.AF_INET6 if ":" in peer[0] else socket.AF_INET, peer[0])
            want = hashlib.sha1(bytes(got[k.PL_NONCE]) + ip + bytes(req[:8]) + self._cookie_secret).digest()
            if pls[0][0] != k.PL_NOTIFY or nat.get(k.N_COOKIE) != want:
                self.cookies_sent += 1
                self._send(self._plain_error(req, k.N_COOKIE, want), peer, port)
                return
        choice = self._choose(got[k.PL_SA])
        if choice is None or choice[1] != 1:
            self._send(self._plain_error(req, k.N_NO_PROPOSAL_CHOSEN), peer, port)
            self._events.append(("refused", "proposal", k.N_NO_PROPOSAL_CHOSEN, peer))
            return
        num, _proto, _spi, items = choice
        ke = got[k.PL_KE]
        if len(ke) < 4 or int.from_bytes(ke[:2], "big") != k.GROUP_CURVE25519:
            self._send(self._plain_error(req, N_INVALID_KE, k.GROUP_CURVE25519.to_bytes(2, "big")), peer, port)
            self._events.append(("refused", "ke", N_INVALID_KE, peer))
            return
        if len(ke) != 36 or not 16 <= len(got[k.PL_NONCE]) <= 256:
            raise DecodeError(0, "KE/Nonce")
        priv = self.rng(32)
        shared = x25519.x25519(priv, bytes(ke[4:]))
        if shared == bytes(32):
            raise DecodeError(0, "x25519 all-zero")
        spi_r = self.rng(8)
        sa = _Sa(bytes(req[:8]), spi_r)
        sa.prf = [i for t, i, _ in items if t == 2][0]
        sa.integ = [i for t, i, _ in items if t == 3][0]
        sa.ni, sa.nr = bytes(got[k.PL_NONCE]), self.rng(32)
        prop = bytearray(k.sa_payload(1, b"", items))
        prop[4] = num                       # the proposal number we took
        pls_out = [(k.PL_SA, bytes(prop)),
                   (k.PL_KE, k.GROUP_CURVE25519.to_bytes(2, "big") + b"\x00\x00" + x25519.public_key(priv)),
                   (k.PL_NONCE, sa.nr)]
        if k.N_NAT_D_SRC in nat and self.local_ip:
            pls_out += [(k.PL_NOTIFY, k.notify(k.N_NAT_D_SRC, _nat_d(sa.spi_i, spi_r, self.local_ip, port))),
                        (k.PL_NOTIFY, k.notify(k.N_NAT_D_DST, _nat_d(sa.spi_i, spi_r, peer[0], peer[1])))]
        body = k.chain(pls_out)
        msg2 = (sa.spi_i + spi_r + bytes((k.PL_SA, 0x20, k.IKE_SA_INIT, k.F_R)) + bytes(4)
                + (28 + len(body)).to_bytes(4, "big") + body)
        sa.msg1, sa.msg2 = bytes(req), msg2
        prf, plen = PRFS[sa.prf]
        ilen = INTEGS[sa.integ][1]
        km = prf_plus(prf, prf(sa.ni + sa.nr, shared), sa.ni + sa.nr + sa.spi_i + spi_r, 3 * plen + 2 * ilen + 32)
        sa.sk, off = {}, 0
        for name, n in (("d", plen), ("ai", ilen), ("ar", ilen), ("ei", 16), ("er", 16), ("pi", plen), ("pr", plen)):
            sa.sk[name] = km[off:off + n]
            off += n
        half = [s for s in self.sas.values() if not s.up]
        if len(half) >= self.max_half_open:
            del self.sas[half[0].spi_r]
        self.sas[spi_r] = sa
        sa.last_msgid, sa.last_response = 0, msg2
        self._send(msg2, peer, port)

    # -- SK ------------------------------------------------------------------------------
    def _decrypt(self, sa, msg, pls):
        if not pls or pls[-1][0] != k.PL_SK:
            return None
        first, body = pls[-1][1], pls[-1][2]
        fn, _, icv = INTEGS[sa.integ]
        if len(body) < 16 + 16 + icv or (len(body) - 16 - icv) % 16:
            return None
        if not ct_equal(fn(sa.sk["ai"], msg[:len(msg) - icv])[:icv], msg[len(msg) - icv:]):
            return None
        plain = aes_cbc(sa.sk["ei"], body[:16], body[16:len(body) - icv], False)
        if plain[-1] + 1 > len(plain):
            return None
        crit = unknown_critical(plain, 0, len(plain) - 1 - plain[-1], first)
        if crit is not None:
            raise _Critical(crit)
        return k.parse_chain(plain, 0, len(plain) - 1 - plain[-1], first)

    def _encrypt(self, sa, payloads, xchg, msgid):
        inner = k.chain(payloads) if payloads else b""
        pad = 15 - len(inner) % 16
        iv = self.rng(16)
        ct = aes_cbc(sa.sk["er"], iv, inner + bytes(pad) + bytes((pad,)), True)
        fn, _, icv = INTEGS[sa.integ]
        n = 4 + 16 + len(ct) + icv
        msg = (sa.spi_i + sa.spi_r + bytes((k.PL_SK, 0x20, xchg, k.F_R)) + msgid.to_bytes(4, "big")
               + (28 + n).to_bytes(4, "big") + bytes((payloads[0][0] if payloads else 0, 0)) + n.to_bytes(2, "big")
               + iv + ct)
        return msg + fn(sa.sk["ar"], msg)[:icv]

    # -- CHILD_SA rekey and delete ---------------------------------------------------------
    def _delete_children(self, sa, body):
        """The peer deletes the CHILD_SAs whose inbound SPIs (our outbound ones) it lists: drop
        them; return our inbound SPIs of those, for the answer's Delete."""
        n = int.from_bytes(body[2:4], "big")
        theirs = {int.from_bytes(body[4 + 4 * i:8 + 4 * i], "big") for i in range(n) if 8 + 4 * i <= len(body)}
        mine = []
        for child in list(sa.children):
            if child[1].spi in theirs:
                sa.children.remove(child)
                mine.append(child[0].spi_bytes)
                self._events.append(("child_deleted", sa.peer_id, child[0].spi))
        return mine

    def _rekey(self, sa, inner, msgid):
        got, ns = {}, {}
        for t, _, b in inner:
            got.setdefault(t, b)
            if t == k.PL_NOTIFY and len(b) >= 4:
                ns[int.from_bytes(b[2:4], "big")] = b
        rekey = ns.get(k.N_REKEY_SA)
        old = None
        if rekey is not None and len(rekey) == 8 and rekey[0] == 3 and rekey[1] == 4:
            spi = int.from_bytes(rekey[4:8], "big")
            old = [c for c in sa.children if c[1].spi == spi]
        if rekey is None:
            return self._new_child(sa, got, ns, msgid)
        if old and len(sa.children) >= MAX_CHILDREN * self._hoas(sa):     # rekeys without Deletes: bounded
            return self._encrypt(sa, [(k.PL_NOTIFY, k.notify(N_NO_ADDITIONAL_SAS))], k.CREATE_CHILD_SA, msgid)
        if not old:
            # an unknown SA
            return self._encrypt(sa, [(k.PL_NOTIFY, k.notify(44))], k.CREATE_CHILD_SA, msgid)   # CHILD_SA_NOT_FOUND
        choice = self._choose(got[k.PL_SA]) if k.PL_SA in got else None
        pfs = self._child_ke(got, choice[3]) if choice is not None else None
        if (choice is None or choice[1] != 3 or len(choice[2]) != 4 or pfs is None or k.PL_NONCE not in got
                or k.PL_TSI not in got or k.PL_TSR not in got):
            return self._encrypt(sa, [(k.PL_NOTIFY, k.notify(k.N_NO_PROPOSAL_CHOSEN))], k.CREATE_CHILD_SA, msgid)
        num, _, their_spi, items = choice
        ni, nr = bytes(got[k.PL_NONCE]), self.rng(32)
        sa_in, sa_out = self._child_sas(sa, items, ni, nr, their_spi, pfs[0])
        sa.children.append((sa_in, sa_out))
        prop = bytearray(k.sa_payload(3, sa_in.spi_bytes, items))
        prop[4] = num
        out = [(k.PL_SA, bytes(prop)), (k.PL_NONCE, nr)] + pfs[1] + [(k.PL_TSI, bytes(got[k.PL_TSI])),
                                                                      (k.PL_TSR, bytes(got[k.PL_TSR]))]
        if k.N_USE_TRANSPORT_MODE in ns:
            out.insert(0, (k.PL_NOTIFY, k.notify(k.N_USE_TRANSPORT_MODE)))
        self._events.append(("child_rekeyed", sa.peer_id, sa_in, sa_out, old[0][0].spi))
        return self._encrypt(sa, out, k.CREATE_CHILD_SA, msgid)

    def _new_child(self, sa, got, ns, msgid):
        """§1.3.1: another CHILD_SA of this IKE SA (RFC 4877's payload tunnel), no PFS."""
        def refuse(nt):
            return self._encrypt(sa, [(k.PL_NOTIFY, k.notify(nt))], k.CREATE_CHILD_SA, msgid)
        if len(sa.children) >= NEW_CHILDREN * self._hoas(sa):
            return refuse(N_NO_ADDITIONAL_SAS)
        choice = self._choose(got[k.PL_SA]) if k.PL_SA in got else None
        pfs = self._child_ke(got, choice[3]) if choice is not None else None
        if (choice is None or choice[1] != 3 or len(choice[2]) != 4 or pfs is None or k.PL_NONCE not in got
                or k.PL_TSI not in got or k.PL_TSR not in got):
            return refuse(k.N_NO_PROPOSAL_CHOSEN)
        num, _, their_spi, items = choice
        ts_i, ts_r = k.parse_ts(got[k.PL_TSI]), k.parse_ts(got[k.PL_TSR])
        given = self.assign(sa.peer_id) if self.assign else None
        one = ts_i[0][4] if len(ts_i) == 1 and ts_i[0][4] == ts_i[0][5] else None
        if one is not None and self.allowed and one in self.allowed(sa.peer_id):
            pass                            # another HoA of this device (RFC 4877 §4.4): its own CHILD_SA
        elif given:
            ts_i = [k.ts_host(given[0])]
        ni, nr = bytes(got[k.PL_NONCE]), self.rng(32)
        sa_in, sa_out = self._child_sas(sa, items, ni, nr, their_spi, pfs[0])
        sa.children.append((sa_in, sa_out))
        transport = k.N_USE_TRANSPORT_MODE in ns
        prop = bytearray(k.sa_payload(3, sa_in.spi_bytes, items))
        prop[4] = num
        out = [(k.PL_SA, bytes(prop)), (k.PL_NONCE, nr)] + pfs[1] + [(k.PL_TSI, k.ts_payload(ts_i)),
                                                                      (k.PL_TSR, bytes(got[k.PL_TSR]))]
        if transport:
            out.insert(0, (k.PL_NOTIFY, k.notify(k.N_USE_TRANSPORT_MODE)))
        self._events.append(("child_up", sa.peer_id, sa_in, sa_out, transport, ts_i, ts_r))
        return self._encrypt(sa, out, k.CREATE_CHILD_SA, msgid)

    def _hoas(self, sa):
        return max(1, len(self.allowed(sa.peer_id))) if self.allowed else 1

    def _child_ke(self, got, items):
        """PFS for a CREATE_CHILD_SA (§1.3.1, §1.3.3): the chosen proposal has D-H group 31 -> the
        request's KE (X25519) must be there: (g^ir, [our KE payload]); no group -> (b"", []) and no
        KE allowed; None: refused (no/bad KE, or a KE without a group)."""
        dh = [i for t, i, _ in items if t == 4 and i != 0]
        ke = got.get(k.PL_KE)
        if not dh:
            return (b"", []) if ke is None else None
        if ke is None or len(ke) != 36 or int.from_bytes(ke[:2], "big") != k.GROUP_CURVE25519:
            return None
        priv = self.rng(32)
        shared = x25519.x25519(priv, bytes(ke[4:]))
        if shared == bytes(32):
            return None
        self.pfs_exchanges += 1
        return shared, [(k.PL_KE, k.GROUP_CURVE25519.to_bytes(2, "big") + b"\x00\x00" + x25519.public_key(priv))]

    def _child_sas(self, sa, items, ni, nr, their_spi, shared=b""):
        """KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) (§2.17): i->r (our inbound) keys first."""
        our_spi = self.rng(4)
        while our_spi[0] == 0:
            our_spi = self.rng(4)
        encr = [i for t, i, _ in items if t == 1][0]
        esp_integ = ([i for t, i, _ in items if t == 3] or [None])[0]
        sa_in, sa_out, _ = k.esp_pair(PRFS[sa.prf][0], sa.sk["d"], shared + ni + nr, encr, esp_integ,
                                      int.from_bytes(our_spi, "big"), int.from_bytes(their_spi, "big"), self.rng)
        return sa_in, sa_out

    # -- IKE_AUTH ------------------------------------------------------------------------
    def _auth(self, sa, req, inner, peer):
        got, ns = {}, {}
        for t, _, b in inner:
            got.setdefault(t, b)
            if t == k.PL_NOTIFY and len(b) >= 4:
                ns[int.from_bytes(b[2:4], "big")] = b
        idi = bytes(got.get(k.PL_IDI, b""))
        psk = self.psks.get(idi[4:]) if len(idi) > 4 else None
        a = got.get(k.PL_AUTH, b"")
        if (psk is None and self.lookup is not None and len(idi) > 4 and len(a) > 4 and a[0] == k.AUTH_PSK
                and self.lookup(idi[4:], req, peer, self._port)):
            return None
        prf = PRFS[sa.prf][0]
        ok = False
        if psk is not None and len(a) > 4 and a[0] == k.AUTH_PSK:
            want = prf(prf(psk, _KEY_PAD), sa.msg1 + sa.nr + prf(sa.sk["pi"], idi))
            ok = ct_equal(bytes(a[4:]), want)
        if not ok:
            self._events.append(("refused", "auth", k.N_AUTH_FAILED, peer))
            del self.sas[sa.spi_r]
            return self._encrypt(sa, [(k.PL_NOTIFY, k.notify(k.N_AUTH_FAILED))], k.IKE_AUTH, 1)
        sa.up, sa.peer_id, sa.peer = True, idi[4:].decode(), peer
        mine = prf(prf(psk, _KEY_PAD), sa.msg2 + sa.ni + prf(sa.sk["pr"], self.idr))
        out = [(k.PL_IDR, self.idr), (k.PL_AUTH, bytes((k.AUTH_PSK, 0, 0, 0)) + mine)]
        self._events.append(("ike_up", sa.peer_id, sa.spi_i.hex(), peer))
        choice = self._choose(got[k.PL_SA]) if k.PL_SA in got else None
        if choice is None or choice[1] != 3 or len(choice[2]) != 4 or k.PL_TSI not in got or k.PL_TSR not in got:
            out.append((k.PL_NOTIFY, k.notify(k.N_NO_PROPOSAL_CHOSEN)))
            return self._encrypt(sa, out, k.IKE_AUTH, 1)
        num, _, their_spi, items = choice
        items = [x for x in items if x[0] != 4]          # §1.2: IKE_AUTH's CHILD_SA has no D-H of its own
        ts_i, ts_r = k.parse_ts(got[k.PL_TSI]), k.parse_ts(got[k.PL_TSR])
        cp = got.get(k.PL_CP)
        if cp is not None and len(cp) >= 4 and cp[0] == k.CFG_REQUEST and self.assign and _asks_ip6(cp):
            given = self.assign(sa.peer_id)
            if given:
                addr, plen = given
                out.append((k.PL_CP, bytes((k.CFG_REPLY, 0, 0, 0)) + k.INTERNAL_IP6_ADDRESS.to_bytes(2, "big")
                            + b"\x00\x11" + addr + bytes((plen,))))
                ts_i = [k.ts_host(addr)]
                self._events.append(("hoa", sa.peer_id, addr, plen))
        transport = k.N_USE_TRANSPORT_MODE in ns
        sa_in, sa_out = self._child_sas(sa, items, sa.ni, sa.nr, their_spi)
        our_spi = sa_in.spi_bytes
        if transport:
            out.append((k.PL_NOTIFY, k.notify(k.N_USE_TRANSPORT_MODE)))
        prop = bytearray(k.sa_payload(3, our_spi, items))
        prop[4] = num                       # the proposal number we took
        out += [(k.PL_SA, bytes(prop)), (k.PL_TSI, k.ts_payload(ts_i)), (k.PL_TSR, bytes(got[k.PL_TSR]))]
        sa.children.append((sa_in, sa_out))
        self._events.append(("child_up", sa.peer_id, sa_in, sa_out, transport, ts_i, ts_r))
        return self._encrypt(sa, out, k.IKE_AUTH, 1)
