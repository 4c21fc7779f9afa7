"""The natmod core (firmware/natmod/r6_core.c) on an emulated Cortex-M0, as built for the RP2040.

m0_harness.c + r6_core.c are compiled by Debian's arm-none-eabi-gcc with the natmod's armv6m flags
and linked with -nostdlib (no libc/libgcc, as in the natmod linker), then run in unicorn. Unicorn's
Cortex-M0 model neither faults on unaligned loads nor rejects Thumb-2, so the test checks both
itself: a memory hook fails on any 16/32-bit access at an unaligned address and a block hook
decodes every executed instruction and fails on anything ARMv6-M lacks. The checks are shown to
catch a deliberately bad instruction stream first. Results are compared with CPython's
hashlib/hmac on buffers at every offset mod 4.

Separately, every instruction of the real armv6m natmod objects is disassembled and checked.
"""
import hashlib
import hmac
import os
import random
import struct

import pytest

pytest.importorskip("unicorn", reason="unicorn is in roam6[test]: `make setup`")  # noqa: E402
from elftools.elf.elffile import ELFFile  # noqa: E402
from unicorn import UC_HOOK_BLOCK, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE  # noqa: E402
from unicorn.arm_const import UC_ARM_REG_PC, UC_CPU_ARM_CORTEX_M0  # noqa: E402

from armcore import CODE, DATA, STOP, Core, build_harness  # noqa: E402

from roam6_host import natmod_build

# the armv6m CFLAGS py/dynruntime.mk uses, plus the natmod Makefile's extras
M0_CFLAGS = ["-mthumb", "-mcpu=cortex-m0", "-std=c99", "-Os", "-Wall", "-Werror", "-fpic", "-fno-common",
             "-fno-tree-loop-distribute-patterns", "-O2"]


def thumb_violation(hw1, hw2):
    """Why an instruction (first halfword, second halfword or None) is not ARMv6-M, or None."""
    if hw2 is None:
        if (hw1 & 0xF500) == 0xB100:
            return "CBZ/CBNZ (Thumb-2 only)"
        if (hw1 & 0xFF00) == 0xBF00 and (hw1 & 0x000F):
            return "IT block (Thumb-2 only)"
        return None
    if (hw1 & 0xF800) == 0xF000 and (hw2 & 0xD000) == 0xD000:
        return None  # BL
    if hw1 in (0xF3BF,) and (hw2 & 0xFFF0) in (0x8F40, 0x8F50, 0x8F60):
        return None  # DSB, DMB, ISB
    if (hw1 & 0xFFE0) == 0xF380 or hw1 == 0xF3EF:
        return None  # MSR, MRS
    return "32-bit Thumb-2 instruction %04x %04x" % (hw1, hw2)


def split_thumb(code, base):
    """Yield (address, hw1, hw2 or None) for the Thumb instructions in code."""
    i = 0
    while i + 1 < len(code):
        hw1 = struct.unpack_from("<H", code, i)[0]
        if (hw1 >> 11) in (0b11101, 0b11110, 0b11111) and i + 3 < len(code):
            yield base + i, hw1, struct.unpack_from("<H", code, i + 2)[0]
            i += 4
        else:
            yield base + i, hw1, None
            i += 2


class M0(Core):
    """A Cortex-M0 in unicorn with alignment and ISA checks; call(name, *words) runs a function."""

    def __init__(self, image, symbols):
        Core.__init__(self, UC_CPU_ARM_CORTEX_M0, image, symbols)
        self.violations = []
        self.checked_blocks = set()
        self.accesses = 0
        self.uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, self._on_mem)
        self.uc.hook_add(UC_HOOK_BLOCK, self._on_block)

    def _on_mem(self, uc, access, address, size, value, user):
        self.accesses += 1
        if size > 1 and address % size:
            self.violations.append("unaligned %d-byte access at 0x%x (pc 0x%x)" % (size, address,
                                                                                   uc.reg_read(UC_ARM_REG_PC)))

    def _on_block(self, uc, address, size, user):
        if address in self.checked_blocks or address == STOP:
            return
        self.checked_blocks.add(address)
        for at, hw1, hw2 in split_thumb(bytes(uc.mem_read(address, size)), address):
            why = thumb_violation(hw1, hw2)
            if why:
                self.violations.append("%s at 0x%x" % (why, at))


@pytest.fixture(scope="module")
def m0(tmp_path_factory):
    image, symbols = build_harness("armv6m", M0_CFLAGS, tmp_path_factory.mktemp("m0"))
    return M0(image, symbols)


