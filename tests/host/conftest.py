"""Fixtures shared by the host tests."""
import pytest

from roam6_host.unixboard import UnixBoard


@pytest.fixture
def board(tmp_path):
    """A board on a serial port: the MicroPython unix port behind a socat pty pair, its working
    folder (tmp_path/fs) playing the board's filesystem (roam6_host.unixboard)."""
    b = UnixBoard(str(tmp_path / "fs"))
    b.start()
    try:
        yield b
    finally:
        b.stop()
