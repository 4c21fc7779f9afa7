"""The atomic state file (roam6.node.state) and the reboot story with the BUL entry."""
import os

from roam6.core import bul
from roam6.core.bul import HomeBinding
from roam6.node.state import load_state, save_state

from support import BU, fresh_state_file


def _path(name):
    return fresh_state_file("r6state-" + name)


def test_missing_file_is_none():
    assert load_state(_path("missing")) is None


def test_round_trip_and_replace():
    p = _path("rt")
    save_state(p, {"seq": 123, "ntp_offset_ms": 42})
    assert load_state(p) == {"seq": 123, "ntp_offset_ms": 42}
    save_state(p, {"seq": 65535, "ntp_offset_ms": -5})
    assert load_state(p) == {"seq": 65535, "ntp_offset_ms": -5}
    try:
        os.stat(p + ".tmp")
        assert False, "the temp file must be gone after the rename"
    except OSError:
        pass
    os.remove(p)


def test_half_written_temp_never_replaces_good_file():
    p = _path("cut")
    save_state(p, {"seq": 500, "ntp_offset_ms": 0})
    with open(p + ".tmp", "w") as f:       # power cut in the middle of the next write
        f.write('{"v": 1, "seq": 51')
    assert load_state(p)["seq"] == 500
    os.remove(p)
    os.remove(p + ".tmp")


def test_only_temp_left_after_fat_style_replace():
    p = _path("fat")
    with open(p + ".tmp", "w") as f:
        f.write('{"v": 1, "seq": 77, "ntp_offset_ms": 0}')
    assert load_state(p)["seq"] == 77
    os.remove(p + ".tmp")


def test_corrupt_or_wrong_file_is_none():
    p = _path("bad")
    for text in ("", "garbage", "[]", '{"v": 2, "seq": 1}', '{"v": 1, "seq": 70000}', '{"v": 1}'):
        with open(p, "w") as f:
            f.write(text)
        assert load_state(p) is None, text
    os.remove(p)


def test_reboot_never_reuses_a_sequence_number():
    p = _path("reboot")
    st = load_state(p)
    used = []
    for boot in range(5):
        b = HomeBinding(600, True, st["seq"] if st else 0, 0, b"\0" * 16)
        b.move(b"\xc0\x00\x02\x64", 0)
        now = 0
        for i in range(7 + boot * 5):          # some BUs, then a power cut at any point
            for r in map(BU, b.bu_to_send()):
                s = b.state_to_save()
                if s is not None:
                    save_state(p, s)          # the driver saves before it sends
                if used:
                    assert bul.seq_after(r.seq, used[-1]), (r.seq, used[-1])   # larger than any before
                used.append(r.seq)
            now = b.get_timer()
            b.handle_timer(now)
        st = load_state(p)
    assert len(used) == len(set(used))
    os.remove(p)