def ref_sum(data):
    padded = bytes(data) + (b"\x00" if len(data) % 2 else b"")
    return sum(struct.unpack(">%dH" % (len(padded) // 2), padded))


def test_checks_catch_unaligned_loads_and_thumb2():
    """The detectors themselves: an unaligned LDR, an LDR.W and a CBZ must each be reported."""
    bad = bytes.fromhex("0868") + bytes.fromhex("d1f80000") + bytes.fromhex("00b1") + bytes.fromhex("7047")
    cpu = M0(bad, {"f": CODE})
    cpu.write(DATA, b"\x01" * 8)  # nonzero, so the CBZ falls through to BX LR
    cpu.call("f", 0, DATA + 1)  # ldr r0,[r1] at an odd address; ldr.w r0,[r1]; cbz r0; bx lr
    kinds = " ".join(cpu.violations)
    assert "unaligned 4-byte access" in kinds
    assert "f8d1" in kinds or "32-bit Thumb-2" in kinds
    assert "CBZ" in kinds


def test_sum16_every_offset_matches_python(m0):
    rng = random.Random(5)
    for n in list(range(0, 70)) + [255, 256, 1023, 1500, 2000]:
        data = bytes(rng.getrandbits(8) for _ in range(n))
        for off in range(4):
            m0.write(DATA + off, data)
            assert m0.call("h_sum16", DATA + off, n) == ref_sum(data), (n, off)
    assert m0.violations == []
    assert m0.accesses > 1000


def test_sha1_every_offset_and_split_matches_hashlib(m0):
    rng = random.Random(6)
    out = DATA + 0x10000
    for n in list(range(0, 130, 7)) + [55, 56, 63, 64, 65, 119, 120, 1000]:
        data = bytes(rng.getrandbits(8) for _ in range(n))
        for off in range(4):
            split = rng.randint(0, n)
            m0.write(DATA + off, data)
            m0.call("h_sha1", DATA + off, n, split, out)
            assert m0.read(out, 20) == hashlib.sha1(data).digest(), (n, off, split)
    assert m0.violations == []


def test_hmac_parts_unaligned_matches_hmac(m0):
    rng = random.Random(7)
    args, out = DATA + 0x10000, DATA + 0x10100
    for case in range(24):
        key = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 16, 20, 63, 64, 65, 100])))
        parts = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 90))) for _ in range(3)]
        addr = DATA + 1 + case % 3  # odd and even starts
        ptrs = []
        for blob in [key] + parts:
            m0.write(addr, blob)
            ptrs += [addr, len(blob)]
            addr += len(blob) + 1 + rng.randint(0, 2)
        m0.write(args, struct.pack("<8I", *ptrs))
        m0.call("h_hmac", args, out)
        assert m0.read(out, 20) == hmac.new(key, b"".join(parts), "sha1").digest(), case
    assert m0.violations == []


def code_ranges(ef):
    """(section, start, end) of the Thumb code in an object: between a $t mapping symbol and the
    next $d ($d marks literal pools, data that must not be decoded as instructions)."""
    marks = {}
    for sym in ef.get_section_by_name(".symtab").iter_symbols():
        if sym.name in ("$t", "$d") or sym.name.startswith(("$t.", "$d.")):
            marks.setdefault(sym["st_shndx"], []).append((sym["st_value"], sym.name[1]))
    for idx, sec in enumerate(ef.iter_sections()):
        if not sec.name.startswith(".text") or not sec["sh_size"]:
            continue
        points = sorted(marks.get(idx, []))
        for i, (start, kind) in enumerate(points):
            end = points[i + 1][0] if i + 1 < len(points) else sec["sh_size"]
            if kind == "t" and end > start:
                yield sec, start, end


def test_natmod_armv6m_objects_are_armv6m_only():
    """Disassemble the objects linked into build/natmod/armv6m/roam6_native.mpy: Thumb-1 + BL only."""
    natmod_build.build_natmod("armv6m")
    obj_dir = os.path.join(natmod_build.cache_dir(), "natmod-obj", "armv6m")
    checked = 0
    for name in ("roam6_native.o", "r6_core.o"):
        with open(os.path.join(obj_dir, name), "rb") as f:
            ef = ELFFile(f)
            for sec, start, end in code_ranges(ef):
                for at, hw1, hw2 in split_thumb(sec.data()[start:end], start):
                    why = thumb_violation(hw1, hw2)
                    assert why is None, "%s %s+0x%x: %s" % (name, sec.name, at, why)
                    checked += 1
    assert checked > 200
