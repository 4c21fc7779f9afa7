"""The correspondent node's I/O around cn.core: sockets, the UDP echo application, the event log.

Sockets (one thread, one `select.epoll`, sleeping until a socket is readable or the next binding
expiry):
- AF_PACKET (SOCK_DGRAM, IPv6): every Mobility Header and every packet with a Home Address
  option addressed to the CN. The kernel here has no MIPv6 and drops HAO packets before a raw
  socket sees them, so this tap is the only way in; plain MH (HoTI, CoTI, a BU from
  home) is read here too, so there is one path for all signalling.
- raw IPv6 protocol 135: opened only so that the kernel hands MH to a socket instead of answering
  it with ICMP "unrecognized Next Header"; what it reads is discarded (the tap has it already).
- IPPROTO_RAW (header included): everything the CN sends that the kernel cannot build: HoT, CoT,
  BA, BE, and data with a type 2 routing header to a bound MN.
- UDP echo: a kernel socket bound to [address]:echo_port for tunnelled traffic (plain packets
  from the HoA); echoes go back through `core.send_data`, i.e. with RH2 straight to the CoA when
  the MN holds a binding. Echo requests that came with a HAO are answered the same way.

- probe (optional): a UDP socket on [address]:sport; every interval a `R6PD` datagram to the
  MN's probe port, through the binding when there is one; echoes come back through the tunnel
  (this socket) or directly with a HAO (the tap), and each is logged as an `rtt` event.

- nftables: this kernel answers every packet with a Home Address option with ICMPv6 Parameter
  Problem code 2 although the tap handled it; table `roam6_cn` drops those errors while the CN
  runs (removed at close; a warning, not a failure, if nft is missing).

Log: one JSON object per line on stdout: {"t_ms": ..., "ev": ...}. With --status FILE the binding
cache and counters are also written there (atomically) whenever a binding changes.
"""
import json
import os
import signal
import socket
import sys
import time

from roam6_codec import consts as C
from roam6.wire.errors import DecodeError
from roam6_codec.udp import build_udp, decode_udp, udp_checksum_ok

from ..errors import UserError
from ..pktsock import (ETH_P_IPV6, hdrincl_socket, nft_delete_table, nft_drop_param_problems, packet_socket,
                       packets_to)
from ..sigloop import epoll_with_signals
from .core import Correspondent

NFT_TABLE = "roam6_cn"
_NFT_WHAT = "HAO packets"


def _now_ms():
    """The core's `now`: monotonic milliseconds."""
    return time.monotonic_ns() // 1_000_000


