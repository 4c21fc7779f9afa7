"""Stand-in for the board's `machine.Timer` on the unix port: it records the callback; the test
fires it (a thread would stall the unix port's garbage collector while it sleeps)."""
timers = []


class Timer:
    PERIODIC = 1
    ONE_SHOT = 0

    def __init__(self, tid=-1):
        self.tid = tid
        self.callback = None

    def init(self, period=1000, mode=1, callback=None):
        print("standin: timer", self.tid, "period", period)
        self.callback = callback
        timers.append(self)
