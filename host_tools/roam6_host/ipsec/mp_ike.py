"""MicroPython side of the strongSwan interop test and of `roam6 bench ipsec`: the MN's IKEv2
initiator (roam6.ipsec) on the MicroPython unix port, in the MN's namespace, against a responder.
Run with MICROPYPATH = firmware/. Prints JSON lines: each event, then a summary with the MN-side
busy time, the wall time of the handshake and an ICMPv6 echo through the CHILD_SA.
argv: PSK NAI LOCAL4 REMOTE4 HOA6 PEER6 [ROUNDS]
"""
import json
import socket
import sys

from roam6.compat import ticks_diff, ticks_ms, ticks_us
from roam6.ipsec import drive, ikev2
from roam6.wire.addr import ip6_from_text
from roam6.wire.checksum import checksum6


def a4(text):
    return bytes(int(x) for x in text.split("."))


def echo(hoa, peer, seq):
    icmp = bytearray(b"\x80\x00\x00\x00\x19\x19" + seq.to_bytes(2, "big") + b"roam6-mp" * 4)
    icmp[2:4] = checksum6(hoa, peer, 58, icmp).to_bytes(2, "big")
    return b"\x60\x00\x00\x00" + len(icmp).to_bytes(2, "big") + b"\x3a\x40" + hoa + peer + bytes(icmp)


def main():
    psk, nai, local, remote, hoa, peer = sys.argv[1:7]
    rounds = int(sys.argv[7]) if len(sys.argv) > 7 else 1
    hoa, peer = ip6_from_text(hoa), ip6_from_text(peer)
    for r in range(rounds):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(socket.getaddrinfo(local, 4500)[0][-1])
        sock.connect(socket.getaddrinfo(remote, 4500)[0][-1])
        t = ticks_us()       # the constructor makes the X25519 key pair and IKE_SA_INIT: counted
        ike = ikev2.Initiator(psk.encode(), nai, (a4(local), 4500), (a4(remote), 4500),
                              [ikev2.ts_host(hoa)], [ikev2.ts_host(peer)], ticks_ms())
        made_us = ticks_diff(ticks_us(), t)
        events, busy_us, ms = drive.handshake(sock, ike, 10000)
        busy_us += made_us
        ms += made_us // 1000
        for ev in events:
            print(json.dumps({"event": ev[0], "fields": list(ev[1:])}))
        up = events[-1][0] == "child_up"
        t = ticks_us()
        got = drive.esp_exchange(sock, ike, echo(hoa, peer, r + 1), 41) if up else None
        rtt = ticks_diff(ticks_us(), t)
        ok = bool(got) and got[0] == 41 and got[1][40] == 129 and got[1][8:24] == peer
        print(json.dumps({"summary": True, "round": r, "child_up": up, "handshake_ms": ms,
                          "mn_busy_us": busy_us, "echo_ok": ok, "echo_us": rtt,
                          "sk_ei": ike.sk["ei"].hex() if ike.sk else None}))
        sock.close()


main()
