"""A tiny correspondent for the MN's return routability tests (runs on MicroPython too, so it
cannot use host_tools' CN): answers HoTI/CoTI and BUs from the RFC 6275 formulas with the
firmware codec and crypto. The real CN (host_tools/roam6_host/cn) is tested against the MN in
tests/cn/. Defaults are the docs/PROTOCOL-NOTES.md §10.3 inputs."""
from roam6 import rrcrypto
from roam6_codec import consts as C
from roam6_codec import mh as M
from roam6_codec import mhopts as O
from roam6.wire.ipv6 import build_ipv6, decode_ipv6
from support import unhex

KCN = unhex("000102030405060708090a0b0c0d0e0f10111213")
HOA = unhex("20010db8000100000000000000000100")
COA = unhex("20010db8000200000000000000000200")
COA2 = unhex("20010db8000400000000000000000400")
CN = unhex("20010db8000300000000000000000300")


class Peer:
    def __init__(self, cn=CN, kcn=KCN):
        self.cn = cn
        self.kcn = kcn
        self.nonces = {5: b"\x11" * 8, 6: b"\x22" * 8}
        self.hni = 5  # index handed out in the next HoT
        self.coni = 6  # in the next CoT
        self.seen = []  # (kind, decoded ipv6, decoded mh) of everything the MN sent
        self.status = 0  # status of the next BA
        self.last_bu = None

    def feed(self, out):
        """Record what the MN sent; return the answers as (src, dst, mh, rh2) for mn.receive."""
        answers = []
        for via, pkt in out:
            p = decode_ipv6(pkt)
            msg = M.decode_mh(bytes(p.payload))
            self.seen.append((via, p, msg))
            a = self.answer(p, msg)
            if a is not None:
                answers.append(a)
        return answers

    def answer(self, p, msg):
        if isinstance(msg, M.CareofTestInit):  # a subclass of HomeTestInit: test it first
            tok = rrcrypto.careof_keygen_token(self.kcn, p.src, self.nonces[self.coni])
            mh = M.CareofTest(self.coni, msg.cookie, tok).encode(src=self.cn, dst=p.src)
            return (self.cn, p.src, mh, None)
        if isinstance(msg, M.HomeTestInit):
            tok = rrcrypto.home_keygen_token(self.kcn, p.src, self.nonces[self.hni])
            mh = M.HomeTest(self.hni, msg.cookie, tok).encode(src=self.cn, dst=p.src)
            return (self.cn, p.src, mh, None)
        if isinstance(msg, M.BindingUpdate):
            return self.answer_bu(p, msg)
        return None

    def bu_kbm(self, p, msg):
        ni = msg.find(O.NonceIndices)
        hoa = p.hao if p.hao is not None else p.src
        coa = p.src
        ht = rrcrypto.home_keygen_token(self.kcn, hoa, self.nonces[ni.home])
        if msg.lifetime == 0 or coa == hoa:
            return hoa, coa, rrcrypto.kbm(ht, None)
        ct = rrcrypto.careof_keygen_token(self.kcn, coa, self.nonces[ni.careof])
        return hoa, coa, rrcrypto.kbm(ht, ct)

    def answer_bu(self, p, msg):
        hoa, coa, kbm = self.bu_kbm(p, msg)
        raw = bytearray(msg.raw)
        raw[4] = raw[5] = 0
        assert rrcrypto.rr_authenticator(kbm, coa, self.cn, raw[:-12]) == msg.raw[-12:], "BU MAC"
        self.last_bu = (hoa, coa, msg)
        return self.ba(hoa, coa, kbm, msg.seq, self.status, msg.lifetime)

    def ba(self, hoa, coa, kbm, seq, status, lifetime, forge=False):
        cn = self.cn

        def mac(d):
            a = rrcrypto.rr_authenticator(kbm, coa, cn, d)
            return bytes(12) if forge else a

        opts = [] if status in (136, 137, 138) else [O.BindingAuthData(None)]
        mh = M.BindingAck(status, 0, seq, lifetime, opts).encode(src=cn, dst=hoa, mac=mac)
        if coa == hoa:
            return (cn, hoa, mh, None)
        return (cn, coa, mh, hoa)

    def kinds(self):
        return [type(m).__name__ for _, _, m in self.seen]

    def be(self, hoa, status=C.BE_UNKNOWN_BINDING):
        return (self.cn, COA, M.BindingError(status, hoa).encode(src=self.cn, dst=COA), None)


def packet(pkt_hex):
    return decode_ipv6(unhex(pkt_hex))


def ipv6(src, dst, mh, rh2=None, hao=None):
    return build_ipv6(src, dst, C.NH_MH, mh, rh2=rh2, hao=hao)
