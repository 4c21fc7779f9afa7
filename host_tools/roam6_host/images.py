"""Firmware image checks done before any port or drive is touched: ESP images and UF2 files.

ESP image (esptool docs, "Firmware Image Format"): byte 0 magic 0xE9, byte 1 segment count,
bytes 8..23 the extended header whose bytes 12..13 are the chip id (little-endian). MicroPython's
ESP32 .bin starts with the bootloader image, so its first header names the chip. Past the quick
header checks, every image is loaded by esptool's own loader (esptool.bin_image) and its checksum
and appended SHA-256 compared; a file written below 0x8000 (the bootloader's offset) must also hold
the partition table at flash 0x8000 (ESP-IDF's layout: 32-byte entries, magic 0xAA50, then an MD5
entry 0xEBEB) and the image of its first app partition: a truncated .bin ends before one of them.
UF2 (github.com/microsoft/uf2): 512-byte blocks, magics 0x0A324655 0x9E5D5157 at 0 and
0x0AB16F30 at 508; flag 0x2000 means the word at 28 is a family id (RP2040: 0xE48BFF56).
"""
import os
import struct

from .errors import UserError

ESP_MAGIC = 0xE9
ESP_CHIP_IDS = {0: "ESP32", 2: "ESP32-S2", 5: "ESP32-C3", 9: "ESP32-S3", 12: "ESP32-C2", 13: "ESP32-C6",
                16: "ESP32-H2", 18: "ESP32-P4", 20: "ESP32-C61", 23: "ESP32-C5"}

UF2_MAGIC0, UF2_MAGIC1, UF2_MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
UF2_FLAG_NOT_MAIN_FLASH, UF2_FLAG_FAMILY = 0x00000001, 0x00002000
UF2_FAMILIES = {0xE48BFF56: "RP2040", 0xE48BFF57: "RP2XXX absolute", 0xE48BFF58: "RP2XXX data",
                0xE48BFF59: "RP2350 Arm secure", 0xE48BFF5A: "RP2350 RISC-V", 0xE48BFF5B: "RP2350 Arm non-secure",
                0x1C5F21B0: "ESP32", 0xADA52840: "nRF52840", 0x68ED2B88: "SAMD21", 0x55114460: "SAMD51"}
# blocks of this family are allowed beside the board's own: picotool adds one to work around
# RP2350-E10, and the RP2040 boot ROM skips families it does not know
UF2_IGNORABLE = {0xE48BFF57}


def _read(path, what):
    if not os.path.exists(path):
        raise UserError("firmware file %s does not exist" % path,
                        hint="download MicroPython for the board and pass its path with --firmware")
    if os.path.isdir(path):
        raise UserError("%s is a folder, not a firmware file" % path, hint="pass the %s file itself" % what)
    try:
        with open(path, "rb") as f:
            return f.read()
    except PermissionError:
        raise UserError("cannot read %s: permission denied" % path, hint="chmod a+r %s" % path) from None


def guess_kind(data):
    if len(data) >= 8 and struct.unpack_from("<II", data) == (UF2_MAGIC0, UF2_MAGIC1):
        return "a UF2 file (for RP2040/RP2350 boards: `roam6 flash --board rp2040`)"
    if data[:1] == bytes([ESP_MAGIC]):
        return "an ESP image"
    if data[:4] == b"\x7fELF":
        return "an ELF file (convert it: esptool elf2image, or use the .bin next to it)"
    if data[:1] == b":":
        return "an Intel HEX file"
    return "not a firmware image this tool knows"


PART_TABLE_FLASH = 0x8000            # where ESP-IDF's bootloader reads the partition table
PART_ENTRY, PART_MAGIC, PART_MD5_MAGIC = 32, b"\xaa\x50", b"\xeb\xeb"
PART_TYPE_APP = 0x00


