"""Drive the MN's sans-IO IKEv2 initiator (roam6.ipsec.ikev2.Initiator) over one UDP socket, the
way the MN's driver will: the same socket carries IKE (with the non-ESP marker) and ESP (UDP 4500,
RFC 3948). Used by the strongSwan interop tests and `roam6 bench ipsec`."""
import socket
import time

from roam6.ipsec import ikev2


def now_ms():
    return time.monotonic_ns() // 1_000_000


def run(sock, ike, timeout_s=10.0):
    """Run the exchange until the CHILD_SA is up or the initiator fails; returns the events.
    ESP that arrives meanwhile is ignored (the initiator counts it)."""
    events = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        now = now_ms()
        ike.handle_timer(now)
        for data, (ip, port) in ike.datagrams_to_send(now):
            sock.sendto(data, (socket.inet_ntop(socket.AF_INET6 if len(ip) == 16 else socket.AF_INET, ip), port))
        ev = ike.next_event()
        while ev:
            events.append(ev)
            if ev[0] in ("child_up", "child_failed", "failed", "deleted"):
                return events
            ev = ike.next_event()
        t = ike.get_timer()
        wait = 0.2 if t is None else max(0.0, min(0.2, (t - now_ms()) / 1000))
        sock.settimeout(wait or 0.001)
        try:
            data = sock.recv(4096)
        except (socket.timeout, BlockingIOError):
            continue
        ike.receive(data, now_ms())
    events.append(("failed", "timeout", 0))
    return events


def esp_exchange(sock, ike, payload, next_header, timeout_s=3.0):
    """Send one ESP packet through the CHILD_SA and wait for one back: (next_header, payload, the
    ESP datagram) or None.
    IKE requests from the peer meanwhile (liveness) are answered."""
    sock.send(ike.esp_out.seal(payload, next_header))
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        sock.settimeout(max(0.001, end - time.monotonic()))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        if data[:4] == ikev2.MARKER:
            ike.receive(data, now_ms())
            for out, _dst in ike.datagrams_to_send(now_ms()):
                sock.send(out)
            continue
        got = ike.esp_in.open(data)
        if got is not None:
            return got[0], got[1], data
    return None
