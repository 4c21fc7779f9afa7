"""The MN's small state file (sequence-number reservation, clock offset), written atomically.

save_state writes `path.tmp`, flushes it to the medium and renames it over `path`: on POSIX and
littlefs a rename replaces the old file in one step, so a power cut leaves either the old or the
new file, never half of one. On FAT (no atomic replace) the old file is removed first; load_state
then falls back to `path.tmp`, which is complete whenever it was renamed-from.
"""
import json
import os

VERSION = 1


def _read(path):
    try:
        with open(path) as f:
            d = json.loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(d, dict) or d.get("v") != VERSION:
        return None
    seq = d.get("seq")
    if not isinstance(seq, int) or not 0 <= seq <= 0xFFFF:
        return None
    off = d.get("ntp_offset_ms", 0)
    if not isinstance(off, int):
        return None
    return {"seq": seq, "ntp_offset_ms": off}


def load_state(path):
    """The saved dict {"seq", "ntp_offset_ms"}, or None when there is none (or it is unreadable:
    a corrupt file is treated as absent, and the HA's 135 answer resynchronises the sequence)."""
    d = _read(path)
    if d is None:
        d = _read(path + ".tmp")
    return d


def _fsync(f):
    f.flush()
    sync = getattr(os, "fsync", None)
    if sync is not None:
        try:
            sync(f.fileno())
        except (OSError, AttributeError):
            pass


def save_state(path, state):
    tmp = path + ".tmp"
    d = {"v": VERSION, "seq": state["seq"] & 0xFFFF, "ntp_offset_ms": int(state.get("ntp_offset_ms", 0))}
    with open(tmp, "w") as f:
        f.write(json.dumps(d))
        _fsync(f)
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
