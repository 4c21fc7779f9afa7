"""roam6.accel on CPython (Python tier only) and MicroPython (native, viper, Python): every tier
that loaded gives the same results, on docs/PROTOCOL-NOTES.md §10.3 / RFC 2202 vectors and on buffers
of many lengths at every offset; the public functions built on them (roam6.crypto.mnha_auth_data,
roam6.rrcrypto) give the same vectors. (The exhaustive property test against CPython's hmac/hashlib is
tests/natmod/test_native_vectors.py.)"""
import os

from support import IS_MICROPYTHON, unhex
from roam6 import accel, crypto, rrcrypto
from roam6.wire import checksum
from roam6.wire.addr import ip6_from_text

KCN = unhex("000102030405060708090a0b0c0d0e0f10111213")
HOA = ip6_from_text("2001:db8:1::100")
COA = ip6_from_text("2001:db8:2::200")
CN = ip6_from_text("2001:db8:3::300")
KBM = unhex("80f42ffbdb0969b40a3a8c131b675650d340f1a4")
HT = unhex("c71a754160cffb9a")
CT = unhex("e24f4365fdaeafa7")

BU_RR = unhex("3b0305000000000180000069040400050006050c")
BU_MNHA = unhex("3b05050000000007c0000096080f016d6e406578616d706c652e636f6d09110100000100")

# (module, function name, arguments, expected) from docs/PROTOCOL-NOTES.md §10.3 and RFC 2202; the hot
# paths' every tier is checked (accel.impls), the functions built on them through their public name
VECTORS = (
    (crypto, "hmac_sha1", (b"\x0b" * 20, b"Hi There"), "b617318655057264e28bc0b6fb378c8ef146be00"),
    (crypto, "hmac_sha1", (b"\xaa" * 80, b"Test Using Larger Than Block-Size Key - Hash Key First"),
     "aa4ae5e15272d00e95705637ce8a3b55ed402112"),
    (crypto, "hmac_parts", (KCN, 8, HOA, unhex("1111111111111111"), b"\x00"), "c71a754160cffb9a"),
    (crypto, "hmac_parts", (KBM, 12, COA, CN, BU_RR), "1f546d90e3044a169eec9b03"),
    (crypto, "hmac_parts", (b"\x0b" * 16, 12, COA, HOA, BU_MNHA), "d83b8d94266ac94371f6da76"),
    (crypto, "hmac_parts", (b"\x0b" * 20, 20, b"Hi ", b"There"), "b617318655057264e28bc0b6fb378c8ef146be00"),
    (crypto, "hmac_parts", (b"\x0b" * 20, 20, b"Hi There"), "b617318655057264e28bc0b6fb378c8ef146be00"),
    (rrcrypto, "home_keygen_token", (KCN, HOA, unhex("1111111111111111")), "c71a754160cffb9a"),
    (rrcrypto, "careof_keygen_token", (KCN, COA, unhex("2222222222222222")), "e24f4365fdaeafa7"),
    (rrcrypto, "kbm", (HT, CT), "80f42ffbdb0969b40a3a8c131b675650d340f1a4"),
    (rrcrypto, "kbm", (HT,), "58d846675f1dfd21cce5949d3a1e1a0c2d888dfa"),
    (rrcrypto, "rr_authenticator", (KBM, COA, CN, BU_RR), "1f546d90e3044a169eec9b03"),
    (crypto, "mnha_auth_data", (b"\x0b" * 16, COA, HOA, BU_MNHA), "d83b8d94266ac94371f6da76"),
)


def _data(n, seed):
    """Deterministic bytes (an LCG) that look random enough for sums and MACs."""
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = x >> 16 & 0xFF
    return bytes(out)


def _at(data, off):
    buf = bytearray(off + len(data) + 1)
    buf[off:off + len(data)] = data
    return memoryview(buf)[off:off + len(data)]


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def test_tiers_present_for_this_interpreter():
    if not IS_MICROPYTHON:
        assert accel.native is None and accel.viper is None
        assert accel.tier("inet_sum") == "python" and accel.tier("hmac_sha1") == "python"
        return
    assert accel.status["arch"] is not None, accel.status
    if accel.status["cap"] != "python":
        assert accel.status["viper"], accel.status  # the unix port has the viper emitter
    built = [d for d in accel.native_dirs(accel.status["arch"]) if _exists(d + "/roam6_native.mpy")]
    if built and accel.status["cap"] == "native":
        # a module that was built for this arch must load: a silent fallback would hide a bug
        assert accel.native is not None, accel.status
        assert accel.tier("inet_sum") == "native" and checksum.inet_sum is accel.impls["inet_sum"]["native"]


