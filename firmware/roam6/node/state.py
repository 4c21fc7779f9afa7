"""The MN's small state file (sequence-number reservation, clock offset), written atomically.

save_state writes `path.tmp`, flushes it to the medium and renames it over `path`: on POSIX and
littlefs a rename replaces the old file in one step, so a power cut leaves either the old or the
new file, never half of one. On FAT (no atomic replace) the old file is removed first; load_state
then falls back to `path.tmp`, which is complete whenever it was renamed-from.
"""
import json
import os

from roam6.compat import const

_VERSION = const(1)


def load_state(path):
    """The saved dict {"seq", "ntp_offset_ms"}, or None when there is none (or it is unreadable:
    a corrupt file is treated as absent, and the HA's 135 answer resynchronises the sequence)."""
    for p in (path, path + ".tmp"):
        try:
            with open(p) as f:
                d = json.loads(f.read())
        except (OSError, ValueError):
            continue
        if not isinstance(d, dict) or d.get("v") != _VERSION:
            continue
        seq = d.get("seq")
        off = d.get("ntp_offset_ms", 0)
        if isinstance(seq, int) and 0 <= seq <= 0xFFFF and isinstance(off, int):
            return {"seq": seq, "ntp_offset_ms": off}
    return None


def save_state(path, state):
    tmp = path + ".tmp"
    d = {"v": _VERSION, "seq": state["seq"] & 0xFFFF,
         "ntp_offset_ms": int(state.get("ntp_offset_ms", 0))}
    with open(tmp, "w") as f:
        f.write(json.dumps(d))
        f.flush()
        sync = getattr(os, "fsync", None)   # to the medium before the rename
        if sync is not None:
            try:
                sync(f.fileno())
            except (OSError, AttributeError):
                pass
    try:
        os.rename(tmp, path)
    except OSError:
        # FAT: rename does not replace. Removing first opens a window in which only tmp exists,
        # which load_state reads.
        try:
            os.remove(path)
        except OSError:
            pass
        os.rename(tmp, path)
