"""What the Cortex-M tests of the natmod core share (test_cortex_m0.py, test_cortex_m33.py): the
harness (m0_harness.c + r6_core.c) compiled by arm-none-eabi-gcc with -nostdlib, as the natmod
linker links, and a core in unicorn that calls its functions. Import after
pytest.importorskip("unicorn")."""
import os
import subprocess

from elftools.elf.elffile import ELFFile
from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3, UC_ARM_REG_SP

from roam6_host import natmod_build

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "m0_harness.c")
CODE, DATA, DATA_SIZE, STOP = 0x10000, 0x20000000, 0x40000, 0x30000


def build_harness(arch, cflags, folder):
    """(the .text bytes linked at CODE, {h_* name: address}) of the harness built for arch."""
    cc = natmod_build.find_compiler(arch)
    elf = os.path.join(str(folder), "harness.elf")
    subprocess.run([cc] + cflags + ["-ffreestanding", "-nostdlib", "-nostartfiles", "-Wl,-e,h_sum16",
                    "-Wl,-Ttext=0x%x" % CODE, "-I", natmod_build.NATMOD_SRC, HARNESS,
                    os.path.join(natmod_build.NATMOD_SRC, "r6_core.c"), "-o", elf],
                   check=True, capture_output=True, text=True)
    with open(elf, "rb") as f:
        ef = ELFFile(f)
        text = ef.get_section_by_name(".text")
        assert text["sh_addr"] == CODE
        image = text.data()
        symtab = ef.get_section_by_name(".symtab")
        symbols = {s.name: s["st_value"] & ~1 for s in symtab.iter_symbols() if s.name.startswith("h_")}
    assert set(symbols) >= {"h_sum16", "h_sha1", "h_hmac"}
    return image, symbols


class Core:
    """A Cortex-M `model` in unicorn running `image` at CODE; call(name, *words) runs a function."""

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
