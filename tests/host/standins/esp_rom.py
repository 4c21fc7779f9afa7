"""Stand-in for an ESP32 in download mode, on the master side of a pseudo-terminal: it speaks the
serial protocol of the ROM bootloader and of esptool's flasher stub (SLIP frames, as documented in
esptool's "Serial Protocol" page) well enough for the real esptool to connect, upload its stub,
erase and write compressed data, and verify it by MD5. The flash is a bytearray the test reads.

There is no chip here; this is the test double that lets `roam6 flash` run esptool end to end.
"""
import hashlib
import os
import struct
import threading
import zlib

SYNC, READ_REG, WRITE_REG = 0x08, 0x0A, 0x09
MEM_BEGIN, MEM_END, MEM_DATA = 0x05, 0x06, 0x07
SPI_SET_PARAMS, SPI_ATTACH, CHANGE_BAUD = 0x0B, 0x0D, 0x0F
FLASH_DEFL_BEGIN, FLASH_DEFL_DATA, FLASH_DEFL_END, SPI_FLASH_MD5 = 0x10, 0x11, 0x12, 0x13
GET_SECURITY_INFO, ERASE_FLASH = 0x14, 0xD0
FLASH_BEGIN, FLASH_DATA, FLASH_END = 0x02, 0x03, 0x04

MAGIC_REG = 0x40001000
MAGIC = {"ESP32": 0x00F01D83, "ESP32-S2": 0x000007C6}
FLASH_ID = 0x1640EF            # Winbond, 4 MB
SPI_W0 = {"ESP32": 0x3FF42000 + 0x80, "ESP32-S2": 0x3F402000 + 0x58}
UART_CLKDIV = {"ESP32": 0x3FF40014, "ESP32-S2": 0x3F400014}


def slip(data):
    return b"\xc0" + data.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class EspRom:
    def __init__(self, chip="ESP32", flash_size=4 << 20):
        self.chip = chip
        self.flash = bytearray(b"\xff" * flash_size)
        self.master, self.slave = os.openpty()
        self.port = os.ttyname(self.slave)
        self.stub = False
        self.commands = []
        self._stop = False
        self._defl = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def close(self):
        self._stop = True
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self._thread.join(5)

    # ---- wire -------------------------------------------------------------------------------
    def _frames(self):
        buf, inside, esc = bytearray(), False, False
        while not self._stop:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            for b in chunk:
                if b == 0xC0:
                    if inside and buf:
                        yield bytes(buf)
                    buf, inside = bytearray(), True
                elif inside:
                    if esc:
                        buf.append(0xC0 if b == 0xDC else 0xDB)
                        esc = False
                    elif b == 0xDB:
                        esc = True
                    else:
                        buf.append(b)

    def _reply(self, op, value=0, data=b"", ok=True, reason=0):
        status = bytes([0 if ok else 1, reason]) + (b"" if self.stub else b"\0\0")
        body = data + status
        os.write(self.master, slip(struct.pack("<BBHI", 1, op, len(body), value) + body))

    def _run(self):
        for frame in self._frames():
            if len(frame) < 8 or frame[0] != 0:
                continue
            _d, op, size, _chk = struct.unpack_from("<BBHI", frame)
            self.commands.append(op)
            self._handle(op, frame[8:8 + size])

    # ---- commands ---------------------------------------------------------------------------
    def _handle(self, op, data):
        if op == SYNC:
            for _ in range(8):
                self._reply(op, value=0 if self.stub else 0x20120707)
        elif op == READ_REG:
            (addr,) = struct.unpack_from("<I", data)
            value = 0
            if addr == MAGIC_REG:
                value = MAGIC[self.chip]
            elif addr == SPI_W0[self.chip]:
                value = FLASH_ID
            elif addr == UART_CLKDIV[self.chip]:
                value = 40000000 // 115200   # a 40 MHz crystal at 115200 baud
            self._reply(op, value=value)
        elif op == GET_SECURITY_INFO and not self.stub:
            self._reply(op, ok=False, reason=0x05)   # the ESP32 ROM does not know it
        elif op == MEM_END:
            self._reply(op)
            (no_entry, _entry) = struct.unpack_from("<II", data)
            if not no_entry:
                self.stub = True                     # "run" the stub: it greets
                os.write(self.master, slip(b"OHAI"))
        elif op == FLASH_DEFL_BEGIN:
            erase, _blocks, _bs, offset = struct.unpack_from("<IIII", data)
            self._defl = [offset, zlib.decompressobj()]
            self._reply(op)
        elif op == FLASH_DEFL_DATA:
            n, _seq = struct.unpack_from("<II", data)
            out = self._defl[1].decompress(data[16:16 + n])
            off = self._defl[0]
            self.flash[off:off + len(out)] = out
            self._defl[0] += len(out)
            self._reply(op)
        elif op == SPI_FLASH_MD5:
            addr, size = struct.unpack_from("<II", data)
            digest = hashlib.md5(bytes(self.flash[addr:addr + size])).digest()
            self._reply(op, data=digest if self.stub else digest.hex().encode())
        elif op == ERASE_FLASH:
            self.flash[:] = b"\xff" * len(self.flash)
            self._reply(op)
        else:  # MEM_BEGIN/DATA, WRITE_REG, SPI_ATTACH/SET_PARAMS, CHANGE_BAUD, FLASH_DEFL_END ...
            self._reply(op)