def test_roam6_names_are_the_chosen_tier():
    for mod, name in ((checksum, "inet_sum"), (checksum, "finish"), (checksum, "checksum6"),
                      (crypto, "hmac_sha1"), (crypto, "hmac_parts")):
        assert getattr(mod, name) is accel.impls[name][accel.tier(name)]
    # route optimisation's HMACs are the chosen hmac_parts; its Kbm the native SHA-1 when native won
    assert rrcrypto.hmac_parts is crypto.hmac_parts
    assert (rrcrypto.kbm is getattr(accel.native, "sha1", None)) == (accel.tier("hmac_parts") == "native")


def test_vectors_every_tier():
    checked = 0
    for mod, name, args, want in VECTORS:
        assert getattr(mod, name)(*args) == unhex(want), name
        for tier, fn in accel.impls.get(name, {}).items():
            assert fn(*args) == unhex(want), (name, tier)
            checked += 1
    assert checked >= 7


def test_tiers_agree_on_lengths_and_offsets():
    sums = accel.impls["inet_sum"]
    macs = accel.impls["hmac_sha1"]
    key = _data(16, 7)
    for n in list(range(0, 140)) + [511, 512, 513, 1499, 1500]:
        data = _data(n, n)
        want_sum = sums["python"](data, 0)
        want_mac = macs["python"](key, data)
        want_ck = accel.impls["checksum6"]["python"](HOA, CN, 17, data)
        for off in range(4):
            mv = _at(data, off)
            for tier in sums:
                assert sums[tier](mv) == want_sum, (tier, n, off)
                assert sums[tier](mv, 70000) == want_sum + 70000, (tier, n, off)
            for tier in macs:
                assert macs[tier](_at(key, 3 - off), mv) == want_mac, (tier, n, off)
            for tier, fn in accel.impls["checksum6"].items():
                assert fn(_at(HOA, off), CN, 17, mv) == want_ck, (tier, n, off)


def test_finish_every_tier():
    for acc in (0, 1, 0xFFFF, 0x10000, 0x1FFFE, 0xFFFFFFFF, 0x123456789, (1 << 40) + 5, (1 << 70) + 3, 2 ** 64 - 1):
        want = accel.impls["finish"]["python"](acc)
        for tier, fn in accel.impls["finish"].items():
            assert fn(acc) == want, (tier, acc)


def test_checksum6_on_the_fast_tier():
    # docs/PROTOCOL-NOTES.md §10.2 (1): a BRR from 2001:db8::1 to 2001:db8::2 carries checksum 0x68fb
    src = ip6_from_text("2001:db8::1")
    dst = ip6_from_text("2001:db8::2")
    mh = bytearray(unhex("3b000000000000 00".replace(" ", "")))
    assert checksum.checksum6(src, dst, 135, mh) == 0x68FB
    mh[4:6] = b"\x68\xfb"
    assert checksum.checksum6(src, dst, 135, memoryview(mh)) == 0


def test_native_dirs_on_a_board_and_in_a_checkout():
    # a board: the bundle's files at the filesystem root or under /lib, imported by absolute or
    # relative path; the module sits next to the roam6 package
    assert accel.native_dirs("armv6m", "/roam6/accel.mpy")[-1] == "/"
    assert accel.native_dirs("armv6m", "/lib/roam6/accel.mpy")[-1] == "/lib"
    assert accel.native_dirs("xtensawin", "roam6/accel.mpy")[-1] == "."
    # a checkout: build/natmod/<arch> beside firmware/
    # (the last two: $ROAM6_NATMOD_DIR, when set, adds folders in front)
    assert accel.native_dirs("x64", "/src/r6/firmware/roam6/accel.py")[-2:] == ["/src/r6/build/natmod/x64",
                                                                              "/src/r6/firmware"]


def test_pick_falls_back_to_python_for_an_unknown_name():
    def f(x):
        return x + 1

    assert accel.pick("not_a_hot_path", f) is f
    assert accel.impls["not_a_hot_path"] == {"python": f}
    assert accel.tier("not_a_hot_path") == "python"
