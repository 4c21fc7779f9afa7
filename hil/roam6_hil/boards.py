"""Board drivers and board profiles.

A driver starts the MN on a board, gives the bench the MN's event lines (CONTRACTS §7) and roams
it. Interface (`unix` = the virtual board in the bench's `board` namespace; `serial` = a real
ESP32/Pico W on USB serial, see board_serial.py):

    drv = get_driver("unix")(bench, profile="esp32")
    drv.start(config)              # config.json dict (CONTRACTS §5); the profile narrows transports
    drv.wait_event(pred, timeout)  # first event (dict with "t" in monotonic s) matching pred, or None
    drv.events                     # every event so far
    drv.alive()
    drv.stop()
Roaming the unix board is the bench's business (roaming.Roamer moves its link); a serial board is
told to join another network.
"""
import json
import os
import threading
import time

from roam6_host.errors import UserError

from .report import mn_time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# the real board's limits on the unix port: heap (-X heapsize), the transports its MicroPython
# network stack allows, and which hot-path tier it has (esp32: no native module built without
# ESP-IDF, so viper at best; rp2040: its armv6m module, the x64 one stands in here)
PROFILES = {
    "esp32": {"board": "esp32", "heap_kb": 100, "transports": ["udp4"], "accel": "viper"},
    "rp2040": {"board": "rp2040", "heap_kb": 160, "transports": ["udp6", "udp4"], "accel": "native"},
    "router": {"board": "unix", "heap_kb": 1024, "transports": ["udp6", "udp4", "ip6"], "accel": "native"},
}


def profile(name):
    if name not in PROFILES:
        raise UserError("unknown board profile %r" % name, hint="one of: %s" % ", ".join(PROFILES))
    p = dict(PROFILES[name], name=name)
    bj = os.path.join(ROOT, "boards", p["board"], "board.json")
    if os.path.exists(bj) and name != "router":
        with open(bj) as f:
            data = json.load(f)
        p["heap_kb"] = data.get("heap_free_kb", p["heap_kb"])
        p["transports"] = data.get("transports", p["transports"])
    return p


class EventReader:
    """Collects JSON event lines from a stream in a thread; other lines go to a log file."""

    def __init__(self, stream, logpath):
        self.events = []
        self._cond = threading.Condition()
        self._log = open(logpath, "w")
        self._stream = stream
        self.closed = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        for line in self._stream:
            t_rx = time.monotonic()
            if isinstance(line, bytes):
                line = line.decode(errors="replace")
            self._log.write("%.6f %s" % (t_rx, line if line.endswith("\n") else line + "\n"))
            self._log.flush()
            s = line.strip()
            if not s.startswith("{"):
                continue
            try:
                ev = json.loads(s)
            except ValueError:
                continue
            if not isinstance(ev, dict) or "ev" not in ev:
                continue
            ev["t_rx"] = t_rx
            # t_ms is whole milliseconds, truncated: the event happened within the next ms, so
            # take its middle rather than its start
            ev["t"] = mn_time(ev["t_ms"] + 0.5, t_rx) if isinstance(ev.get("t_ms"), (int, float)) else t_rx
            with self._cond:
                self.events.append(ev)
                self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait(self, pred, timeout, since=0.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events:
                    if ev["t_rx"] >= since and pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self._cond.wait(left)


SCENARIO_BOARD_HELP = ("the board: unix, the virtual one (default); a real ESP32 or Pico W needs real Wi-Fi APs, "
                      "see README 'Real boards'")


def scenario_board(text):
    """argparse type of the scenarios' --board: only the virtual board is offered, and a serial board
    is refused as the arguments are read (not after --help listed it and the bench was being built):
    a real board roams between real Wi-Fi APs, which the bench does not have."""
    if text == "serial":
        raise UserError("--board serial: the bench's scenarios run the virtual board only (a real board roams "
                        "between real Wi-Fi APs)",
                        hint="README 'Real boards' says how to wire APs and drive a board with "
                             "roam6_hil.board_serial.SerialBoard; here: --board unix")
    return text


def get_driver(name):
    if name == "unix":
        from .board_unix import UnixBoard
        return UnixBoard
    if name == "serial":
        from .board_serial import SerialBoard
        return SerialBoard
    raise UserError("unknown board driver %r" % name, hint="--board unix (virtual) or --board serial (USB)")
