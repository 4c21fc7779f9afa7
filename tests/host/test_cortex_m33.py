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
import os
import random
import struct
import subprocess

import pytest

pytest.importorskip("unicorn", reason="unicorn is in roam6[test]: `make setup`")  # noqa: E402
from elftools.elf.elffile import ELFFile  # noqa: E402
from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc  # noqa: E402
from unicorn.arm_const import (UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2,  # noqa: E402
                               UC_ARM_REG_R3, UC_ARM_REG_SP, UC_CPU_ARM_CORTEX_M4, UC_CPU_ARM_CORTEX_M33)

from roam6_host import natmod_build

HARNESS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "natmod", "m0_harness.c")
# the armv7emsp CFLAGS of py/dynruntime.mk, plus the natmod Makefile's extras
M4_CFLAGS = ["-mthumb", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-std=c99", "-Os", "-Wall",
             "-Werror", "-fpic", "-fno-common", "-fno-tree-loop-distribute-patterns", "-O2"]
CODE, DATA, DATA_SIZE, STOP = 0x10000, 0x20000000, 0x40000, 0x30000


class Core:
    def __init__(self, model, image, symbols):
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(model)
        self.uc.mem_map(CODE, 0x10000)
        self.uc.mem_map(STOP, 0x1000)
        self.uc.mem_map(DATA, DATA_SIZE)
        self.uc.mem_write(CODE, image)
        self.symbols = symbols

    def write(self, addr, data):
        self.uc.mem_write(addr, bytes(data))

    def read(self, addr, n):
        return bytes(self.uc.mem_read(addr, n))

    def call(self, name, *args):
        for reg, val in zip((UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3), args):
            self.uc.reg_write(reg, val)
        self.uc.reg_write(UC_ARM_REG_SP, DATA + DATA_SIZE - 16)
        self.uc.reg_write(UC_ARM_REG_LR, STOP | 1)
        self.uc.emu_start(self.symbols[name] | 1, STOP, count=5_000_000)
        return self.uc.reg_read(UC_ARM_REG_R0)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    cc = natmod_build.find_compiler("armv7emsp")
    elf = str(tmp_path_factory.mktemp("m4") / "harness.elf")
    subprocess.run([cc] + M4_CFLAGS + ["-ffreestanding", "-nostdlib", "-nostartfiles", "-Wl,-e,h_sum16",
                    "-Wl,-Ttext=0x%x" % CODE, "-I", natmod_build.NATMOD_SRC, HARNESS,
                    os.path.join(natmod_build.NATMOD_SRC, "r6_core.c"), "-o", elf], check=True, capture_output=True)
    with open(elf, "rb") as f:
        ef = ELFFile(f)
        text = ef.get_section_by_name(".text")
        assert text["sh_addr"] == CODE
        data = text.data()
        symbols = {s.name: s["st_value"] & ~1 for s in ef.get_section_by_name(".symtab").iter_symbols()
                   if s.name.startswith("h_")}
    assert set(symbols) >= {"h_sum16", "h_sha1", "h_hmac"}
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
