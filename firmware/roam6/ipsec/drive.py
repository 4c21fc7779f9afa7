"""A blocking driver for the IKEv2 initiator over one connected UDP socket (UDP 4500: IKE with the
non-ESP marker and ESP on the same socket, RFC 3948), for MicroPython and CPython alike: the
interop tests and `roam6 bench ipsec` run it; the MN's asyncio driver will do the same steps.
`busy_us` in the results is the time spent inside the initiator (the MN's own cost), apart from
waiting for the network and the peer."""
import select

from roam6.compat import ticks_diff, ticks_ms, ticks_us
from roam6.ipsec.ikev2 import MARKER

_DONE = ("child_up", "child_failed", "failed", "deleted")


def handshake(sock, ike, timeout_ms=10000):
    """Run until the CHILD_SA is up or the exchange fails: (events, busy_us, elapsed_ms)."""
    return run_until(sock, ike, _DONE, timeout_ms)


def run_until(sock, ike, done, timeout_ms=10000):
    """Drive the initiator until an event whose kind is in `done` (or "failed"): (events, busy_us,
    elapsed_ms). ESP arriving meanwhile is left to the initiator (counted as ignored)."""
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    t0 = ticks_ms()
    busy = 0
    events = []
    while ticks_diff(ticks_ms(), t0) < timeout_ms:
        t = ticks_us()
        now = ticks_ms()
        ike.handle_timer(now)
        out = ike.datagrams_to_send(now)
        busy += ticks_diff(ticks_us(), t)
        for data, _dst in out:
            sock.send(data)
        ev = ike.next_event()
        while ev:
            events.append(ev)
            if ev[0] in done or ev[0] == "failed":
                return events, busy, ticks_diff(ticks_ms(), t0)
            ev = ike.next_event()
        deadline = ike.get_timer()
        wait = 200 if deadline is None else max(1, min(200, ticks_diff(deadline, ticks_ms())))
        if poll.poll(wait):
            data = sock.recv(4096)
            t = ticks_us()
            ike.receive(data, ticks_ms())
            busy += ticks_diff(ticks_us(), t)
    events.append(("failed", "timeout", 0))
    return events, busy, ticks_diff(ticks_ms(), t0)


def esp_exchange(sock, ike, payload, next_header, timeout_ms=3000):
    """Send one ESP packet through the CHILD_SA and wait for one back: (next_header, payload, the
    ESP datagram) or None. The peer's IKE requests meanwhile (liveness) are answered."""
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    sock.send(ike.esp_out.seal(payload, next_header))
    t0 = ticks_ms()
    while True:
        left = timeout_ms - ticks_diff(ticks_ms(), t0)
        if left <= 0 or not poll.poll(left):
            return None
        data = sock.recv(4096)
        if data[:4] == MARKER:
            ike.receive(data, ticks_ms())
            for out, _dst in ike.datagrams_to_send(ticks_ms()):
                sock.send(out)
            continue
        got = ike.esp_in.open(data)
        if got is None and ike.esp_in_old is not None:     # in flight during a rekey
            got = ike.esp_in_old.open(data)
        if got is not None:
            return got[0], got[1], data
