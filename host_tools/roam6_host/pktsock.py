"""Packet and raw IPv6 sockets shared by the home agent (ha/driver.py) and the correspondent node
(cn/driver.py).

The Linux kernel has no MIPv6: it drops packets with a Home Address option before a raw
socket sees them, so both daemons read signalling from an AF_PACKET tap (`packet_socket`, with a
classic BPF program where only a few packets matter: `attach_filter`), send what the kernel
cannot build (type 2 routing header, HoT/CoT/BA) through a header-included raw socket
(`hdrincl_socket`), and silence the ICMPv6 Parameter Problem (code 2, unrecognized option) the
kernel answers every HAO packet with although the daemon handled it: an nftables table of their
own, added at start and deleted at close (`nft_drop_param_problems` / `nft_delete_table`).
"""
import ctypes
import socket
import struct
import subprocess

ETH_P_IPV6 = 0x86DD
PACKET_HOST = 0          # sockaddr_ll.sll_pkttype of a frame addressed to this host
SO_ATTACH_FILTER = 26
IPV6_HDRINCL = 36

_NFT_DROP = """table ip6 %(t)s {}
delete table ip6 %(t)s
table ip6 %(t)s {
  chain out {
    type filter hook output priority 0; policy accept;
    icmpv6 type parameter-problem icmpv6 code 2 drop
  }
}
"""


def packet_socket():
    """AF_PACKET, SOCK_DGRAM (data starts at the IPv6 header), every IPv6 frame of every link."""
    return socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))


def attach_filter(sock, code):
    """Attach a classic BPF program, a list of (op, jt, jf, k), to sock."""
    prog = (ctypes.c_ubyte * (8 * len(code)))()
    for i, (op, jt, jf, k) in enumerate(code):
        struct.pack_into("=HBBI", prog, 8 * i, op, jt, jf, k)
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", len(code), ctypes.addressof(prog)))
    return sock      # the kernel copied the program during setsockopt


def packets_to(sock, dst, budget):
    """Read a non-blocking packet socket until it is empty or `budget` frames were read; yield
    each packet (IPv6 header first) the kernel marked as for this host (PACKET_HOST, not one we
    sent or merely saw) whose destination address is `dst` (16 bytes)."""
    for _ in range(budget):
        try:
            data, addr = sock.recvfrom(65536)
        except (BlockingIOError, InterruptedError):
            return
        if addr[2] != PACKET_HOST or len(data) < 40 or data[24:40] != dst:
            continue
        yield data


SO_TIMESTAMPNS = 35      # asm-generic (x86, arm, riscv): SCM_TIMESTAMPNS, a struct timespec
_ANC_TS = socket.CMSG_SPACE(16)


def enable_timestamps(sock):
    """Ask the kernel for each frame's receive timestamp (one per skb: the copies a capture sees
    of one frame carry the same one; another transmission has its own). False if refused."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        return True
    except OSError:
        return False


def frames_to(sock, dst, budget):
    """Like packets_to, yielding (packet, interface name, kernel receive timestamp in ns or None)."""
    for _ in range(budget):
        try:
            data, anc, _flags, addr = sock.recvmsg(65536, _ANC_TS)
        except (BlockingIOError, InterruptedError):
            return
        if addr[2] != PACKET_HOST or len(data) < 40 or data[24:40] != dst:
            continue
        ts = None
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                sec, nsec = struct.unpack_from("=qq", value)
                ts = sec * 1_000_000_000 + nsec
        yield data, addr[0], ts


class CaptureCopies:
    """Folds the copies of ONE frame a packet socket on every interface can see twice (a bridge
    and its port, a veth pair, the kernel delivering one skb to two taps), and nothing else: a
    copy has the same bytes AND the same kernel receive timestamp (the skb's, kept by clones);
    without timestamps, the same bytes on another interface within `window_ms`. A second
    transmission of the same bytes (a replay, a retransmission) is never a copy: it has its own
    timestamp, or comes in on the interface the first one did."""

    def __init__(self, window_ms=100, size=64):
        self.window_ms = window_ms
        self.size = size
        self._seen = {}              # bytes -> (timestamp ns or None, {ifindex}, ms)
        self.folded = 0

    def is_copy(self, data, ifindex, ts, now):
        prev = self._seen.get(data)
        if prev is not None and now - prev[2] < self.window_ms:
            pts, ifs, _t = prev
            if ts is not None and pts is not None:
                copy = ts == pts
            else:
                copy = ifindex not in ifs
            if copy:
                ifs.add(ifindex)
                self.folded += 1
                return True
        if len(self._seen) >= self.size:
            self._seen.clear()
        self._seen[data] = (ts, {ifindex}, now)
        return False


def hdrincl_socket():
    """Raw IPv6 socket (IPPROTO_RAW) that sends whole packets, header included, as given."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL, 1)
    return s


def _nft(script, log, what):
    try:
        p = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        log("warning", reason="nft: %s (ICMPv6 errors for %s stay on)" % (exc, what))
        return False
    if p.returncode:
        log("warning", reason="nft: %s (ICMPv6 errors for %s stay on)" % (p.stderr.strip()[:200], what))
        return False
    return True


def nft_drop_param_problems(table, log, what):
    """(Re)create table `ip6 <table>` dropping outgoing ICMPv6 Parameter Problem code 2. On failure
    (no nft, no permission) log a "warning" naming `what` stays unsilenced; returns True if made."""
    return _nft(_NFT_DROP % {"t": table}, log, what)


def nft_delete_table(table, log, what):
    return _nft("delete table ip6 %s\n" % table, log, what)
