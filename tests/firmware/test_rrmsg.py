"""roam6.wire.rrmsg (route optimisation's compact messages) against the general codec
(roam6_codec.mh): the same bytes out, the same fields in, and nothing read past a wrong length."""
from roam6_codec import mh as M
from roam6_codec import mhopts as O
from roam6.wire import rrmsg as R
from roam6.wire.addr import ip6_from_text

HOA = ip6_from_text("2001:db8:aa::100")
COA = ip6_from_text("2001:db8:a1::55")
CN = ip6_from_text("2001:db8:f3::2")
COOKIE = bytes(range(1, 9))
TOKEN = bytes(range(0x40, 0x48))


def _mac(data):
    # any 12 bytes that depend on every byte before the authenticator
    s = sum((i + 1) * b for i, b in enumerate(data))
    return bytes((s >> (i % 3 * 3) ^ i) & 0xFF for i in range(12))


def test_test_inits_are_the_general_codecs_bytes():
    assert R.encode_init(R.HOTI, COOKIE, HOA, CN) == M.HomeTestInit(COOKIE).encode(src=HOA, dst=CN)
    assert R.encode_init(R.COTI, COOKIE, COA, CN) == M.CareofTestInit(COOKIE).encode(src=COA, dst=CN)
    assert M.checksum_ok(R.encode_init(R.HOTI, COOKIE, HOA, CN), HOA, CN)


def test_bu_to_a_correspondent_is_the_general_codecs_bytes():
    for seq, life, hi, ci in ((1, 105, 7, 9), (0xFFFF, 0, 0xFFFF, 0), (300, 0xFFFF, 1, 2)):
        want = M.BindingUpdate(seq, 0x8000, life, [O.NonceIndices(hi, ci), O.BindingAuthData(None)]).encode(
            src=HOA, dst=CN, mac=_mac)
        assert R.encode_bu(seq, life, hi, ci, _mac, HOA, CN) == want
        back = M.decode_mh(want)
        assert (back.seq, back.flags, back.lifetime) == (seq, 0x8000, life)


def test_what_a_correspondent_sends_reads_as_the_general_codec_reads_it():
    hot = M.HomeTest(5, COOKIE, TOKEN).encode(src=CN, dst=HOA)
    assert R.decode(hot) == (R.HOT, 5, COOKIE, TOKEN)
    assert R.checksum_ok(hot, CN, HOA) and not R.checksum_ok(hot, CN, COA)
    assert R.decode(M.CareofTest(0xABCD, COOKIE, TOKEN).encode(src=CN, dst=COA)) == (R.COT, 0xABCD, COOKIE, TOKEN)
    ba = M.BindingAck(0, 0, 77, 105, [O.BindingAuthData(None)]).encode(src=CN, dst=HOA, mac=_mac)
    assert R.decode(ba) == (R.BA, 0, 77, 105, bytes(ba[-12:]))
    plain = M.BindingAck(136, 0, 78, 0).encode(src=CN, dst=HOA)
    assert R.decode(plain) == (R.BA, 136, 78, 0, None)          # no authenticator to check
    be = M.BindingError(2, HOA).encode(src=CN, dst=HOA)
    assert R.decode(be) == (R.BE, 2, HOA)
    assert R.decode(M.BindingRefreshRequest().encode(src=CN, dst=HOA)) == (R.BRR,)


def test_wrong_lengths_and_other_types_are_none():
    hot = M.HomeTest(5, COOKIE, TOKEN).encode(src=CN, dst=HOA)
    assert R.decode(hot[:-8]) is None                          # Header Len says more
    assert R.decode(hot + bytes(8)) is None                    # more than Header Len says
    assert R.decode(b"") is None and R.decode(hot[:7]) is None
    bad = bytearray(M.BindingAck(0, 0, 1, 1, [O.BindingAuthData(None)]).encode(src=CN, dst=HOA, mac=_mac))
    bad[13] = 40                                               # the option runs past the end
    assert R.decode(bytes(bad)) is None
    assert R.decode(M.HomeTestInit(COOKIE).encode(src=HOA, dst=CN)) is None     # sent, never read
    assert R.decode(M.Heartbeat(0, 1).encode(src=CN, dst=HOA)) is None
    short = bytearray(8)                                       # a HoT whose fixed fields do not fit
    short[0], short[1], short[2] = 59, 0, R.HOT
    assert R.decode(bytes(short)) is None


def test_payload_proto_other_than_59_is_none():
    """RFC 6275 §9.2: a Mobility Header whose Payload Proto is not IPPROTO_NONE is discarded."""
    for msg in (M.HomeTest(5, COOKIE, TOKEN), M.BindingRefreshRequest(), M.BindingError(1, HOA)):
        good = msg.encode(src=CN, dst=HOA)
        assert R.decode(good) is not None
        msg.payload_proto = 6
        assert R.decode(msg.encode(src=CN, dst=HOA)) is None
