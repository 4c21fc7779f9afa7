"""The MN end of tests/cn/test_cn_process.py, run inside the MN's namespace on the real MicroPython
unix port (and on CPython): the firmware's rr core (roam6.core.rr) builds every HoTI/CoTI/BU;
real sockets carry them to a real `roam6 cn` process.

Stand-in (said here because it is one): there is no home agent in this namespace pair, so the HoA
is simply a second address on the MN's link and "home" packets (HoTI, deregistration) leave
directly from it, as they would from the home link. Everything else is the real path: packets
with a Home Address option out, type 2 routing headers in, read with a packet socket because the
kernel drops them.

usage: mn_side.py IFACE HOA COA COA2 CN ECHO_PORT  -> prints one JSON summary line
"""
import json
import select
import socket
import struct
import sys

from roam6 import rrcrypto
from roam6.compat import IS_MICROPYTHON, ticks_diff, ticks_ms
from roam6.core import rr
from roam6.core.ro_policy import RoPolicy
from roam6_codec import consts as C
from roam6_codec import mh as M
from roam6_codec import mhopts as O
from roam6.wire.ipv6 import build_ipv6, decode_ipv6
from roam6_codec.udp import build_udp, decode_udp

IFACE, HOA_T, COA_T, COA2_T, CN_T, PORT = sys.argv[1:7]
PORT = int(PORT)
A = lambda t: socket.inet_pton(socket.AF_INET6, t)  # noqa: E731
HOA, COA, COA2, CN = A(HOA_T), A(COA_T), A(COA2_T), A(CN_T)
AF_PACKET, SOCK_DGRAM, SOCK_RAW, ETH_P_IPV6 = 17, 2, 3, 0x86DD
ETH_P_IPV6_NET = struct.unpack("<H", struct.pack(">H", ETH_P_IPV6))[0]  # htons on this host

# MicroPython takes and gives raw sockaddr bytes, CPython tuples
if IS_MICROPYTHON:
    with open("/sys/class/net/%s/ifindex" % IFACE) as f:
        IFINDEX = int(f.read())
    LL = struct.pack("<H", AF_PACKET) + struct.pack(">H", ETH_P_IPV6) + struct.pack("<i", IFINDEX) + bytes(12)

    def sa6(addr16):
        return struct.pack("<H", 10) + bytes(6) + bytes(addr16) + bytes(4)

    def pkttype(addr):
        return addr[10]
else:
    LL = (IFACE, ETH_P_IPV6)

    def sa6(addr16):
        return (socket.inet_ntop(socket.AF_INET6, bytes(addr16)), 0)

    def pkttype(addr):
        return addr[2]

spkt = socket.socket(AF_PACKET, SOCK_DGRAM, ETH_P_IPV6_NET)
spkt.bind(LL)
smh = socket.socket(socket.AF_INET6, SOCK_RAW, 135)  # keeps the kernel from ICMP-ing MH
sraw = socket.socket(socket.AF_INET6, SOCK_RAW, 255)
sraw.setsockopt(41, 36, 1)  # IPPROTO_IPV6, IPV6_HDRINCL
poller = select.poll()
poller.register(spkt, select.POLLIN)
poller.register(smh, select.POLLIN)
T0 = ticks_ms()
sent = []
icmp_errors = [0]  # ICMPv6 Parameter Problems from the CN (its nft rule should stop them)


def now_ms():
    return ticks_diff(ticks_ms(), T0)


def send(pkt):
    p = decode_ipv6(pkt)
    if p.nh == C.NH_MH:
        sent.append((now_ms(), type(M.decode_mh(bytes(p.payload))).__name__))
    sraw.sendto(pkt, sa6(pkt[24:40]))


def _ready(timeout_ms):
    """Which of our sockets are readable within timeout_ms (poll gives objects or fds)."""
    out = []
    for r in poller.poll(max(0, timeout_ms)):
        o = r[0]
        if o is spkt or o == spkt.fileno():
            out.append(spkt)
        elif o is smh or o == smh.fileno():
            out.append(smh)
    return out


def recv(timeout):
    """Packets from the CN to one of our addresses, decoded, within timeout seconds."""
    out = []
    end = now_ms() + int(timeout * 1000)
    while True:
        left = end - now_ms()
        if left <= 0:
            return out
        r = _ready(left)
        if smh in r:
            smh.recv(2048)
        if spkt not in r:
            continue
        data, addr = spkt.recvfrom(2048)
        if pkttype(addr) != 0 or len(data) < 40 or data[8:24] != CN:
            continue
        if data[6] == 58 and len(data) > 41 and data[40] == 4:
            icmp_errors[0] += 1
        out.append(decode_ipv6(data))
        return out


def recv_mh(timeout):
    """The first Mobility Header packet from the CN within timeout, as a list (empty if none);
    skips the rest (e.g. the ICMPv6 errors the CN's kernel sends for HAO packets it drops)."""
    end = now_ms() + int(timeout * 1000)
    while now_ms() < end:
        got = [q for q in recv(max(0, end - now_ms()) / 1000) if q.nh == C.NH_MH]
        if got:
            return got
    return []


def pump(mn, until, limit=5.0):
    """Run the MN core against the network until until() or limit seconds."""
    end = now_ms() + int(limit * 1000)
    while now_ms() < end and not until():
        n = now_ms()
        mn.handle_timer(n)
        for via, pkt in mn.datagrams_to_send(n):
            send(pkt)
        for p in recv(0.05):
            if p.nh == C.NH_MH:
                mn.receive(p.src, p.dst, bytes(p.payload), p.rh2, now_ms())
    return until()


