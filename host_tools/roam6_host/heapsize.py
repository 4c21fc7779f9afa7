"""`--heap SIZE`: the MicroPython heap of a board or MN that a roam6 command starts, written the way
MicroPython itself takes it in `micropython -X heapsize=SIZE`: a number of bytes, or with a K or M
suffix (KiB, MiB; either case). `--heap 64K`, `--heap 1M`, `--heap 65536` are the same kind of
thing on every command; `--heap 100` is 100 bytes, and refused as too small.

One parser for every --heap option of the CLI (`roam6 hil run roam|bootstrap|register`, `roam6
bench footprint`): `heap_size` is the argparse type (it keeps the text, which is what `-X
heapsize=` is given), `heap_bytes` the number when a command needs one.
"""
from .errors import UserError

MIN_BYTES = 16 * 1024           # below this the MN does not even import
MAX_BYTES = 64 * 1024 * 1024
HELP = "as in micropython -X heapsize=: bytes, or with K or M, e.g. 64K or 1M (16K to 64M)"
_UNITS = {"K": 1024, "M": 1024 * 1024}


def heap_bytes(text):
    """The heap size `text` (as `-X heapsize=` takes it) in bytes; UserError when it is not one."""
    t = str(text).strip()
    mult = _UNITS.get(t[-1:].upper(), 1)
    digits = t[:-1] if mult != 1 else t
    if not (digits.isascii() and digits.isdigit()):
        raise UserError("--heap %r is not a heap size" % text,
                        hint="bytes, or with K or M as in micropython -X heapsize=: --heap 100K")
    n = int(digits) * mult
    if n < MIN_BYTES:
        if mult == 1:
            kb = int(digits) if 16 <= int(digits) <= 65536 else 100
            hint = "a plain number is bytes, as in micropython -X heapsize=: did you mean --heap %dK?" % kb
        else:
            hint = "the MN needs tens of KB: e.g. --heap 100K"
        raise UserError("--heap %s is %d bytes, below the 16K minimum" % (t, n), hint=hint)
    if n > MAX_BYTES:
        raise UserError("--heap %s is more than 64M" % t, hint="a board's heap is KBs: e.g. --heap 100K")
    return n


def heap_size(text):
    """argparse type for --heap: checks `text` with heap_bytes and returns it as `-X heapsize=` takes it.
    A mistake raises UserError, which the CLI prints as `roam6: error: ...` (exit 2), no traceback."""
    heap_bytes(text)
    return str(text).strip()


def as_kb(text):
    """The heap size in KB (an int when it is whole KBs), for board profiles' `heap_kb`."""
    n = heap_bytes(text)
    return n // 1024 if n % 1024 == 0 else n / 1024
