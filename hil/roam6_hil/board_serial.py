"""A real board (ESP32, Pico W) on USB serial, driven through MicroPython's raw REPL with pyserial.

    b = SerialBoard(port="/dev/ttyACM0").connect()   # UserError if no MicroPython answers
    out, err = b.exec("print(1+2)")                   # run code, wait for its end
    b.put_file("config.json", data)                  # write a file on the board
    b.start_main()                                    # run main.py; its event lines -> b.events
    b.join("apB", "psk")                              # roam: interrupt, join another SSID, restart
    b.stop()

The raw REPL protocol: Ctrl-A enters it ("raw REPL; CTRL-B to exit\\r\\n>"); code then Ctrl-D runs
it: "OK", its stdout, \\x04, its stderr, \\x04, ">". A Ctrl-D on an empty line would soft-reset
the board (and end the unix port), so it is never sent alone.
Tested against the MicroPython unix port's REPL on a pseudo-terminal (tests/hil/test_board_serial.py);
joining an SSID needs a real board and Wi-Fi APs (README, "Real boards").
"""
import json
import os
import threading
import time

from roam6_host.errors import UserError

from .eventlog import EventReader


# run main.py again in the same interpreter (a cached module would not run), and keep its
# sys.exit() from ending the REPL (a board soft-resets, the unix port exits): the board stays
# at the raw REPL for the next command. The MN interrupted before (Ctrl-C ends its asyncio.run)
# leaves its tasks in MicroPython's asyncio queue, where the next asyncio.run would run them
# beside the new MN's: a new event loop drops them (gc then closes their sockets where the port
# gives sockets a finaliser; the unix port's stay open, a few descriptors per roam).
MAIN_CODE = ("import sys, gc\ntry:\n import asyncio\n asyncio.new_event_loop()\nexcept ImportError:\n pass\n"
             "gc.collect()\nsys.modules.pop('main', None)\ntry:\n import main\nexcept SystemExit:\n pass\n")


