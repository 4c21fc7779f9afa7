"""The probe application the bench measures with (docs/CONTRACTS.md §8.2), on roam6 UDP sockets.

echo: datagrams to HoA port `port` starting with b"R6PD" go back unchanged to their sender.
sensor: every `interval_ms`, b"R6PU" + seq (u32) + 8 bytes of ticks_us to dst:port from `port`.
"""
import struct

from roam6.compat import ticks_us

from .transport import sleep_ms, text_addr


async def echo(sock):
    while True:
        data, addr = await sock.recvfrom()
        if data[:4] == b"R6PD":
            sock.sendto(data, addr)


async def sensor(sock, dst, port, interval_ms):
    dst = text_addr(dst)
    buf = bytearray(16)
    buf[:4] = b"R6PU"
    seq = 0
    while True:
        struct.pack_into(">IQ", buf, 4, seq & 0xFFFFFFFF, ticks_us() & 0xFFFFFFFFFFFFFFFF)
        sock.sendto(buf, (dst, port))
        seq += 1
        await sleep_ms(interval_ms)


def start(node, probe, create_task):
    sock = node.host.socket()
    sock.bind(probe["port"])
    create_task(echo(sock))
    s = probe.get("sensor")
    if s:
        create_task(sensor(sock, s["dst"], s["port"], s.get("interval_ms", 100)))
    return sock
