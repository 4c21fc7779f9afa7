"""MicroPython side of `roam6 bench hotpaths`: time roam6's hot paths through their public names.

Run by bench_hotpaths.py on the MicroPython unix port, once per tier ($ROAM6_ACCEL caps roam6.accel
at native, viper or python), with MICROPYPATH = firmware/. Prints one JSON line:
{"tier": ..., "status": accel.status, "send_path": ..., "us": {operation: microseconds per call}}.
argv: SINK_PORT ROUNDS
"""
import gc
import json
import socket
import sys
import time

from roam6 import accel, crypto, rrcrypto
from roam6.wire import checksum
from roam6.wire.addr import ip6_from_text

SINK_PORT = int(sys.argv[1])
ROUNDS = int(sys.argv[2])


def per_call_us(fn, n):
    """Best of ROUNDS runs of n calls, in microseconds per call (the best run has the least
    interference from the host; gc runs before each)."""
    best = None
    for _ in range(ROUNDS):
        gc.collect()
        t = time.ticks_us()
        for _ in range(n):
            fn()
        dt = time.ticks_diff(time.ticks_us(), t)
        if best is None or dt < best:
            best = dt
    return best / n


def data(n, seed=1):
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = x >> 16 & 0xFF
    return bytes(out)


HOA = ip6_from_text("2001:db8:aa::100")
COA = ip6_from_text("::ffff:192.0.2.100")
CN = ip6_from_text("2001:db8:f3::2")
KEY = data(16, 2)
P1500 = data(1500, 3)
P128 = data(128, 4)
HT, CT = data(8, 5), data(8, 6)
KBM = rrcrypto.kbm(HT, CT)
# a home-registration BU's MH through the MN-HA option's SPI (what RFC 4285 MACs): fixed part,
# MN-ID "board1@example.test", padding, IPv4 CoA option, Mobility Message Authentication header
BU_MH = bytes.fromhex("3b07050000000007c0000096") + bytes.fromhex("0814") + b"\x01board1@example.test" + \
    bytes.fromhex("010000201006000018c00264") + bytes.fromhex("0911010000100000")


def main():
    us = {}
    us["inet_sum_1500B"] = per_call_us(lambda: checksum.inet_sum(P1500), 2000)
    us["checksum6_1500B"] = per_call_us(lambda: checksum.checksum6(HOA, CN, 17, P1500), 2000)
    us["hmac_sha1_128B"] = per_call_us(lambda: crypto.hmac_sha1(KEY, P128), 2000)
    us["bu_auth_rfc4285"] = per_call_us(lambda: crypto.mnha_auth_data(KEY, COA, HOA, BU_MH), 2000)
    us["kbm"] = per_call_us(lambda: rrcrypto.kbm(HT, CT), 5000)
    us["rr_authenticator"] = per_call_us(lambda: rrcrypto.rr_authenticator(KBM, COA, CN, BU_MH[:32]), 2000)
    send_path = send_path_figures(us)
    print(json.dumps({"tier": accel.status["cap"], "status": accel.status, "send_path": send_path, "us": us}))


def send_path_figures(us):
    """Per-datagram cost of an application's sendto() over udp4: the MN's Host (IPv6 + UDP
    assembly, checksum) and UdpTransport (a real UDP socket to 127.0.0.1, the HA's place)."""
    try:
        from roam6.node.host import Host
        from roam6.node.transport import UdpTransport
    except ImportError as exc:
        return assembly_only(us, "roam6.node not importable (%s): timed the packet assembly steps "
                                 "of roam6.wire instead, without a socket" % exc)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the datagrams' receiver; never read:
    sink.bind(socket.getaddrinfo("127.0.0.1", SINK_PORT)[0][-1])  # the kernel drops what overflows
    tr = UdpTransport("udp4", "127.0.0.1", SINK_PORT)
    tr.open(None)
    host = Host(HOA, send=tr.send)
    sock = host.socket()
    sock.bind(5683)
    dst = (CN, 5683)
    for size in (64, 1200):
        payload = data(size, 7)
        sent_before = tr.sent
        us["udp4_send_%dB" % size] = per_call_us(lambda: sock.sendto(payload, dst), 2000)
        assert tr.sent > sent_before and tr.send_errors == 0, (tr.sent, tr.last_error)
    noop = Host(HOA, send=lambda mv: True)
    s2 = noop.socket()
    s2.bind(5684)
    for size in (64, 1200):
        payload = data(size, 7)
        us["udp4_assembly_%dB" % size] = per_call_us(lambda: s2.sendto(payload, dst), 2000)
    tr.close()
    sink.close()
    return ("UdpSocket.sendto -> Host.send_udp (IPv6+UDP headers, checksum) -> UdpTransport('udp4').send "
            "(a real UDP socket to 127.0.0.1); udp4_assembly_* is the same without the socket")


def assembly_only(us, note):
    from roam6.wire.ipv6 import pack_ipv6_header
    from roam6_codec.udp import fill_udp_checksum, pack_udp_header
    tx = bytearray(1280)
    for size in (64, 1200):
        payload = data(size, 7)

        def step():
            pack_ipv6_header(tx, 0, HOA, CN, 17, 8 + size)
            pack_udp_header(tx, 40, 5683, 5683, 8 + size)
            tx[48:48 + size] = payload
            fill_udp_checksum(tx, 40, 8 + size, HOA, CN)

        us["udp4_assembly_%dB" % size] = per_call_us(step, 2000)
    return note


main()