def load_esp_image(data, chip, where):
    """esptool's image loader on `data` (an image at its start): the esptool image object, its
    checksum and appended SHA-256 checked. UserError naming `where` if it is cut short or damaged."""
    import hashlib

    from esptool.bin_image import LoadFirmwareImage
    try:
        img = LoadFirmwareImage(chip.lower(), bytes(data))
    except Exception as exc:   # noqa: BLE001 - esptool raises FatalError, struct.error, TypeError on a short read
        raise UserError("%s is truncated or damaged (esptool: %s)" % (where, str(exc) or type(exc).__name__),
                        hint="download the .bin again") from None
    if img.checksum != img.calculate_checksum():
        raise UserError("%s is damaged: checksum 0x%02x, its content gives 0x%02x"
                        % (where, img.checksum, img.calculate_checksum()), hint="download the .bin again")
    if img.append_digest:
        end = img.data_length
        if len(img.stored_digest) < 32:
            raise UserError("%s is truncated: its SHA-256 is cut short" % where, hint="download the .bin again")
        if img.stored_digest != hashlib.sha256(data[:end]).digest():
            raise UserError("%s is damaged: its SHA-256 does not match its content" % where,
                            hint="download the .bin again")
        img.total_length = end + 32
    else:
        img.total_length = img.data_length if img.data_length else len(data)
    return img


def partition_table(data, off, path):
    """The partitions [(type, subtype, flash offset, size, label)] of the table at data[off:];
    UserError when it is cut short, lacks its magic, or its MD5 does not match."""
    if len(data) < off + PART_ENTRY:
        raise UserError("%s is truncated: it ends at 0x%x, before the partition table at flash 0x%x"
                        % (path, len(data), PART_TABLE_FLASH), hint="download the .bin again")
    parts, pos = [], off
    while True:
        e = data[pos:pos + PART_ENTRY]
        if len(e) < PART_ENTRY:
            raise UserError("%s is truncated inside its partition table" % path, hint="download the .bin again")
        if e[:2] == PART_MAGIC:
            ptype, sub, poff, size = struct.unpack_from("<BBII", e, 2)
            parts.append((ptype, sub, poff, size, e[12:28].rstrip(b"\0").decode("ascii", "replace")))
        elif e[:2] == PART_MD5_MAGIC:
            import hashlib
            if e[16:] != hashlib.md5(data[off:pos]).digest():
                raise UserError("%s: its partition table is damaged (MD5 mismatch)" % path,
                                hint="download the .bin again")
            break
        elif e == b"\xff" * PART_ENTRY and parts:
            break                                     # a table written without an MD5 entry
        else:
            raise UserError("%s has no partition table at flash 0x%x (file offset 0x%x): it is truncated, damaged, "
                            "or not a complete firmware .bin" % (path, PART_TABLE_FLASH, off),
                            hint="download the .bin again (micropython.org's .bin for the board holds bootloader, "
                                 "partition table and app)")
        pos += PART_ENTRY
    return parts


def check_esp_image(path, chip_id, chip_name, offset=None):
    """Validate an ESP image for the board's chip; returns a summary dict. UserError on mismatch.
    offset: where the file is written in flash (board.json); below 0x8000 the file must also hold
    the partition table and the first app's image (see the module's docstring)."""
    data = _read(path, ".bin")
    if len(data) < 24 or data[0] != ESP_MAGIC:
        raise UserError("%s is not an ESP image (first byte 0x%02x, an ESP image starts with 0xE9): it is %s"
                        % (path, data[0] if data else 0, guess_kind(data)),
                        hint="download the .bin for %s from micropython.org" % chip_name)
    segments = data[1]
    if not 1 <= segments <= 16:
        raise UserError("%s: ESP image header claims %d segments (1..16 expected): the file is damaged"
                        % (path, segments),
                        hint="download it again")
    image_chip = struct.unpack_from("<H", data, 12)[0]
    if image_chip != chip_id:
        raise UserError("%s is built for %s (chip id %d), but this board is %s (chip id %d)"
                        % (path, ESP_CHIP_IDS.get(image_chip, "an unknown chip"), image_chip, chip_name, chip_id),
                        hint="download the MicroPython .bin made for %s" % chip_name)
    first = load_esp_image(data, chip_name, path)
    info = {"size": len(data), "segments": segments, "chip_id": image_chip, "entry": first.entrypoint, "apps": 0}
    if offset is None or offset >= PART_TABLE_FLASH:
        return info
    parts = partition_table(data, PART_TABLE_FLASH - offset, path)
    apps = [p for p in parts if p[0] == PART_TYPE_APP]
    if not apps:
        raise UserError("%s: its partition table has no app partition" % path, hint="download the .bin again")
    for n, (_t, _s, poff, _size, label) in enumerate(apps):
        at = poff - offset
        if n and (at >= len(data) or data[at] != ESP_MAGIC):
            continue                                  # a later (OTA) app partition may be left empty
        if at >= len(data):
            raise UserError("%s is truncated: it ends at flash 0x%x, before its app partition %r at 0x%x"
                            % (path, offset + len(data), label, poff), hint="download the .bin again")
        load_esp_image(data[at:], chip_name, "%s (app %r at flash 0x%x)" % (path, label, poff))
        info["apps"] += 1
    return info


