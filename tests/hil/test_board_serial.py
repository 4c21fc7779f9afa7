"""The serial board driver against a real MicroPython REPL: the unix port behind a pseudo-terminal
pair (socat), as a USB board would present it. No namespaces needed."""
import os
import subprocess
import time

import pytest

from roam6_host.errors import UserError
from roam6_host.unixboard import UnixBoard
from roam6_hil.board_serial import SerialBoard


@pytest.fixture
def repl(tmp_path):
    b = UnixBoard(str(tmp_path / "fs")).start()
    try:
        yield b
    finally:
        b.stop()


def test_exec_files_and_errors(repl, tmp_path):
    s = SerialBoard(port=repl.port, folder=str(tmp_path)).connect()
    try:
        out, err = s.exec("print(1 + 2)")
        assert out.strip() == "3" and err == ""
        out, err = s.exec("1/0")
        assert "ZeroDivisionError" in err
        s.put_file("config.json", '{"nai": "x@example.test"}' + " " * 600)
        out, _ = s.exec("print(open('config.json').read().strip())")
        assert out.strip() == '{"nai": "x@example.test"}'
        assert open(tmp_path / "fs" / "config.json").read().strip() == '{"nai": "x@example.test"}'
    finally:
        s.stop()


def test_running_program_streams_event_lines_and_is_interrupted(repl, tmp_path):
    s = SerialBoard(port=repl.port, folder=str(tmp_path)).connect()
    try:
        code = ("import time, json\nn = 0\nwhile True:\n"
                " print(json.dumps({'ev': 'heap', 't_ms': time.ticks_ms(), 'alloc': n}))\n"
                " n += 1\n time.sleep_ms(20)\n")
        s.start_main(code)
        ev = s.wait_event(lambda e: e["ev"] == "heap" and e["alloc"] >= 3, 5)
        assert ev is not None and abs(ev["t"] - time.monotonic()) < 2   # t_ms mapped onto our clock
        s.interrupt()
        out, _ = s.exec("print('back')")
        assert out.strip() == "back"
    finally:
        s.stop()
    assert repl.starts == 1       # never soft-reset (that would have ended the unix port)


def test_no_board_answering_is_a_clear_error(tmp_path):
    # a pty pair with nothing behind it: like a port with a board that does not run MicroPython
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    p = subprocess.Popen(["socat", "pty,raw,echo=0,link=" + a, "pty,raw,echo=0,link=" + b],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not os.path.exists(b) and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(UserError, match="no MicroPython board answered"):
            SerialBoard(port=b).connect(timeout=1.5)
    finally:
        p.terminate()
        p.wait(5)
    with pytest.raises(UserError, match="does not exist"):
        SerialBoard(port=str(tmp_path / "ttyNOPE")).connect()
