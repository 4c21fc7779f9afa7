from roam6 import compat


def test_const_is_identity():
    assert compat.const(0x1234) == 0x1234


def test_ticks_move_forward():
    a = compat.ticks_ms()
    b = compat.ticks_ms()
    assert compat.ticks_diff(b, a) >= 0
