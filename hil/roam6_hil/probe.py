"""Sequence-numbered UDP probes (CONTRACTS §8.2), three roles, each a process in a namespace:

  cn      on the CN: sends b"R6PD"+seq+time every --interval ms to the board's HoA, and records
          what comes back: echoes (b"R6PD", upstream in echo mode) and the board's own stream
          (b"R6PU", sensor mode).
  board   the reference board application in CPython: echoes R6PD, optionally sends R6PU.
          (The MN runs the same application on its HoA; this one validated the bench first.)
  sniff   on the board's interface (AF_PACKET): when each R6PD arrived at the board's radio and
          when each R6PU left it, whatever the encapsulation (udp4, udp6, ip6 tunnel): the
          payload is found by its magic. With --side ap, on the host's ports behind the access
          points instead (a real bench, where the board's radio cannot be watched; --iface a,b,...):
          there a R6PD going OUT is on its way to the board, one coming IN is its echo.

Every role stamps with time.monotonic() (CLOCK_MONOTONIC, shared by all namespaces and by the
MicroPython unix port's ticks_ms) and, on SIGTERM/SIGINT or after --duration, writes one JSON file:
  {"role": ..., "sent": [[seq, t], ...], "echo": [[seq, t], ...], "up": [[seq, t], ...],
   "down": [[seq, t], ...]}   (only the lists the role fills)
"""
import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time

DOWN = b"R6PD"
UP = b"R6PU"
FMT = ">4sId"          # magic, seq, sender's monotonic time (s)
SIZE = struct.calcsize(FMT)   # 16
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class _Stop(Exception):
    pass


def _on_signal(*_):
    raise _Stop()


def _sockaddr(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    return fam, (host, port)


def _dump(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    os.replace(tmp, path)


def run_cn(args):
    fam, dst = _sockaddr(args.dst, args.port)
    if fam == socket.AF_INET:       # an IPv4 destination: an IPv4 socket (the CN may have no IPv6 at all)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", args.listen))
    else:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", args.listen))
    s.setblocking(False)
    sent, echo, up = [], [], []
    interval = args.interval / 1000.0
    seq = args.seq0
    out = {"role": "cn", "dst": args.dst, "port": args.port, "interval_ms": args.interval, "seq0": args.seq0,
           "sent": sent, "echo": echo, "up": up}
    t_end = time.monotonic() + args.duration if args.duration else None
    print("ready", flush=True)
    next_send = time.monotonic()
    flowing = False
    try:
        while True:
            now = time.monotonic()
            if t_end and now >= t_end:
                break
            if now >= next_send:
                try:
                    s.sendto(struct.pack(FMT, DOWN, seq, now), dst)
                except OSError:
                    pass   # no route for a moment: the probe counts as sent and lost
                sent.append((seq, now))
                seq += 1
                next_send += interval
                if next_send < now - interval:      # we were descheduled: do not burst
                    next_send = now + interval
                continue
            r, _, _ = select.select([s], [], [], max(0.0, next_send - now))
            if r:
                while True:
                    try:
                        data = s.recv(2048)
                    except BlockingIOError:
                        break
                    t = time.monotonic()
                    if not flowing:
                        flowing = True
                        print("flowing", flush=True)   # the scenario waits for this line
                    if len(data) >= SIZE:
                        magic, n, _ts = struct.unpack_from(FMT, data)
                        if magic == DOWN:
                            echo.append((n, t))
                        elif magic == UP:
                            up.append((n, t))
    except (_Stop, KeyboardInterrupt):
        pass
    _dump(args.out, out)


def run_board(args):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", args.port))
    s.setblocking(False)
    sensor = None
    if args.sensor:
        host, port = args.sensor.rsplit(":", 1)
        fam, sensor = _sockaddr(host.strip("[]"), int(port))
        if fam == socket.AF_INET:
            sensor = ("::ffff:" + sensor[0], sensor[1])
    interval = args.interval / 1000.0
    seq = 0
    next_send = time.monotonic()
    print("ready", flush=True)
    try:
        while True:
            now = time.monotonic()
            if sensor and now >= next_send:
                try:
                    s.sendto(struct.pack(FMT, UP, seq, now), sensor)
                except OSError:
                    pass
                seq += 1
                next_send += interval
                if next_send < now - interval:
                    next_send = now + interval
                continue
            timeout = max(0.0, next_send - now) if sensor else 1.0
            r, _, _ = select.select([s], [], [], timeout)
            while r:
                try:
                    data, src = s.recvfrom(2048)
                except BlockingIOError:
                    break
                if data[:4] == DOWN:
                    try:
                        s.sendto(data, src)
                    except OSError:
                        pass
    except (_Stop, KeyboardInterrupt):
        pass


def run_sniff(args):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    ifaces = set(args.iface.split(","))
    ap_side = args.side == "ap"
    if len(ifaces) == 1:
        s.bind((args.iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    down, up, echo_out = [], [], []
    out = {"role": "sniff", "iface": args.iface, "side": args.side, "down": down, "up": up, "echo_out": echo_out}
    # on the AP side, which port each record was seen on (the scenario keeps the board's AP's):
    # lists parallel to down, up, echo_out
    where = {id(down): [], id(up): [], id(echo_out): []}
    if ap_side:
        out.update(down_iface=where[id(down)], up_iface=where[id(up)], echo_out_iface=where[id(echo_out)])
    print("ready", flush=True)
    try:
        while True:
            data, addr = s.recvfrom(4096)
            t = time.monotonic()
            i = data.find(DOWN)
            j = data.find(UP) if i < 0 else -1
            k = i if i >= 0 else j
            if k < 0 or len(data) < k + SIZE:
                continue
            if addr[0] not in ifaces:
                continue
            magic, n, _ts = struct.unpack_from(FMT, data, k)
            # towards the board: received by its radio, or sent out of the AP's port
            outgoing = (addr[2] == PACKET_OUTGOING) != ap_side
            if magic == DOWN:
                into = echo_out if outgoing else down
            elif outgoing:
                into = up
            else:
                continue
            into.append((n, t))
            if ap_side:
                where[id(into)].append(addr[0])
    except (_Stop, KeyboardInterrupt):
        pass
    _dump(args.out, out)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m roam6_hil.probe", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="role", required=True)
    c = sub.add_parser("cn")
    c.add_argument("--dst", required=True)
    c.add_argument("--port", type=int, default=9000)
    c.add_argument("--listen", type=int, default=9001)
    c.add_argument("--interval", type=float, default=5.0, help="ms between probes")
    c.add_argument("--duration", type=float, default=0, help="seconds (0: until SIGTERM)")
    c.add_argument("--seq0", type=int, default=0,
                   help="first sequence number (two streams to one board apart: the sniffer sees both)")
    c.add_argument("--out", required=True)
    b = sub.add_parser("board")
    b.add_argument("--port", type=int, default=9000)
    b.add_argument("--sensor", help="DST:PORT to send the board's own stream to")
    b.add_argument("--interval", type=float, default=5.0)
    s = sub.add_parser("sniff")
    s.add_argument("--iface", default="wlan0", help="interface, or several a,b,... (with --side ap)")
    s.add_argument("--side", default="board", choices=["board", "ap"],
                   help="board: the board's own interface; ap: the host's ports behind the access points")
    s.add_argument("--out", required=True)
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    {"cn": run_cn, "board": run_board, "sniff": run_sniff}[args.role](args)


if __name__ == "__main__":
    sys.exit(main())
