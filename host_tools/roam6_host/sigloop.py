"""The epoll set-up the home agent (ha/driver.py) and the correspondent node (cn/driver.py) share.

Both run one thread that sleeps in `epoll.poll` until a socket is readable or the next deadline,
and must stop or reload at once when a signal comes. Python runs a signal handler only between
bytecodes, so a thread asleep in poll would not notice it until the timeout: a self-pipe is made
the signal wakeup fd (`signal.set_wakeup_fd`) and polled with the sockets, so a signal ends the
poll and the loop sees the flag its handler set.
"""
import contextlib
import os
import select
import signal


@contextlib.contextmanager
def epoll_with_signals(handlers, signals):
    """An epoll over the fds of `handlers` ({fd: callable}, EPOLLIN) that also wakes when one of
    `signals` ({signum: handler}) arrives; the handlers are installed for the duration. The
    wakeup pipe is added to `handlers` (its callable drains it). On exit the old signal handlers
    and wakeup fd come back and the epoll and the pipe are closed."""
    ep = select.epoll()
    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    handlers[rfd] = lambda: os.read(rfd, 512)
    old_wakeup = signal.set_wakeup_fd(wfd)
    old = [(signum, signal.signal(signum, handler)) for signum, handler in signals.items()]
    try:
        for fd in handlers:
            ep.register(fd, select.EPOLLIN)
        yield ep
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for signum, handler in old:
            signal.signal(signum, handler)
        ep.close()
        os.close(rfd)
        os.close(wfd)
