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
