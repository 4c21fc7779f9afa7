"""The one reader of the bench's child processes: the MN, the HA, the CN, the address watcher and
the probes all print JSON event lines ({"ev": ..., ...}), some among plain text lines.

    r = EventReader(proc.stdout, logpath)     # a thread reads the stream to its end
    r.wait(pred, timeout, since=0.0)          # first event (dict) with t_rx >= since and pred(ev)
    r.readline(timeout)                       # the next line in order, events included ("ready")
    r.events, r.tail(n), r.last_lines(n), r.mark(), r.closed

    p = EventProc(bench, popen, logpath)      # a child process on the bench with its reader
    p.wait_for(pred, timeout, since=0.0); p.events; p.mark(); p.tail(); p.alive(); p.stop()

Every event gets "t_rx" (time.monotonic() when its line was read) and, when `stamp` is on, "t":
the MN's "t_ms" (its ticks_ms) in monotonic seconds, else t_rx. With `stamp` off an event keeps
the "t" its process stamped (the address watcher's); with stamp="rx", "t" is t_rx (a real board
over serial: its clock is not the host's, its lines are timed on arrival).
"""
import collections
import json
import threading
import time

from .report import mn_time

TAIL_LINES = 200          # lines kept in memory for tail(); the log file keeps every one
UNREAD_LINES = 10000      # lines kept for readline() (a process nobody reads lines of keeps no more)


class EventReader:
    def __init__(self, stream, logpath=None, stamp=True):
        self.events = []                  # the JSON event lines, as dicts, in arrival order
        self.closed = False
        self._lines = collections.deque(maxlen=UNREAD_LINES)     # not yet taken by readline()
        self._tail = collections.deque(maxlen=TAIL_LINES)
        self._cond = threading.Condition()
        self._log = open(logpath, "w") if logpath else None
        self._stream = stream
        self._stamp = stamp
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        for line in self._stream:
            t_rx = time.monotonic()
            if isinstance(line, bytes):
                line = line.decode(errors="replace")
            line = line.rstrip("\n")
            if self._log is not None:
                self._log.write("%.6f %s\n" % (t_rx, line))
                self._log.flush()
            ev = self._event(line, t_rx)
            with self._cond:
                self._tail.append(line)
                self._lines.append(line)
                if ev is not None:
                    self.events.append(ev)
                self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def _event(self, line, t_rx):
        s = line.strip()
        if not s.startswith("{"):
            return None
        try:
            ev = json.loads(s)
        except ValueError:
            return None
        if not isinstance(ev, dict) or "ev" not in ev:
            return None
        ev["t_rx"] = t_rx
        if self._stamp == "rx":
            ev["t"] = t_rx
        elif self._stamp:
            # t_ms is whole milliseconds, truncated: the event happened within the next ms, so
            # take its middle rather than its start
            ev["t"] = mn_time(ev["t_ms"] + 0.5, t_rx) if isinstance(ev.get("t_ms"), (int, float)) else t_rx
        return ev

    def wait(self, pred, timeout, since=0.0):
        """The first event (already read or still to come) read at or after `since` with pred(ev)
        true; None after `timeout` s or once the stream has ended without one."""
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

    def readline(self, timeout):
        """The next line not taken yet (without its newline), or None if none came in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._lines:
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self._cond.wait(left)
            return self._lines.popleft()

    def mark(self):
        """Forget the events so far: wait() and `events` then see only what comes after."""
        with self._cond:
            self.events = []
            self._lines.clear()

    def last_lines(self, n):
        """The last n lines read, a list."""
        with self._cond:
            return list(self._tail)[-n:] if n > 0 else []

    def tail(self, n=30):
        """The last n lines, one string."""
        return "\n".join(self.last_lines(n))


class EventProc:
    """A child process on the bench (started with bench.popen, stdout piped) and its reader."""

    def __init__(self, bench, popen, logpath=None, stamp=True):
        self.bench = bench
        self.p = popen
        self.reader = EventReader(popen.stdout, logpath, stamp)

    @property
    def events(self):
        return self.reader.events

    def wait_for(self, pred, timeout, since=0.0):
        return self.reader.wait(pred, timeout, since)

    def readline(self, timeout):
        return self.reader.readline(timeout)

    def mark(self):
        self.reader.mark()

    def tail(self, n=30):
        return self.reader.tail(n)

    def alive(self):
        return self.p.poll() is None

    def stop(self, grace=2.0):
        """SIGTERM to its process group, SIGKILL after `grace` s; then let the reader drain."""
        self.bench.ns.stop(self.p, grace=grace)
        time.sleep(0.05)
