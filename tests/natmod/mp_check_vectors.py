"""Check every tier of roam6's hot paths against CPython-made vectors, on the MicroPython unix port.

usage: micropython mp_check_vectors.py VECTORS_FILE   (MICROPYPATH: firmware/; ROAM6_NATMOD_DIR:
build/natmod). Every data length is checked at buffer offsets 0..7 through memoryview slices, and as
bytes; native HMAC both with and without its hashlib path. Prints one JSON line of counts and
exits 1 on the first mismatch, naming it.
"""
import json
import struct
import sys

from roam6 import accel, crypto, rrcrypto
from roam6.wire import checksum

KINDS = {1: "sum", 2: "rr"}


def fail(msg):
    print("MISMATCH " + msg)
    sys.exit(1)


def records(blob):
    assert blob[:4] == b"R6V1", "not a vectors file"
    count = struct.unpack_from(">I", blob, 4)[0]
    pos = 8
    nfields = {1: 11, 2: 14}
    for _ in range(count):
        kind = blob[pos]
        pos += 1
        fields = []
        for _ in range(nfields[kind]):
            n = struct.unpack_from(">H", blob, pos)[0]
            fields.append(blob[pos + 2:pos + 2 + n])
            pos += 2 + n
        yield kind, fields


def at_offset(data, off):
    """A memoryview of data placed `off` bytes into a larger buffer (any start address)."""
    buf = bytearray(off + len(data) + 3)
    buf[off:off + len(data)] = data
    return memoryview(buf)[off:off + len(data)]


