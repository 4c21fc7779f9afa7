"""How a bench command stops: the first Ctrl-C or SIGTERM unwinds, the teardown runs to its end."""
import signal
import sys


def sigterm_as_interrupt():
    """Ctrl-C or SIGTERM unwinds the run once (KeyboardInterrupt), and the bench's teardown then runs
    to its end: a second Ctrl-C only says to wait (interrupting the teardown left namespaces and
    probe processes behind)."""
    def again(*_):
        print("roam6: still removing the bench, a moment (if it is ever left: roam6 hil down)",
              file=sys.stderr, flush=True)

    def first(*_):
        signal.signal(signal.SIGINT, again)
        signal.signal(signal.SIGTERM, again)
        print("roam6: stopping: removing the bench", file=sys.stderr, flush=True)
        raise KeyboardInterrupt()
    signal.signal(signal.SIGINT, first)
    signal.signal(signal.SIGTERM, first)
