"""One semantics for duplicated mobility options (ha/mhopts_once.py): a BU carrying an option that
may appear once (IPv4 CoA, Replay Protection, MN-ID, ...) twice is refused - dropped as malformed -
on the fast path (learnt shapes) and the codec path alike; and a differential test feeds one corpus
(valid BUs of many layouts, authentic BUs with duplicated options, random mutations) to a cache
on each path and asserts the same answers, bytes and bindings after every packet."""
import random
import struct

from roam6 import crypto
from roam6.wire.checksum import checksum6
from roam6.wire.ipv6 import build_ipv6
from roam6_codec import consts as C
from roam6_codec import mhopts as mo
from roam6_codec.mh import BindingUpdate

from ha_helpers import HA, HOA, KEY, NAI, NAT_SRC, SPI, T0, V4COA, V4MAPPED, a4, exchange, make_cache, ntp_timestamp

S = 1000


def signed_bu(seq, opts, v4_for_mac=V4COA, lifetime=150, key=KEY, flags=C.BU_A | C.BU_H | C.BU_F):
    """An authentic udp4 BU (MAC right under KEY for the CoA `v4_for_mac`) with exactly `opts`
    followed by the MN-HA option."""
    mac_coa = V4MAPPED + bytes(v4_for_mac)
    msg = BindingUpdate(seq, flags, lifetime, list(opts) + [mo.MobilityAuth(C.AUTH_MN_HA, SPI, None)])
    mh = msg.encode(src=HOA, dst=HA, mac=lambda p: crypto.mnha_auth_data(key, mac_coa, HOA, p))
    return build_ipv6(HOA, HA, C.NH_MH, mh)


def _two_coas(seq, now, first, second, sign_for):
    return signed_bu(seq, [mo.MNIdentifier(C.MNID_NAI, NAI), mo.IPv4CareofAddress(first),
                           mo.IPv4CareofAddress(second), mo.ReplayProtection(ntp_timestamp(now, seq))],
                     v4_for_mac=sign_for)


def test_two_ipv4_coa_options_are_refused_on_both_paths_whichever_one_the_mac_covers():
    other = a4("192.0.2.77")
    for fast in (True, False):
        for sign_for in (V4COA, other):
            c = make_cache(fast=fast)
            # the same layout, authenticated, twice: a cache that learnt it would take the fast path
            for i in (1, 2):
                assert exchange(c, _two_coas(i, T0 + i * S, V4COA, other, sign_for), NAT_SRC, T0 + i * S) == []
                ev = c.events()[-1]
                assert ev.kind == "bu_dropped" and "duplicated IPv4CareofAddress" in ev.reason, ev
            assert not c.bindings and not c._shapes


def test_other_duplicates_are_refused_too_and_padding_may_repeat():
    ts = ntp_timestamp(T0, 1)
    dup_ts = [mo.MNIdentifier(C.MNID_NAI, NAI), mo.IPv4CareofAddress(V4COA), mo.ReplayProtection(ts),
              mo.ReplayProtection(ts)]
    dup_id = [mo.MNIdentifier(C.MNID_NAI, NAI), mo.MNIdentifier(C.MNID_NAI, NAI), mo.IPv4CareofAddress(V4COA)]
    pads = [mo.MNIdentifier(C.MNID_NAI, NAI), mo.PadN(2), mo.IPv4CareofAddress(V4COA), mo.PadN(4)]
    for opts, ok in ((dup_ts, False), (dup_id, False), (pads, True)):
        c = make_cache()
        out = exchange(c, signed_bu(1, opts), NAT_SRC, T0)
        assert (HOA in c.bindings) == ok and len(out) == int(ok), (opts, out)


def _resum(pkt):
    b = bytearray(pkt)
    b[44:46] = b"\0\0"
    b[44:46] = struct.pack(">H", checksum6(HOA, HA, 135, bytes(b[40:])))
    return bytes(b)


def corpus(seed=1, n=1500):
    """(packet, now): authentic BUs of many layouts (some with duplicates), and mutations of them
    (bytes flipped, checksum made right again so the rules behind it run)."""
    rnd = random.Random(seed)
    other = a4("192.0.2.%d" % rnd.randrange(1, 250))
    seq = 0
    out = []
    for i in range(n):
        now = T0 + i * S
        seq = (seq + rnd.choice((1, 1, 1, 0, -1, 3))) & 0xFFFF
        ts = ntp_timestamp(now, i)
        opts = [mo.MNIdentifier(C.MNID_NAI, NAI)]
        kind = rnd.randrange(10)
        coa_first, coa_second = (V4COA, other) if rnd.random() < 0.5 else (other, V4COA)
        sign_for = rnd.choice((V4COA, other))
        if kind == 0:                                   # two IPv4 CoAs
            opts += [mo.IPv4CareofAddress(coa_first), mo.IPv4CareofAddress(coa_second)]
        elif kind == 1:                                 # two timestamps
            opts += [mo.IPv4CareofAddress(sign_for), mo.ReplayProtection(ts)]
        elif kind == 2:                                 # padding and an unknown option in between
            opts += [mo.PadN(rnd.choice((2, 3, 6))), mo.IPv4CareofAddress(sign_for), mo.UnknownOption(99, b"xy")]
        elif kind == 3:                                 # a BRA option (once is fine), or two
            opts += [mo.IPv4CareofAddress(sign_for)] + [mo.BindingRefreshAdvice(5)] * rnd.choice((1, 2))
        else:                                           # the MN's own layout
            opts += [mo.IPv4CareofAddress(sign_for)]
            sign_for = sign_for if rnd.random() < 0.9 else other   # sometimes a CoA the MAC does not cover
        if rnd.random() < 0.8:
            opts.append(mo.ReplayProtection(ts))
        pkt = signed_bu(seq, opts, v4_for_mac=sign_for, lifetime=rnd.choice((150, 150, 0, 3)))
        r = rnd.random()
        if r < 0.15:                                    # mutate one byte of the MH, fix the checksum
            b = bytearray(pkt)
            b[rnd.randrange(40, len(b))] ^= 1 << rnd.randrange(8)
            pkt = _resum(b)
        elif r < 0.2:
            pkt = pkt[:rnd.randrange(40, len(pkt))]
        out.append((pkt, now))
    return out


def _state(c):
    return {h: (b.peer, b.coa, b.seq, b.lifetime, b.transport) for h, b in c.bindings.items()}


def test_fast_and_codec_paths_agree_on_one_corpus():
    fast, slow = make_cache(fast=True), make_cache(fast=False)
    kinds = {}
    for pkt, now in corpus():
        a = exchange(fast, pkt, NAT_SRC, now, wall=now)
        b = exchange(slow, pkt, NAT_SRC, now, wall=now)
        assert a == b, pkt.hex()
        assert _state(fast) == _state(slow), pkt.hex()
        ea, eb = fast.events(), slow.events()
        assert [(e.kind, getattr(e, "status", None)) for e in ea] == [(e.kind, getattr(e, "status", None)) for e in eb]
        for e in ea:
            kinds[(e.kind, getattr(e, "status", None))] = kinds.get((e.kind, getattr(e, "status", None)), 0) + 1
    # the corpus really exercised both paths and the interesting outcomes
    assert fast._shapes and not slow._shapes
    assert kinds.get(("binding_refreshed", None), 0) > 50, kinds
    assert kinds.get(("bu_rejected", 146), 0) > 10 and kinds.get(("bu_rejected", 135), 0) > 10, kinds
    assert kinds.get(("bu_dropped", None), 0) > 100, kinds