def echo(src, hao, tag):
    """Send one UDP echo request (with a HAO when hao) and return the answer's packet, or None."""
    udp = build_udp(40000, PORT, tag, src=HOA, dst=CN)
    send(build_ipv6(src, CN, C.NH_UDP, udp, hao=hao))
    end = now_ms() + 2000
    while now_ms() < end:
        for p in recv(0.1):
            if p.nh == C.NH_UDP and bytes(decode_udp(bytes(p.payload)).payload) == tag:
                return p
    return None


def echo_probe(mn, seconds):
    """Play the MN's probe application for a while: echo the CN's R6PD datagrams to HoA:9000,
    directly with a HAO when route() says so, else plainly from the HoA. Returns the count."""
    n = 0
    end = now_ms() + int(seconds * 1000)
    while now_ms() < end:
        for p in recv(0.05):
            if p.nh != C.NH_UDP or (p.dst != HOA and p.rh2 != HOA):
                continue
            u = decode_udp(bytes(p.payload))
            if u.dport != 9000 or bytes(u.payload)[:4] != b"R6PD":
                continue
            udp = build_udp(9000, u.sport, bytes(u.payload), src=HOA, dst=CN)
            coa = mn.route(CN, now_ms())
            send(build_ipv6(coa, CN, C.NH_UDP, udp, hao=HOA) if coa else build_ipv6(HOA, CN, C.NH_UDP, udp))
            n += 1
    return n


res = {"runtime": sys.implementation.name}
mn = rr.RouteOptimizer(HOA, RoPolicy("always"))
res["probe_plain"] = echo_probe(mn, 0.6)
mn.move(COA, now_ms())
t = now_ms()
mn.note_traffic(CN, t)
res["bound"] = pump(mn, lambda: mn.route(CN, now_ms()) == COA)
res["rr_ms"] = now_ms() - t
res["kinds1"] = [k for _, k in sent]

p = echo(COA, HOA, b"direct-1")
res["echo_direct"] = p is not None and p.dst == COA and p.rh2 == HOA
p = echo(HOA, None, b"plain-1")  # from the HoA, no HAO: the CN still answers via the binding
res["echo_plain_via_rh2"] = p is not None and p.dst == COA and p.rh2 == HOA

# roam: only the care-of half again
sent.clear()
t = now_ms()
mn.move(COA2, t)
res["bound2"] = pump(mn, lambda: mn.route(CN, now_ms()) == COA2)
res["rr2_ms"] = now_ms() - t
res["kinds2"] = [k for _, k in sent]
p = echo(COA2, HOA, b"direct-2")
res["echo_direct2"] = p is not None and p.dst == COA2 and p.rh2 == HOA
res["probe_direct"] = echo_probe(mn, 0.6)

# a forged BU (valid nonce indices, but a Kbm of zeros) claiming our HoA from COA: silently
# refused, binding unchanged (with unknown indices it would get BA 138 before any MAC check)
e = mn.entries[CN]
bu = M.BindingUpdate(60000, C.BU_A, 105, [O.NonceIndices(e.home.index, e.careof.index), O.BindingAuthData(None)])
mh = bu.encode(src=HOA, dst=CN, mac=lambda d: rrcrypto.rr_authenticator(bytes(20), COA, CN, d))
send(build_ipv6(COA, CN, C.NH_MH, mh, hao=HOA))
got = recv_mh(1.0)
res["forged_answered"] = len(got)
p = echo(COA2, HOA, b"direct-3")
res["still_bound_to_coa2"] = p is not None and p.dst == COA2
# data with a HAO from an address the CN has no binding for: Binding Error 1
send(build_ipv6(COA, CN, C.NH_UDP, build_udp(40000, PORT, b"x", src=HOA, dst=CN), hao=HOA))
be = recv_mh(1.0)
res["be_status"] = M.decode_mh(bytes(be[0].payload)).status if be else None

# hostile input: malformed Mobility Headers and HAO packets; the CN must keep working
seed = 12345
for i in range(300):
    seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
    junk = bytes(((seed >> (k % 24)) + k * 7) & 0xFF for k in range(8 + seed % 56))
    if i % 3 == 0:
        bad = build_ipv6(COA2, CN, C.NH_MH, junk)
    elif i % 3 == 1:
        bad = build_ipv6(COA2, CN, C.NH_UDP, junk, hao=HOA)
    else:
        bad = build_ipv6(COA2, CN, C.NH_MH, b"\x3b" + bytes([len(junk) // 8]) + junk, hao=HOA)
    sraw.sendto(bad, sa6(CN))
recv(0.5)  # let the CN work through the burst (a tap may still drop some of it)
p = None
for k in range(3):
    p = p or echo(COA2, HOA, b"after-junk-%d" % k)
res["alive_after_junk"] = p is not None and p.dst == COA2

# back home: deregistration from the HoA
sent.clear()
mn.home(now_ms())
res["dereg"] = pump(mn, lambda: mn.entries[CN].state == rr.IDLE)
res["kinds3"] = [k for _, k in sent]
ev = []
while True:
    e = mn.next_event()
    if e is None:
        break
    ev.append(e[0])
res["events"] = ev
res["icmp_param_problems"] = icmp_errors[0]
print(json.dumps(res))
