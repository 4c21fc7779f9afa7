"""`roam6 bench ipsec --m0`: the Cortex-M0+ (RP2040) cost of the MN's IKEv2 handshake, estimated.

Method (README Performance, "Cortex-M0 estimate"):
1. Field operations of one X25519, counted on roam6.ipsec.x25519's ladder (the MN's algorithm):
   per bit 4 squarings, 5 multiplications, 1 multiplication by a24, 4 additions, 4 subtractions,
   2 conditional swaps; 255 bits; then one inversion (here the 254-squaring, 11-multiplication
   chain; the Python firmware uses pow(), a square-and-multiply of ~250 more multiplications).
2. firmware/natmod/r6_x25519.c (16-bit limbs: ARMv6-M's MULS keeps only the low 32 bits of a
   product and the natmod links no libgcc) compiled by arm-none-eabi-gcc with the natmod's armv6m
   flags, -nostdlib, and run in unicorn's Cortex-M0: every executed basic block's Thumb
   instructions are classed and costed with the Cortex-M0+ timings (ARM DDI 0484C, 3.3: ALU and
   MULS (the RP2040's single-cycle multiplier) 1 cycle, LDR/STR 2, LDM/STM/PUSH/POP 1+N, a branch
   ending a block 2 (taken; an over-estimate when it falls through), BL 3, BX/BLX 2): cycles of
   one field multiplication, addition, subtraction, and of the whole X25519, whose result is
   checked against roam6.ipsec.x25519 (RFC 7748 §5.2's vector).
3. cycles / 133 MHz = time; the MN's handshake does two X25519 (its key pair and the shared
   secret). No flash wait states or XIP cache misses are modelled (code in SRAM / a warm cache).
Needs arm-none-eabi-gcc (deps/apt.txt: gcc-arm-none-eabi) and unicorn + pyelftools (roam6[test]).
"""
import os
import struct
import subprocess
import tempfile

from .. import natmod_build
from ..errors import UserError

CLOCK_HZ = 133_000_000
SRC = os.path.join(natmod_build.NATMOD_SRC, "r6_x25519.c")
CFLAGS = ["-mthumb", "-mcpu=cortex-m0", "-std=c99", "-Wall", "-Werror", "-fpic", "-fno-common",
          "-fno-tree-loop-distribute-patterns", "-O2", "-ffreestanding", "-nostdlib", "-nostartfiles"]
CODE, DATA, DATA_SIZE, STOP = 0x10000, 0x20000000, 0x40000, 0x30000
# per bit of the ladder, and the inversion chain
LADDER = {"mul": 5, "sqr": 4, "mul_a24": 1, "add": 4, "sub": 4, "cswap": 2}
INVERT = {"sqr": 254, "mul": 11}


def field_op_counts():
    """Field operations of one X25519 (255 ladder steps + inversion + the final multiplication)."""
    out = {k: 255 * v for k, v in LADDER.items()}
    out["sqr"] += INVERT["sqr"]
    out["mul"] += INVERT["mul"] + 1
    return out


def _thumb_cost(code):
    """Cycles of one basic block (Cortex-M0+ timings), its last instruction a taken branch if any."""
    cycles, i = 0, 0
    while i + 1 < len(code):
        hw = struct.unpack_from("<H", code, i)[0]
        if (hw >> 11) in (0b11101, 0b11110, 0b11111):           # 32-bit: BL (the only one here)
            cycles += 3
            i += 4
            continue
        i += 2
        if 0x4800 <= hw <= 0x4FFF or 0x5000 <= hw <= 0x9FFF:     # LDR literal, LDR/STR reg/imm/SP
            cycles += 2
        elif (hw & 0xFE00) in (0xB400, 0xBC00):                  # PUSH / POP (+LR / +PC)
            n = bin(hw & 0x1FF).count("1")
            cycles += 1 + n + (2 if (hw & 0xFF00) == 0xBD00 else 0)
        elif (hw & 0xF000) == 0xC000:                            # LDM / STM
            cycles += 1 + bin(hw & 0xFF).count("1")
        elif (hw & 0xF000) == 0xD000 and (hw & 0x0F00) < 0x0E00 or (hw & 0xF800) == 0xE000:
            cycles += 2                                          # B<cond> / B (taken)
        elif (hw & 0xFF00) == 0x4700:                            # BX / BLX
            cycles += 2
        else:                                                    # ALU, MOV, MULS, shifts: 1
            cycles += 1
    return cycles


