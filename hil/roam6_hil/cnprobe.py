"""The correspondent's side of a registration check: a script run where the CN is (the virtual
bench's `cn` namespace, or the host of a real bench) that sends numbered datagrams to the MN's
probe application (PROBE_PORT), counts the echoes and the MN's own upstream stream, and prints one
JSON line. Shared by scenarios/register.py and realboard.py."""

PROBE_PORT = 9000

CN_SCRIPT = r"""
import json, socket, sys, time
hoa, port, sport, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
gap, listen_s = float(sys.argv[5]), float(sys.argv[6])
tx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
tx.bind(("::", 9002))
rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
rx.bind(("::", sport))
tx.settimeout(0.01)
rx.settimeout(0.01)
echoed = set(); up = set(); sent = 0; rtts = []
t_end = time.monotonic() + listen_s
i = 0
next_send = time.monotonic()
while time.monotonic() < t_end:
    now = time.monotonic()
    if i < n and now >= next_send:
        tx.sendto(b"R6PD" + i.to_bytes(4, "big") + int(now * 1e6).to_bytes(8, "big"), (hoa, port))
        sent += 1; i += 1; next_send = now + gap
    for s in (tx, rx):
        try:
            d, a = s.recvfrom(2048)
        except (socket.timeout, BlockingIOError):
            continue
        if d[:4] == b"R6PD" and len(d) >= 16:
            k = int.from_bytes(d[4:8], "big")
            if k not in echoed:
                echoed.add(k); rtts.append(time.monotonic() * 1e6 - int.from_bytes(d[8:16], "big"))
        elif d[:4] == b"R6PU" and len(d) >= 8:
            up.add(int.from_bytes(d[4:8], "big"))
    if i >= n and len(echoed) >= n and (sport == 0 or up):
        if time.monotonic() > next_send + 0.3:
            break
print(json.dumps({"down_sent": sent, "echoed": len(echoed), "up_received": len(up),
                  "up_max_seq": max(up) if up else -1,
                  "rtt_ms_median": sorted(rtts)[len(rtts) // 2] / 1000 if rtts else None}))
"""
