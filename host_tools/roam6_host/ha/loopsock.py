"""One socket the HA's epoll loop reads for a service beside the binding cache (the control
socket, DHAAD, RADIUS Disconnect-Requests): the service sets `sock` when it opens and handles
`on_readable`; the loop asks `fds()`, and `close()` is safe at any time."""


class LoopSocket:
    sock = None

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def fds(self):
        return {self.sock.fileno(): self.on_readable} if self.sock is not None else {}

    def on_readable(self):
        raise NotImplementedError