def main(path):
    st = accel.status
    if st["native"] is None or not st["viper"]:
        fail("tiers missing: %s" % st)
    sums = accel.impls["inet_sum"]
    hmacs = accel.impls["hmac_sha1"]
    tiers = sorted(sums)
    if tiers != ["native", "python", "viper"] or sorted(hmacs) != tiers:
        fail("tiers registered: %s / %s" % (tiers, sorted(hmacs)))
    native = accel.native
    import hashlib
    cks = accel.impls["checksum6"]
    fins = accel.impls["finish"]
    if sorted(cks) != ["native", "python"] or sorted(fins) != ["native", "python"]:
        fail("checksum6/finish tiers: %s / %s" % (sorted(cks), sorted(fins)))
    counts = {"checksum6": 0, "sum": 0, "hmac": 0, "sha1": 0, "rr": 0, "errors": 0, "lengths": 0}
    with open(path, "rb") as f:
        blob = f.read()
    for kind, fl in records(blob):
        if kind == 1:
            data, key, acc, want_sum, want_hmac, want_sha1, src, dst, nh, want_ck, want_fin = fl
            acc, want_sum, nh, want_ck, want_fin = int(acc), int(want_sum), int(nh), int(want_ck), int(want_fin)
            n = len(data)
            counts["lengths"] += 1
            for off in range(8):
                mv = at_offset(data, off)
                kmv = at_offset(key, (off * 3) % 8)
                for t in tiers:
                    got = sums[t](mv, acc)
                    if got != want_sum:
                        fail("inet_sum %s len %d off %d acc %d: %r != %r" % (t, n, off, acc, got, want_sum))
                    got = hmacs[t](kmv, mv)
                    if got != want_hmac:
                        fail("hmac_sha1 %s len %d off %d klen %d" % (t, n, off, len(key)))
                    counts["sum"] += 1
                    counts["hmac"] += 1
                for t in cks:  # native and python (no viper version of these two)
                    if cks[t](at_offset(src, off), dst, nh, mv) != want_ck:
                        fail("checksum6 %s len %d off %d" % (t, n, off))
                    if want_fin >= 0 and fins[t](want_sum) != want_fin:
                        fail("finish %s of %d" % (t, want_sum))
                    counts["checksum6"] += 1
                if native.sha1(mv) != want_sha1:
                    fail("native sha1 len %d off %d" % (n, off))
                cut = (n * (off + 1)) // 9
                if native.sha1(mv[:cut], mv[cut:]) != want_sha1:
                    fail("native sha1 in two parts len %d cut %d" % (n, cut))
                a, b = (n * off) // 16, (n * (off + 8)) // 16
                if native.hmac_parts(kmv, 20, mv[:a], mv[a:b], mv[b:]) != want_hmac:
                    fail("native hmac_parts len %d cuts %d %d" % (n, a, b))
                counts["sha1"] += 2
                counts["hmac"] += 1
            # plain bytes, and the native HMAC forced through each of its two SHA-1 paths
            for t in tiers:
                if sums[t](data, acc) != want_sum or hmacs[t](key, data) != want_hmac:
                    fail("%s on bytes len %d" % (t, n))
            for use, least in ((None, 0), (hashlib.sha1, 0)):
                native.use_hashlib(use, least)
                if native.hmac_sha1(key, data) != want_hmac or native.hmac_parts(key, 20, data) != want_hmac:
                    fail("native hmac with use_hashlib(%r, %d) len %d" % (use, least, n))
            least = st["hashlib_min"]  # back to what accel set
            native.use_hashlib(hashlib.sha1 if least is not None else None, least or 0)
            counts["hmac"] += 4
        else:
            kcn, hoa, hn, coa, cnonce, cn, mh, key, ht, ct, kb, kbd, auth, mnha = fl
            # the public functions (on the native tier), then every tier of the hmac_parts they use
            for fn, args, want in (
                (rrcrypto.home_keygen_token, (kcn, hoa, hn), ht),
                (rrcrypto.careof_keygen_token, (kcn, coa, cnonce), ct),
                (rrcrypto.kbm, (ht, ct), kb),
                (rrcrypto.kbm, (ht,), kbd),
                (native.sha1, (ht, ct), kb),
                (rrcrypto.rr_authenticator, (kb, coa, cn, mh), auth),
                (crypto.mnha_auth_data, (key, at_offset(coa, 1), at_offset(hoa, 3), at_offset(mh, 5)), mnha),
            ):
                if fn(*args) != want:
                    fail("%s%r" % (fn, args))
                counts["rr"] += 1
            parts = accel.impls["hmac_parts"]
            if sorted(parts) != ["native", "python"]:
                fail("hmac_parts tiers: %s" % sorted(parts))
            for t in parts:
                for args, want in (((kcn, 8, hoa, hn, b"\x00"), ht), ((kcn, 8, coa, cnonce, b"\x01"), ct),
                                   ((kb, 12, coa, cn, mh), auth),
                                   ((key, 12, at_offset(coa, 1), at_offset(hoa, 3), at_offset(mh, 5)), mnha)):
                    if parts[t](*args) != want:
                        fail("hmac_parts %s" % t)
                    counts["rr"] += 1
            if crypto.hmac_parts is not parts["native"] or rrcrypto.hmac_parts is not parts["native"] \
                    or rrcrypto.kbm is not native.sha1:
                fail("roam6.crypto / roam6.rrcrypto are not the native tier")
    # data that is no buffer: every tier raises TypeError, as the Python one does. (A key that is
    # an int is not checked: the Python tier's bytes(key) turns 5 into five zero bytes.)
    for t in tiers:
        for fn, args in ((sums[t], (12345,)), (sums[t], (None, 0)), (hmacs[t], (b"k", 5)), (hmacs[t], (b"k", None))):
            try:
                fn(*args)
            except TypeError:
                counts["errors"] += 1
                continue
            fail("%s%r did not raise TypeError" % (t, args))
    if checksum.inet_sum is not sums["native"] or crypto.hmac_sha1 is not hmacs["native"]:
        fail("the roam6.* names are not the native tier")
    counts["tiers"] = tiers
    print(json.dumps(counts))


main(sys.argv[1])
