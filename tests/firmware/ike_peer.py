"""A minimal IKEv2 responder for the initiator's sans-IO tests (test_ipsec_ikev2.py), on MicroPython
too: it answers IKE_SA_INIT and IKE_AUTH for a PSK peer with the proposal it was offered, builds
the messages from roam6.ipsec.ikev2's encoders and derives keys with prims. Not the HA's responder
(and not an independent implementation: strongSwan is, tests/ipsec/test_strongswan_interop.py)."""
from roam6.ipsec import ikev2 as k
from roam6.ipsec import x25519
from roam6.ipsec.prims import INTEGS, PRFS, aes_cbc, prf_plus


class Peer:
    cp_hoa = None                       # an address: the home address its CP assigns (else no CP)

    def __init__(self, psk, rng, natt=True, child=True, auth_psk=None):
        self.psk, self.rng, self.natt, self.child = psk, rng, natt, child
        self.auth_psk = auth_psk or psk      # a different one: the peer "proves" a wrong key
        self.spi_r = rng(8)
        self.nr = rng(32)
        self.priv = rng(32)
        self.idr = bytes((k.ID_FQDN, 0, 0, 0)) + b"ha.example.test"
        self.esp_spi = b"\xc0\x00\x00\x01"

    def _strip(self, d):
        return d[4:] if self.natt else d

    def _wrap(self, d):
        return (k.MARKER + d) if self.natt else d

    def _hdr(self, spi_i, first, xchg, flags, msgid, length):
        return (spi_i + self.spi_r + bytes((first, 0x20, xchg, flags)) + msgid.to_bytes(4, "big")
                + length.to_bytes(4, "big"))

    def init(self, data):
        req = self._strip(data)
        self.spi_i = req[:8]
        pls = {t: b for t, _, b in k.parse_chain(req, 28, len(req), req[16])}
        _, _, items = k.parse_sa(pls[k.PL_SA])
        self.prf = [i for t, i, _ in items if t == 2][0]
        self.integ = [i for t, i, _ in items if t == 3][0]
        self.ni = bytes(pls[k.PL_NONCE])
        shared = x25519.x25519(self.priv, bytes(pls[k.PL_KE][4:]))
        body = k.chain([(k.PL_SA, k.sa_payload(1, b"", items)),
                        (k.PL_KE, b"\x00\x1f\x00\x00" + x25519.public_key(self.priv)),
                        (k.PL_NONCE, self.nr)])
        self.msg2 = self._hdr(self.spi_i, k.PL_SA, k.IKE_SA_INIT, k.F_R, 0, 28 + len(body)) + body
        self.msg1 = req
        prf, plen = PRFS[self.prf]
        ilen = INTEGS[self.integ][1]
        km = prf_plus(prf, prf(self.ni + self.nr, shared), self.ni + self.nr + self.spi_i + self.spi_r,
                      3 * plen + 2 * ilen + 32)
        self.sk, off = {}, 0
        for name, n in (("d", plen), ("ai", ilen), ("ar", ilen), ("ei", 16), ("er", 16), ("pi", plen), ("pr", plen)):
            self.sk[name] = km[off:off + n]
            off += n
        return self._wrap(self.msg2)

    def answer(self, data):
        """Answer the initiator's INFORMATIONAL (liveness, Delete: mirrored with our SPI) or
        CREATE_CHILD_SA (rekey: new SPI and nonce; the new KEYMAT kept in `rekey_keymat`)."""
        req, inner = self.open(data)
        xchg, msgid = req[18], int.from_bytes(req[20:24], "big")
        got = {t: b for t, _, b in inner}
        if xchg == k.INFORMATIONAL:
            out = [(k.PL_DELETE, b"\x03\x04\x00\x01" + self.esp_spi)] if k.PL_DELETE in got else []
            self.deleted = bytes(got[k.PL_DELETE][4:]) if k.PL_DELETE in got else None
            return self.seal(out, k.INFORMATIONAL, k.F_R, msgid)
        _, spi, items = k.parse_sa(got[k.PL_SA])
        self.rekey_init_spi = spi
        nr = self.rng(32)
        self.esp_spi = b"\xc0\x00\x00\x02"
        self.rekey_keymat = prf_plus(PRFS[self.prf][0], self.sk["d"], bytes(got[k.PL_NONCE]) + nr, 72)
        pls = [(k.PL_SA, k.sa_payload(3, self.esp_spi, items)), (k.PL_NONCE, nr),
               (k.PL_TSI, bytes(got[k.PL_TSI])), (k.PL_TSR, bytes(got[k.PL_TSR]))]
        return self.seal(pls, k.CREATE_CHILD_SA, k.F_R, msgid)

    def seal(self, payloads, xchg, flags, msgid):
        inner = k.chain(payloads) if payloads else b""
        pad = 15 - len(inner) % 16
        iv = self.rng(16)
        ct = aes_cbc(self.sk["er"], iv, inner + bytes(pad) + bytes((pad,)), True)
        fn, _, icv = INTEGS[self.integ]
        n = 4 + 16 + len(ct) + icv
        msg = self._hdr(self.spi_i, k.PL_SK, xchg, flags, msgid, 28 + n) + bytes(
            (payloads[0][0] if payloads else 0, 0)) + n.to_bytes(2, "big") + iv + ct
        return self._wrap(msg + fn(self.sk["ar"], msg)[:icv])

    def open(self, data):
        req = self._strip(data)
        fn, _, icv = INTEGS[self.integ]
        assert fn(self.sk["ai"], req[:-icv])[:icv] == req[-icv:], "initiator's ICV"
        sk = k.parse_chain(req, 28, len(req), req[16])[-1]
        body = sk[2]
        plain = aes_cbc(self.sk["ei"], body[:16], body[16:len(body) - icv], False)
        return req, k.parse_chain(plain, 0, len(plain) - 1 - plain[-1], sk[1])

    def auth(self, data):
        req, inner = self.open(data)
        got = {t: b for t, _, b in inner}
        prf = PRFS[self.prf][0]
        want = prf(prf(self.psk, b"Key Pad for IKEv2"), self.msg1 + self.nr + prf(self.sk["pi"], bytes(got[k.PL_IDI])))
        self.auth_ok = bytes(got[k.PL_AUTH][4:]) == want
        self.ts = (bytes(got[k.PL_TSI]), bytes(got[k.PL_TSR]))
        self.transport = any(t == k.PL_NOTIFY and b[2:4] == b"\x40\x07" for t, _, b in inner)
        _, self.init_esp_spi, items = k.parse_sa(got[k.PL_SA])
        self.esp_items = items
        if not self.auth_ok:
            return self.seal([(k.PL_NOTIFY, k.notify(k.N_AUTH_FAILED))], k.IKE_AUTH, k.F_R, 1)
        mine = prf(prf(self.auth_psk, b"Key Pad for IKEv2"), self.msg2 + self.ni + prf(self.sk["pr"], self.idr))
        pls = [(k.PL_IDR, self.idr), (k.PL_AUTH, b"\x02\x00\x00\x00" + mine)]
        if not self.child:
            pls.append((k.PL_NOTIFY, k.notify(k.N_TS_UNACCEPTABLE)))
            return self.seal(pls, k.IKE_AUTH, k.F_R, 1)
        if self.transport:
            pls.append((k.PL_NOTIFY, k.notify(k.N_USE_TRANSPORT_MODE)))
        tsi = self.ts[0]
        if self.cp_hoa is not None:     # CP(CFG_REPLY) INTERNAL_IP6_ADDRESS, TSi narrowed to it (RFC 4877 §4.4)
            pls.append((k.PL_CP, b"\x02\x00\x00\x00\x00\x08\x00\x11" + self.cp_hoa + b"\x80"))
            tsi = k.ts_payload([k.ts_host(self.cp_hoa, 135)])
            self.ts = (tsi, self.ts[1])
        pls += [(k.PL_SA, k.sa_payload(3, self.esp_spi, items)), (k.PL_TSI, tsi), (k.PL_TSR, self.ts[1])]
        return self.seal(pls, k.IKE_AUTH, k.F_R, 1)

    def esp(self, rekeyed=False):
        """The responder's ESP SAs of the CHILD_SA: (from the initiator, to the initiator); after a
        rekey (`answer` of a CREATE_CHILD_SA) the new pair."""
        from roam6.ipsec.esp import SA
        ilen = INTEGS[self.integ][1]
        if rekeyed:
            km, spi_out = self.rekey_keymat, self.rekey_init_spi
        else:
            km = prf_plus(PRFS[self.prf][0], self.sk["d"], self.ni + self.nr, 2 * (16 + ilen))
            spi_out = self.init_esp_spi
        sa_in = SA(int.from_bytes(self.esp_spi, "big"), km[:16], km[16:16 + ilen], self.integ, self.rng)
        sa_out = SA(int.from_bytes(spi_out, "big"), km[16 + ilen:32 + ilen], km[32 + ilen:], self.integ, self.rng)
        return sa_in, sa_out
