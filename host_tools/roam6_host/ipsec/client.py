"""CPython helpers around the MN's IKEv2 initiator for the strongSwan interop tests and
`roam6 bench ipsec`: the initiator over a UDP socket is roam6.ipsec.drive (the same code the
MicroPython run uses, host_tools/roam6_host/ipsec/mp_ike.py)."""
import time

from roam6.ipsec import drive


def now_ms():
    """The clock roam6.ipsec.drive uses on CPython (roam6.compat.ticks_ms)."""
    return int(time.monotonic() * 1000)


def run(sock, ike, timeout_s=10.0):
    """The exchange's events, until the CHILD_SA is up or the initiator fails."""
    return drive.handshake(sock, ike, int(timeout_s * 1000))[0]


def run_until(sock, ike, done, timeout_s=10.0):
    return drive.run_until(sock, ike, done, int(timeout_s * 1000))[0]


def esp_exchange(sock, ike, payload, next_header, timeout_s=3.0):
    return drive.esp_exchange(sock, ike, payload, next_header, int(timeout_s * 1000))