def parse_uf2(data, path="UF2"):
    """Decode and validate every block; returns {'blocks', 'families': {id: count}, 'bytes'}."""
    if not data or len(data) % 512:
        raise UserError("%s is not a UF2 file: its size %d is not a multiple of 512" % (path, len(data)),
                        hint="it is %s" % guess_kind(data))
    families, total, num_blocks, expect = {}, 0, None, 0
    for off in range(0, len(data), 512):
        m0, m1, flags, _addr, size, blockno, nblocks, fam = struct.unpack_from("<8I", data, off)
        (mend,) = struct.unpack_from("<I", data, off + 508)
        if (m0, m1, mend) != (UF2_MAGIC0, UF2_MAGIC1, UF2_MAGIC_END):
            raise UserError("%s: block %d has bad UF2 magic numbers" % (path, off // 512),
                            hint="the file is damaged or %s" % guess_kind(data))
        if size > 476:
            raise UserError("%s: block %d claims %d payload bytes (at most 476)" % (path, off // 512, size),
                            hint="download it again")
        if not flags & UF2_FLAG_FAMILY:
            fam = None
        # block numbers restart per family section (picotool prepends one absolute block)
        if num_blocks is None or blockno == 0:
            num_blocks, expect = nblocks, 0
        if blockno != expect or nblocks != num_blocks:
            raise UserError("%s: block %d is numbered %d/%d, expected %d/%d: the file is truncated or damaged"
                            % (path, off // 512, blockno, nblocks, expect, num_blocks), hint="download it again")
        expect += 1
        if not flags & UF2_FLAG_NOT_MAIN_FLASH:
            total += size
        families[fam] = families.get(fam, 0) + 1
    if expect != num_blocks:
        raise UserError("%s ends after block %d of %d: the file is truncated" % (path, expect, num_blocks),
                        hint="download it again")
    return {"blocks": len(data) // 512, "families": families, "bytes": total}


def check_uf2(path, family_id, family_name):
    """Validate a UF2 for the board's family; returns the parse summary. UserError on mismatch."""
    data = _read(path, ".uf2")
    info = parse_uf2(data, path)
    fams = {f: n for f, n in info["families"].items() if f not in UF2_IGNORABLE}
    if family_id not in fams:
        named = ", ".join("%s (0x%08x)" % (UF2_FAMILIES.get(f, "unknown"), f) if f is not None else "no family id"
                          for f in fams) or "no family id"
        raise UserError("%s is for %s, but this board needs %s (family 0x%08x)" % (path, named, family_name, family_id),
                        hint="download the UF2 made for %s (Pico W: micropython.org/download/RPI_PICO_W, Pico 2 W: "
                             ".../RPI_PICO2_W), or leave --firmware out: roam6 flash fetches it" % family_name)
    others = [f for f in fams if f != family_id]
    if others:
        raise UserError("%s mixes families %s" % (path, ", ".join("0x%08x" % (f or 0) for f in others)),
                        hint="use a UF2 made for %s only" % family_name)
    return info
