"""firmware/natmod/r6_x25519.c on the emulated Cortex-M0 (host_tools/roam6_host/ipsec/m0_estimate.py,
`roam6 bench ipsec --m0`): it builds for armv6m without libc/libgcc, its field multiplication,
addition and subtraction agree with Python's arithmetic mod 2^255-19 on random and edge inputs,
and the cycle costing counts something. The whole X25519 (RFC 7748 vector, ~19 M cycles) is the
bench command's: too slow for a unit test in this emulator."""
import random
import struct

import pytest

pytest.importorskip("unicorn", reason="unicorn is in roam6[test]: `make setup`")  # noqa: E402

from roam6_host.ipsec import m0_estimate as m  # noqa: E402

P = 2 ** 255 - 19


def limbs(x):
    return struct.pack("<16I", *[(x >> (16 * i)) & 0xFFFF for i in range(16)])


def value(b):
    return sum(v << (16 * i) for i, v in enumerate(struct.unpack("<16I", b)))


def test_field_ops_on_the_m0_agree_with_python(tmp_path):
    image, syms, size = m.build(str(tmp_path))
    assert {"r6_x25519", "r6_fe_mul", "r6_fe_add", "r6_fe_sub"} <= set(syms) and size < 4096
    m0 = m._M0(image, syms)
    rnd = random.Random(25519)
    a_at, b_at, r_at = m.DATA, m.DATA + 64, m.DATA + 128
    cases = [(0, 0), (P - 1, P - 1), (2 ** 256 - 1, 2 ** 256 - 1), (1, 2 ** 256 - 1), (0, 5)]
    cases += [(rnd.getrandbits(256), rnd.getrandbits(256)) for _ in range(4)]
    for a, b in cases:
        m0.uc.mem_write(a_at, limbs(a))
        m0.uc.mem_write(b_at, limbs(b))
        for name, want in (("mul", a * b), ("add", a + b), ("sub", a - b)):
            cycles = m0.call("r6_fe_" + name, r_at, a_at, b_at)
            r = value(bytes(m0.uc.mem_read(r_at, 64)))
            assert r < 2 ** 256 and r % P == want % P, (name, hex(a), hex(b))
            assert cycles > (1000 if name == "mul" else 100)
    counts = m.field_op_counts()
    assert counts["mul"] + counts["sqr"] == 255 * 9 + 254 + 12 and counts["add"] == counts["sub"] == 1020