class CNDriver:
    def __init__(self, cfg, out=None, status_path=None):
        self.cfg = cfg
        self.out = out or sys.stdout
        self.status_path = status_path
        self.core = Correspondent(cfg.address, kcn=cfg.kcn, nonce_period_ms=int(cfg.nonce_period * 1000),
                                  max_lifetime_units=cfg.max_lifetime // 4)
        self.spkt = self.smh = self.sraw = self.secho = self.sprobe = None
        self.echo = {"tunnel": 0, "direct": 0}
        self.probe_seq = 0
        self.probe_next = None
        self.probe_sent = {}  # seq -> which way it went
        self._nft = False
        self._stop = False

    def log(self, ev, **kw):
        # CLOCK_MONOTONIC in ms (to the microsecond), the MN's clock on the bench (CONTRACTS §8.2)
        d = {"t_ms": round(time.monotonic() * 1000.0, 3), "ev": ev}
        d.update(kw)
        try:
            self.out.write(json.dumps(d, sort_keys=True) + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass

    # ---- sockets ---------------------------------------------------------------------------
    def open(self):
        cfg = self.cfg
        try:
            self.spkt = packet_socket()
            # room for bursts: the tap sees every IPv6 frame of the link, not only ours
            self.spkt.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            if cfg.interface:
                self.spkt.bind((cfg.interface, ETH_P_IPV6))
            self.smh = socket.socket(socket.AF_INET6, socket.SOCK_RAW, C.NH_MH)
            self.sraw = hdrincl_socket()
        except PermissionError:
            self.close()
            raise UserError("the CN needs packet and raw sockets",
                            hint="run it as root (or with CAP_NET_RAW)") from None
        except OSError as exc:
            self.close()
            raise UserError("cannot open the CN's sockets: %s" % exc.strerror,
                            hint="check field 'interface' (%r) names a link in this namespace"
                                 % cfg.interface) from None
        if cfg.echo_port:
            self.secho = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            try:
                self.secho.bind((cfg.address_text, cfg.echo_port))
            except OSError as exc:
                self.close()
                raise UserError("cannot bind UDP [%s]:%d (fields 'address'/'echo_port'): %s"
                                % (cfg.address_text, cfg.echo_port, exc.strerror),
                                hint="is the address configured in this namespace, and the port free?") from None
        if cfg.probe is not None:
            self.sprobe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            try:
                self.sprobe.bind((cfg.address_text, cfg.probe["sport"]))
            except OSError as exc:
                self.close()
                raise UserError("cannot bind UDP [%s]:%d (field 'probe.sport'): %s"
                                % (cfg.address_text, cfg.probe["sport"], exc.strerror)) from None
            self.probe_next = _now_ms()
        for s in (self.spkt, self.smh, self.sraw, self.secho, self.sprobe):
            if s is not None:
                s.setblocking(False)
        self._nft = nft_drop_param_problems(NFT_TABLE, self.log, _NFT_WHAT)
        self.log("ready", address=cfg.address_text, echo_port=cfg.echo_port, interface=cfg.interface)

    def close(self):
        if self._nft:
            nft_delete_table(NFT_TABLE, self.log, _NFT_WHAT)
            self._nft = False
        for s in (self.spkt, self.smh, self.sraw, self.secho, self.sprobe):
            if s is not None:
                s.close()
        self.spkt = self.smh = self.sraw = self.secho = self.sprobe = None

    # ---- output ----------------------------------------------------------------------------
    def _flush(self, now):
        for pkt, dst in self.core.datagrams_to_send(now):
            self._raw_send(pkt, dst)
        evs = []
        while True:
            ev = self.core.next_event()
            if ev is None:
                break
            evs.append(ev)
        # the status file first: whoever reads a binding line finds the file already saying so
        if any(e.kind in ("binding", "binding_deleted", "binding_expired") for e in evs):
            self.write_status(now)
        for ev in evs:
            fields = ev._asdict()
            self.log(fields.pop("kind"), **fields)

    def _raw_send(self, pkt, dst):
        try:
            self.sraw.sendto(pkt, (dst, 0))
        except OSError as exc:
            self.log("send_error", dst=dst, reason=exc.strerror)

    def write_status(self, now):
        if not self.status_path:
            return
        d = {"address": self.cfg.address_text, "bindings": self.core.bindings(now),
             "stats": dict(self.core.stats, echo_tunnel=self.echo["tunnel"], echo_direct=self.echo["direct"])}
        tmp = self.status_path + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(d, f, sort_keys=True)
            os.replace(tmp, self.status_path)
        except OSError as exc:  # a status file we cannot write must not stop the CN
            self.log("warning", reason="cannot write --status %s: %s" % (self.status_path, exc.strerror))

    # ---- input -----------------------------------------------------------------------------
    def _on_packet(self):
        for data in packets_to(self.spkt, self.cfg.address, 256):
            if data[6] != C.NH_MH and data[6] != C.NH_DSTOPTS:
                continue  # plain traffic: the kernel delivers it
            now = _now_ms()
            got = self.core.receive(data, now)
            if got is not None:
                _, hoa, nh, payload = got
                # only packets that came with a HAO (HoA != source): the kernel has the rest
                if nh == C.NH_UDP and hoa != data[8:24]:
                    self._udp_hao(now, hoa, payload)
            self._flush(now)

    def _udp_hao(self, now, hoa, seg):
        try:
            u = decode_udp(seg)
        except DecodeError:
            return
        if not udp_checksum_ok(hoa, self.cfg.address, seg[:u.length]):
            return
        pr = self.cfg.probe
        if pr is not None and u.dport == pr["sport"]:
            self._probe_echo(bytes(u.payload), "direct")
        elif self.cfg.echo_port and u.dport == self.cfg.echo_port:
            self.echo["direct"] += 1
            self._reply(now, hoa, u.sport, bytes(u.payload))

    # ---- RTT probe ---------------------------------------------------------------------------
    def _probe_send(self, now):
        pr = self.cfg.probe
        self.probe_seq += 1
        seq = self.probe_seq
        data = b"R6PD" + seq.to_bytes(4, "big") + int(time.monotonic() * 1e6).to_bytes(8, "big")
        if self.core.binding(pr["hoa"], now) is not None:
            udp = build_udp(pr["sport"], pr["port"], data, src=self.cfg.address, dst=pr["hoa"])
            self.core.send_data(pr["hoa"], C.NH_UDP, udp, now)
            way = "direct"
        else:
            try:
                self.sprobe.sendto(data, (pr["hoa_text"], pr["port"]))
            except OSError:
                pass
            way = "tunnel"
        self.probe_sent[seq] = way
        self.probe_sent.pop(seq - 1000, None)
        self.probe_next = now + pr["interval_ms"]

    def _probe_echo(self, data, way_in):
        if len(data) < 16 or data[:4] != b"R6PD":
            return
        seq = int.from_bytes(data[4:8], "big")
        way_out = self.probe_sent.pop(seq, None)
        if way_out is None:
            return  # a duplicate, or not ours
        rtt = time.monotonic() * 1e6 - int.from_bytes(data[8:16], "big")
        self.log("rtt", seq=seq, rtt_ms=round(rtt / 1000.0, 3), out=way_out, back=way_in)

    def _on_probe(self):
        for _ in range(256):
            try:
                data, addr = self.sprobe.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            self._probe_echo(data, "tunnel")

    def _reply(self, now, hoa, port, data):
        if self.core.binding(hoa, now) is not None:
            udp = build_udp(self.cfg.echo_port, port, data, src=self.cfg.address, dst=hoa)
            self.core.send_data(hoa, C.NH_UDP, udp, now)
        else:
            try:
                self.secho.sendto(data, (socket.inet_ntop(socket.AF_INET6, hoa), port))
            except OSError as exc:
                self.log("send_error", dst=socket.inet_ntop(socket.AF_INET6, hoa), reason=exc.strerror)

    def _on_echo(self):
        for _ in range(256):
            try:
                data, addr = self.secho.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            now = _now_ms()
            self.echo["tunnel"] += 1
            self._reply(now, socket.inet_pton(socket.AF_INET6, addr[0].split("%")[0]), addr[1], data)

    def _drain_mh(self):
        for _ in range(256):
            try:
                self.smh.recv(65536)
            except (BlockingIOError, InterruptedError):
                return

    # ---- loop --------------------------------------------------------------------------------
    def stop(self, *_):
        self._stop = True

    def run(self, duration=None):
        handlers = {self.spkt.fileno(): self._on_packet, self.smh.fileno(): self._drain_mh}
        if self.secho is not None:
            handlers[self.secho.fileno()] = self._on_echo
        if self.sprobe is not None:
            handlers[self.sprobe.fileno()] = self._on_probe
        try:
            with epoll_with_signals(handlers, {signal.SIGTERM: self.stop, signal.SIGINT: self.stop}) as ep:
                end = None if duration is None else _now_ms() + int(duration * 1000)
                self.write_status(_now_ms())
                while not self._stop:
                    now = _now_ms()
                    t = self.core.get_timer()
                    if self.probe_next is not None:
                        t = self.probe_next if t is None else min(t, self.probe_next)
                    if end is not None:
                        t = end if t is None else min(t, end)
                    timeout = -1 if t is None else max(0, t - now) / 1000.0
                    for fd, _ in ep.poll(timeout):
                        handlers[fd]()
                    now = _now_ms()
                    self.core.handle_timer(now)
                    if self.probe_next is not None and now >= self.probe_next:
                        self._probe_send(now)
                    self._flush(now)
                    if end is not None and now >= end:
                        break
        finally:
            self.log("stopped", stats=self.core.stats, echo_tunnel=self.echo["tunnel"], echo_direct=self.echo["direct"])
        return 0