class SerialBoard:
    name = "serial"

    def __init__(self, bench=None, profile_name=None, port=None, baud=115200, folder=None, serial=None):
        # serial: a port another layer opened (labgrid's SerialDriver, labgrid_place.py); port names it
        self._given = serial
        if not port and serial is None:
            raise UserError("the serial board driver needs a port",
                            hint="--port /dev/ttyUSB0 (ESP32) or /dev/ttyACM0 (Pico W)")
        self.port, self.baud = port, baud
        self.folder = folder or (bench.path("board") if bench else ".")
        os.makedirs(self.folder, exist_ok=True)
        self.ser = None
        self.reader = None
        self._lines = None
        self._buf = b""
        self.last_join = None
        self._past = []

    # -- connection ----------------------------------------------------------------------------
    def connect(self, timeout=5.0):
        import serial
        if self._given is not None:
            self.ser = self._given
        elif not os.path.exists(self.port):
            raise UserError("serial port %s does not exist" % self.port,
                            hint="plug the board in; `ls /dev/ttyUSB* /dev/ttyACM*` shows the ports")
        else:
            try:
                self.ser = serial.Serial(self.port, self.baud, timeout=0.05, write_timeout=2, exclusive=True)
            except (serial.SerialException, OSError) as exc:
                raise UserError("cannot open %s: %s" % (self.port, exc),
                                hint="another program (mpremote, screen, a serial monitor) may hold it; "
                                     "or add yourself to the dialout group")
        deadline = time.monotonic() + timeout
        # interrupt whatever runs, then ask for the raw REPL until a board answers
        while True:
            self.ser.write(b"\r\x03\x03\x01")
            got = self._read_until(b"raw REPL; CTRL-B to exit\r\n>", min(1.0, max(0.05, deadline - time.monotonic())))
            if got is not None:
                time.sleep(0.05)                  # answers to the repeated Ctrl-A, if any
                self.ser.reset_input_buffer()
                self._buf = b""
                return self
            if time.monotonic() >= deadline:
                self.ser.close()
                self.ser = None
                raise UserError("no MicroPython board answered on %s within %.0f s" % (self.port, timeout),
                                hint="check the cable and that the board runs MicroPython (roam6 flash); "
                                     "press its reset button and retry")

    def _read_until(self, marker, timeout):
        """Bytes up to and including `marker` (None if it did not come in time); what follows stays
        buffered for the next call (a fast board sends OK, output and \\x04 in one read)."""
        deadline = time.monotonic() + timeout
        while True:
            i = self._buf.find(marker)
            if i >= 0:
                out, self._buf = self._buf[:i + len(marker)], self._buf[i + len(marker):]
                return out
            if time.monotonic() >= deadline:
                return None
            chunk = self.ser.read(4096)
            if chunk:
                self._buf += chunk

    def exec(self, code, timeout=10.0):
        """Run `code` in the raw REPL; returns (stdout, stderr) as text."""
        if self.ser is None:
            raise RuntimeError("not connected")
        if not code.strip():
            raise ValueError("empty code (a lone Ctrl-D would reset the board)")
        self.ser.write(code.encode() + b"\x04")
        if self._read_until(b"OK", 2.0) is None:
            raise RuntimeError("the board did not accept the code (no OK from the raw REPL)")
        out = self._read_until(b"\x04", timeout)
        err = self._read_until(b"\x04>", timeout) if out is not None else None
        if err is None:
            raise RuntimeError("the code did not finish within %.0f s" % timeout)
        out, err = out[:-1], err[:-2]
        return out.decode(errors="replace").replace("\r\n", "\n"), err.decode(errors="replace").replace("\r\n", "\n")

    def put_file(self, name, data):
        if isinstance(data, str):
            data = data.encode()
        code = "f=open(%r,'wb')\n" % name
        for i in range(0, len(data), 256):
            code += "f.write(%r)\n" % data[i:i + 256]
        code += "f.close()\n"
        _out, err = self.exec(code)
        if err:
            raise RuntimeError("writing %s on the board failed: %s" % (name, err.strip()))

    # -- running the MN --------------------------------------------------------------------------
    def start(self, config, code=MAIN_CODE):
        self.put_file("config.json", json.dumps(config))
        self.start_main(code)
        return self

    def start_main(self, code=MAIN_CODE):
        """Run `code` without waiting for it; its output lines feed the event reader."""
        self.ser.write(code.encode() + b"\x04")
        if self._read_until(b"OK", 2.0) is None:
            raise RuntimeError("the board did not start the code (no OK from the raw REPL)")
        r, w = os.pipe()
        self._lines = os.fdopen(w, "wb", buffering=0)
        # stamped on arrival: a board's ticks_ms is not the host's clock
        self.reader = EventReader(os.fdopen(r, "rb"), os.path.join(self.folder, "mn.log"), stamp="rx")
        self._pump_stop = threading.Event()
        self._pump = threading.Thread(target=self._pump_lines, daemon=True)
        self._pump.start()

    def _pump_lines(self):
        # what came with the raw REPL's OK (the program's first lines) is passed on at once, not
        # when the next bytes arrive
        chunk, self._buf = self._buf, b""
        buf = b""
        while not self._pump_stop.is_set():
            if not chunk:
                try:
                    chunk = self.ser.read(4096)
                except Exception:
                    break
                if not chunk:
                    continue
            buf += chunk.replace(b"\r\n", b"\n")
            chunk = b""
            if b"\x04" in buf:                      # the program ended
                buf = buf[:buf.index(b"\x04")]
                self._lines.write(buf)
                break
            *full, buf = buf.split(b"\n")
            for line in full:
                self._lines.write(line + b"\n")
        self._lines.close()

    @property
    def events(self):
        """Every event line of every run of the MN on this connection (join restarts it)."""
        return self._past + (self.reader.events if self.reader else [])

    def wait_event(self, pred, timeout, since=0.0):
        return self.reader.wait(pred, timeout, since)

    def interrupt(self):
        """Stop the running program (KeyboardInterrupt) and get the raw REPL back."""
        if self.reader is not None:
            self._pump_stop.set()
            self._pump.join(2)
            self._past += self.reader.events
            self.reader = None
        self.ser.write(b"\x03\x03")
        time.sleep(0.1)
        self.ser.reset_input_buffer()
        self._buf = b""
        # the MN may take a while to wind down after KeyboardInterrupt (a Ctrl-A it reads as input
        # is lost): ask again until the raw REPL answers
        deadline = time.monotonic() + 5.0
        while True:
            self.ser.write(b"\x01")
            if self._read_until(b"raw REPL; CTRL-B to exit\r\n>", 0.5) is not None:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the board did not return to the raw REPL after Ctrl-C")
        time.sleep(0.05)                          # answers to a repeated Ctrl-A, if any
        self.ser.reset_input_buffer()
        self._buf = b""

    def join(self, ssid, psk, timeout=20.0):
        """Roam a real board: stop the MN, join another Wi-Fi network, start the MN again.
        `self.last_join`: host stamps (time.monotonic()) of the roam: t_down (the MN stopped),
        t_link_up (associated) and t_addr (its address known), the last two placed by the
        board's own durations (ms, its clock) before the answer's arrival."""
        self.interrupt()
        t_down = time.monotonic()         # the MN has stopped: nothing of it answers after this
        code = ("import network, time\nw = network.WLAN(network.STA_IF)\nw.active(True)\nw.disconnect()\n"
                "w.connect(%r, %r)\nt = time.ticks_ms()\n"
                "while not w.isconnected() and time.ticks_diff(time.ticks_ms(), t) < %d:\n time.sleep_ms(20)\n"
                "t1 = time.ticks_ms()\na = w.ifconfig()[0]\nt2 = time.ticks_ms()\n"
                "print(w.isconnected(), a, time.ticks_diff(t2, t1))\n" % (ssid, psk, int(timeout * 1000)))
        out, err = self.exec(code, timeout + 5)
        t_rx = time.monotonic()
        if err or not out.strip().startswith("True"):
            raise RuntimeError("the board could not join %s: %s" % (ssid, (err or out).strip()))
        words = out.split()
        addr_ms = int(words[2]) if len(words) > 2 and words[2].isdigit() else 0
        self.last_join = {"t_down": t_down, "t_link_up": t_rx - addr_ms / 1000.0, "t_addr": t_rx, "addr": words[1]}
        self.start_main()
        return words[1]

    def alive(self):
        return self.reader is not None and not self.reader.closed

    def stop(self):
        if self.ser is None:
            return
        try:
            if self.reader is not None:
                self.interrupt()
            self.ser.write(b"\x02")           # back to the friendly REPL, no reset
        except Exception:
            pass
        self.ser.close()
        self.ser = None