class _M0:
    def __init__(self, image, symbols):
        from unicorn import UC_ARCH_ARM, UC_HOOK_BLOCK, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
        from unicorn.arm_const import UC_CPU_ARM_CORTEX_M0
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M0)
        self.uc.mem_map(CODE, 0x10000)
        self.uc.mem_map(STOP, 0x1000)
        self.uc.mem_map(DATA, DATA_SIZE)
        self.uc.mem_write(CODE, image)
        self.symbols = symbols
        self.costs, self.cycles = {}, 0
        self.uc.hook_add(UC_HOOK_BLOCK, self._block)

    def _block(self, uc, address, size, user):
        c = self.costs.get((address, size))
        if c is None:
            c = self.costs[(address, size)] = _thumb_cost(bytes(uc.mem_read(address, size)))
        self.cycles += c

    def call(self, name, *args):
        from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_SP
        for reg, val in zip((UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2), args):
            self.uc.reg_write(reg, val)
        self.uc.reg_write(UC_ARM_REG_SP, DATA + DATA_SIZE - 16)
        self.uc.reg_write(UC_ARM_REG_LR, STOP | 1)
        before = self.cycles
        self.uc.emu_start(self.symbols[name] | 1, STOP, count=100_000_000)
        return self.cycles - before


def build(folder):
    """(.text image at CODE, {symbol: address}) of r6_x25519.c for the Cortex-M0."""
    try:
        from elftools.elf.elffile import ELFFile
    except ImportError:
        raise UserError("pyelftools is missing", hint="pip install -e '.[test]' (or `make setup`)") from None
    cc = natmod_build.find_compiler("armv6m")
    elf = os.path.join(folder, "x25519_m0.elf")
    p = subprocess.run([cc] + CFLAGS + ["-Wl,-e,r6_x25519", "-Wl,-Ttext=0x%x" % CODE, SRC, "-o", elf],
                       capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError("arm-none-eabi-gcc failed on %s:\n%s" % (SRC, p.stderr))
    with open(elf, "rb") as f:
        ef = ELFFile(f)
        text = ef.get_section_by_name(".text")
        if text["sh_addr"] != CODE or ef.get_section_by_name(".data") is not None and \
                ef.get_section_by_name(".data").data_size:
            raise RuntimeError("r6_x25519.c must be .text only")
        syms = {s.name: s["st_value"] & ~1 for s in ef.get_section_by_name(".symtab").iter_symbols()
                if s.name.startswith("r6_")}
        return text.data(), syms, text.data_size


def run():
    try:
        import unicorn  # noqa: F401
    except ImportError:
        raise UserError("unicorn is missing (the Cortex-M0 emulator)",
                        hint="pip install -e '.[test]' (or `make setup`)") from None
    from roam6.ipsec import x25519
    with tempfile.TemporaryDirectory(prefix="roam6-m0-") as d:
        image, syms, text_bytes = build(d)
    m0 = _M0(image, syms)
    k = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    out, kp, up = DATA, DATA + 64, DATA + 128
    m0.uc.mem_write(kp, k)
    m0.uc.mem_write(up, u)
    fe_a, fe_b, fe_r = DATA + 256, DATA + 320, DATA + 384
    m0.uc.mem_write(fe_a, struct.pack("<16I", *[0xFFFF - i for i in range(16)]))
    m0.uc.mem_write(fe_b, struct.pack("<16I", *[0x1234 + 977 * i for i in range(16)]))
    per_op = {name: m0.call("r6_fe_" + name, fe_r, fe_a, fe_b) for name in ("mul", "add", "sub")}
    total = m0.call("r6_x25519", out, kp, up)
    res = bytes(m0.uc.mem_read(out, 32))
    want = x25519.x25519(k, u)
    if res != want or want.hex() != "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552":
        raise RuntimeError("the Cortex-M0 X25519 disagrees with roam6.ipsec.x25519 / RFC 7748: %s" % res.hex())
    ops = field_op_counts()
    modelled = (ops["mul"] + ops["sqr"] + ops["mul_a24"]) * per_op["mul"] + ops["add"] * per_op["add"] \
        + ops["sub"] * per_op["sub"]
    return {
        "method": "firmware/natmod/r6_x25519.c (16-bit limbs, MULS 16x16->32) built for armv6m, run in unicorn's "
                  "Cortex-M0, each executed block costed with Cortex-M0+ timings (ALU/MULS 1, LDR/STR 2, LDM/STM/"
                  "PUSH/POP 1+N, block-ending branch 2, BL 3); result checked against RFC 7748 §5.2",
        "clock_hz": CLOCK_HZ,
        "field_ops_per_x25519": ops,
        "cycles_per_field_op": per_op,
        "cycles_x25519": total,
        "cycles_x25519_from_op_counts": modelled,
        "ms_x25519_at_133mhz": round(total / CLOCK_HZ * 1000, 2),
        "ms_handshake_x25519_part_at_133mhz": round(2 * total / CLOCK_HZ * 1000, 2),
        "code_bytes": text_bytes,
        "note": "the handshake's two X25519 (key pair, shared secret) in C on the M0; not in roam6_native yet "
                "(rp2040 bundle: ~250 B left): the Python ladder on the board costs far more. Not modelled: "
                "flash wait states / XIP misses, and the handshake's Python (IKE payloads, prf+, HMAC: "
                "native SHA-1) and AES (cryptolib, C)",
    }
