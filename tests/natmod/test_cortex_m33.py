"""The natmod core (firmware/natmod/r6_core.c) as built for the Pico 2 W (armv7emsp) on an emulated
Cortex-M33, the RP2350's Arm core, and on a Cortex-M4, the core armv7emsp's flags name.

tests/natmod/m0_harness.c + r6_core.c are compiled by Debian's arm-none-eabi-gcc with the flags
py/dynruntime.mk uses for armv7emsp (-mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard) plus the
natmod Makefile's, linked with -nostdlib (no libc/libgcc, as in the natmod linker), and run in
unicorn. Results are compared with CPython's hashlib/hmac on buffers at every offset mod 4
(ARMv7-M and ARMv8-M Mainline allow unaligned LDR/STR, so unlike the M0 test there is no
alignment check; an instruction the core cannot run raises in unicorn and fails the test).
Not tested: the RP2350's memory map, caches and timing (unicorn models the core only).
"""
import hashlib
import hmac
import random
import struct

import pytest

pytest.importorskip("unicorn", reason="unicorn is in roam6[test]: `make setup`")  # noqa: E402
from unicorn.arm_const import UC_CPU_ARM_CORTEX_M4, UC_CPU_ARM_CORTEX_M33  # noqa: E402

from armcore import DATA, Core, build_harness  # noqa: E402
# the armv7emsp CFLAGS of py/dynruntime.mk, plus the natmod Makefile's extras
M4_CFLAGS = ["-mthumb", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-std=c99", "-Os", "-Wall",
             "-Werror", "-fpic", "-fno-common", "-fno-tree-loop-distribute-patterns", "-O2"]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    data, symbols = build_harness("armv7emsp", M4_CFLAGS, tmp_path_factory.mktemp("m4"))
    # Thumb-2 is really used (32-bit encodings present): this is not the armv6m code again
    halfwords = struct.unpack("<%dH" % (len(data) // 2), data[: len(data) // 2 * 2])
    assert sum(1 for h in halfwords if (h >> 11) in (0b11101, 0b11110, 0b11111)) > 20
    return data, symbols


@pytest.fixture(params=[("M33", UC_CPU_ARM_CORTEX_M33), ("M4", UC_CPU_ARM_CORTEX_M4)], ids=lambda p: p[0])
def core(request, image):
    return Core(request.param[1], *image)


def ref_sum(data):
    padded = bytes(data) + (b"\x00" if len(data) % 2 else b"")
    return sum(struct.unpack(">%dH" % (len(padded) // 2), padded))


def test_sum16_every_offset_matches_python(core):
    rng = random.Random(5)
    for n in list(range(0, 70)) + [255, 1500]:
        data = bytes(rng.getrandbits(8) for _ in range(n))
        for off in range(4):
            core.write(DATA + off, data)
            assert core.call("h_sum16", DATA + off, n) == ref_sum(data), (n, off)


def test_sha1_every_offset_and_split_matches_hashlib(core):
    rng = random.Random(6)
    out = DATA + 0x10000
    for n in list(range(0, 130, 13)) + [55, 56, 64, 65, 1000]:
        data = bytes(rng.getrandbits(8) for _ in range(n))
        for off in range(4):
            split = rng.randint(0, n)
            core.write(DATA + off, data)
            core.call("h_sha1", DATA + off, n, split, out)
            assert core.read(out, 20) == hashlib.sha1(data).digest(), (n, off, split)


def test_hmac_parts_unaligned_matches_hmac(core):
    rng = random.Random(7)
    args, out = DATA + 0x10000, DATA + 0x10100
    for case in range(12):
        key = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 16, 20, 64, 65, 100])))
        parts = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 90))) for _ in range(3)]
        addr = DATA + 1 + case % 3
        ptrs = []
        for blob in [key] + parts:
            core.write(addr, blob)
            ptrs += [addr, len(blob)]
            addr += len(blob) + 1 + rng.randint(0, 2)
        core.write(args, struct.pack("<8I", *ptrs))
        core.call("h_hmac", args, out)
        assert core.read(out, 20) == hmac.new(key, b"".join(parts), "sha1").digest(), case
