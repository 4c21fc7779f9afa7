"""The home agent's I/O: sockets, the TUN data plane, routes and proxy ND, signals.

One thread, one `select.epoll`: the loop sleeps exactly until a socket is readable or the binding
cache's next expiry (no polling). Every packet is handled when it arrives, so a BU accepted at
time t moves downstream traffic from t on (the data plane reads `cache.bindings` per packet).

Sockets:
- udp4 / udp6: UDP port 4191 (RFC 5555). The payload's version nibble must be 6 (roam6 carries
  IPv6 only). Inner MH to the HA's address -> binding cache; anything else is MN data: its inner
  source must be a HoA bound to exactly this outer address and port, then it goes into the TUN.
- ip6 (RFC 6275 native): BUs carry a Home Address option, which this kernel drops before raw
  sockets see them (it has no MIPv6), so they are read from an AF_PACKET socket with a BPF filter
  that passes only IPv6 packets whose next header is Destination Options or MH (a deregistration
  from home has no HAO). BAs (type 2 routing header, or none to an MN back home) leave through
  an IPPROTO_RAW (header-included) socket. Data is IPv6-in-IPv6 over a raw protocol-41 socket.
  The kernel's ICMPv6 complaints about these packets are silenced (nft table, raw 135 socket).
- TUN: the kernel routes each bound HoA (/128) into it; what the HA reads there goes to the
  binding's care-of address.
"""
import errno
import gc
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

from roam6_codec import consts as C

from .clock import now_ms as _now_ms, wall_ms as _wall_ms
from ..errors import UserError
from ..pktsock import (PACKET_HOST, CaptureCopies, attach_filter, enable_timestamps, frames_to, hdrincl_socket,
                       nft_delete_table, nft_drop_param_problems, packet_socket)
from ..ratelimit import TokenBucket
from ..sigloop import epoll_with_signals
from .cache import BindingCache
from .dad import HomeLinkND
from .listenfilter import SHIELDED_DROPS, filter_listener
from .limits import MAX_BINDINGS, MAX_BINDINGS_PER_SA, HALimits
from .peersocks import PeerSockets, exclusive_port_lock
from .ipv4home import (drop_stale_proxies4 as _v4_drop_stale, from_mn as _v4_from_mn, on_4in6 as _v4_on_4in6,
                       open_4in6 as _v4_open_4in6)
from .netlink import Netlink, NetlinkError
from .sa import sas_by_spi
from .tlvpath import frame as _tlv_frame, tlv_in as _tlv_in
from .tun import Tun

IPV6_FREEBIND = 78
_ANC6 = socket.CMSG_SPACE(20)      # one in6_pktinfo
TUN_MTU = 1400     # leaves room for IPv4+UDP (28) or IPv6+UDP (48) around a packet on a 1500 path
LISTENER_BATCH = 8   # datagrams read from the shared UDP socket before the loop polls again (a
                     # bound MN's own socket waits at most for these: ~8 x 30 us of flood BUs)
DUP_WINDOW_MS = 100   # ip6: copies of one frame the packet socket saw twice arrive within this




def _bpf_mh_to(ha, esp=False):
    """Classic BPF over the IPv6 header (SOCK_DGRAM packet sockets start at the network header):
    pass frames for this host whose next header is 60 (Destination Options: a BU with a Home
    Address option) or 135 (a BU without one: deregistration from home) - with `esp` (IPsec
    devices, ha/ipsecmh.py) also 50, ESP without a HAO - and whose destination is the HA's
    address; everything else is dropped in the kernel, never waking the HA."""
    w = struct.unpack(">4I", ha)
    nhs = (60, 135, 50) if esp else (60, 135)
    addr = 3 + len(nhs)                           # the address checks start here
    drop = addr + 9
    prog = [(0x20, 0, 0, 0xFFFFF000 + 4),        # A = skb->pkt_type (SKF_AD_PKTTYPE)
            (0x15, 0, drop - 2, PACKET_HOST),
            (0x30, 0, 0, 6)]                      # A = next header
    for i, nh in enumerate(nhs):
        at = 3 + i
        prog.append((0x15, addr - at - 1, drop - at - 1 if i == len(nhs) - 1 else 0, nh))
    for i in range(4):                            # destination address, word by word
        prog += [(0x20, 0, 0, 24 + 4 * i), (0x15, 0, drop - (addr + 2 * i + 1) - 1, w[i])]
    return prog + [(0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0)]

# This kernel answers every BU with a Home Address option with ICMPv6 Parameter Problem code 2
# (it does not know option 0xC9) although the HA handles the BU from its packet socket: silence
# those errors in the HA's namespace while it runs (nftables, deps/apt.txt).
NFT_TABLE = "roam6_ha"
_NFT_WHAT = "HAO BUs"


def packet_socket_for_bus(ha, esp=False):
    """An AF_PACKET socket (all interfaces) that only ever sees _bpf_mh_to(ha, esp)'s packets."""
    return attach_filter(packet_socket(), _bpf_mh_to(ha, esp))


class Logger:
    """One JSON object per line on stdout (the bench and the tests read it); drops once per source."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self._seen = set()
        self.lost = 0
        self._once_budget = TokenBucket(50, 200)     # lines logged "once per source": 50/s in all
        self.suppressed = 0
        try:
            self._fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None

    def __call__(self, ev, **fields):
        fields["ev"] = ev
        fields["t"] = round(time.time(), 6)
        if self.lost:
            fields["log_lines_lost"] = self.lost
        line = json.dumps(fields, sort_keys=True) + "\n"
        # a reader that stopped reading must not stall the data plane: drop the line instead
        try:
            if self._fd is not None and not select.select([], [self._fd], [], 0)[1]:
                self.lost += 1
                return
            self.stream.write(line)
            self.stream.flush()
        except (OSError, ValueError):     # stdout closed or gone: the HA keeps serving
            self.lost += 1
            return
        self.lost = 0

    def once(self, key, ev, **fields):
        if key in self._seen:
            return
        if not self._once_budget.take(_now_ms()):   # new sources without end (a spoofed flood):
            self.suppressed += 1                    # lines bounded too, counted in the next one
            return
        if self.suppressed:
            fields["log_lines_suppressed"], self.suppressed = self.suppressed, 0
        if len(self._seen) > 10000:
            self._seen.clear()
        self._seen.add(key)
        self(ev, **fields)


def _sysctl(path, value):
    """Set /proc/sys/PATH; return the old value (for restoring on exit) or None if absent."""
    full = "/proc/sys/" + path
    try:
        with open(full) as f:
            old = f.read().strip()
        with open(full, "w") as f:
            f.write(str(value))
        return old
    except OSError:
        return None


class HomeAgent:
    def __init__(self, cfg, log=None):
        self.cfg = cfg
        self.log = log or Logger()
        self.cache = BindingCache(cfg.address, cfg.prefix_bytes, sas_by_spi(cfg.sas),
                                  max_lifetime=cfg.max_lifetime, replay_window=cfg.replay_window,
                                  nat_refresh=cfg.nat_refresh, require_timestamps=cfg.require_timestamps,
                                  dad_ms=cfg.dad_ms if cfg.home_link else 0,
                                  limits=HALimits(getattr(cfg, "max_bindings", MAX_BINDINGS),
                                                  getattr(cfg, "max_bindings_per_sa", MAX_BINDINGS_PER_SA)))
        self.cache.v4homes = getattr(cfg, "ipv4_homes", None)     # RFC 5555 IPv4 HoAs (ipv4home.py)
        self.cache.dad_skip_pinned = getattr(cfg, "dad_skip_pinned", False)    # PROTOCOL-NOTES §11.14
        if getattr(cfg, "renumber", None) is not None:      # a second home prefix (ha/prefixes.py)
            cfg.renumber.start(_now_ms())
            self.cache.renum = cfg.renumber
        self.ipsec = self.ike = None   # ipsecmh.IpsecHA, ike.IkeSockets: ha.json "security" lists "ipsec"
        if "ipsec" in getattr(cfg, "security", ()):
            from .ipsecmh import attach
            attach(self)
        self.ha = cfg.address
        self.tun = None
        self.nl = None
        self.home_ifindex = None
        self.socks = {}          # transport -> socket
        self.s41 = None          # ip6: IPv6-in-IPv6 data
        self.sraw = None         # ip6: BAs with their type 2 routing header
        self.spkt = None         # ip6: BUs with their Home Address option
        self.s135 = None         # ip6: keeps the kernel quiet about native MH
        self.s4in6 = None        # ip6 with IPv4 HoAs: IPv4-in-IPv6 data (ipv4home.py)
        self.nd = None           # home link: DAD probes and the answers to them (dad.HomeLinkND)
        self._nft = False
        self._local6 = {}        # udp6: peer -> in6_pktinfo of the address it sends to
        self._copies = CaptureCopies(DUP_WINDOW_MS)   # ip6: one frame seen twice by the capture
        self._sysctl_restore = []
        self._locks = []         # the port locks (peersocks.exclusive_port_lock)
        self._local = {}         # transport -> (family, bind address): for the peer sockets
        self.peers = None        # peersocks.PeerSockets while run() runs
        self._stop = False
        self._reload = False
        self.aaa = None          # aaa.agent.AaaAgent when ha.json has an "aaa" section
        self.control = None      # control.ControlServer: `roam6 ha status`
        self.keep = None         # continuity.Continuity: journal, hot standby (ha.json journal/replica)
        self._batching = self._unflushed = False   # run(): the BUs of one poll's ready sockets, flushed once
        self.data_plane = True   # False while a hot standby: proxy ND waits for the takeover
        self.routes_live = True  # False while a standby's TUN is down (not ready): no routes into it
        self.switcher = None     # switch.Switcher once `roam6 ha switch` asked (RFC 5142)
        self.dhaad = None        # dhaad.Dhaad: DHAAD on the home agents anycast address
        self.shield = None       # listenfilter.Shield: unknown-SPI BU floods dropped in the kernel

    # ---- setup / teardown ---------------------------------------------------------------------
    def open(self):
        cfg = self.cfg
        try:
            self.nl = Netlink()
            self.tun = Tun(cfg.tun)
        except PermissionError:
            raise UserError("cannot create the TUN device %r: permission denied" % cfg.tun,
                            hint="run the HA as root (it needs CAP_NET_ADMIN)") from None
        except OSError as exc:
            raise UserError("cannot create the TUN device %r (field 'tun'): %s" % (cfg.tun, exc.strerror),
                            hint="is another HA running with the same 'tun' name?") from None
        try:
            self.nl.link_up(self.tun.ifindex, mtu=TUN_MTU)
        except OSError as exc:
            raise UserError("cannot bring up the TUN device %r: %s" % (cfg.tun, exc.strerror)) from None
        if cfg.home_link:
            try:
                self.home_ifindex = socket.if_nametoindex(cfg.home_link)
            except OSError:
                raise UserError("%s: field 'home_link' names %r, which is not an interface here"
                                % (getattr(cfg, "source", "HA config"), cfg.home_link),
                                hint="create it first (the bench's home bridge) or leave the field out") from None
        self._set_sysctl("net/ipv6/conf/all/forwarding", 1)
        if self.cache.v4homes is not None:
            self.cache.v4homes.load(_wall_ms())
            self._set_sysctl("net/ipv4/conf/all/forwarding", 1)
            if cfg.home_link:        # proxy ARP for bound IPv4 HoAs, answered at once
                self._set_sysctl("net/ipv4/neigh/%s/proxy_delay" % cfg.home_link, 0)
                _v4_drop_stale(self)
        if cfg.home_link:
            self._drop_stale_proxies()
            self._set_sysctl("net/ipv6/conf/%s/proxy_ndp" % cfg.home_link, 1)
            # answer NS for bound HoAs at once, not after the default random proxy delay (~0.8 s)
            self._set_sysctl("net/ipv6/neigh/%s/proxy_delay" % cfg.home_link, 0)
            from .homelinkdad import tentative     # the link just came up: say what it costs
            dad = tentative(cfg.home_link)
            if dad:
                self.log("home_link_tentative", link=cfg.home_link, addresses=dad,
                         reason="duplicate address detection still running: until it ends this host sends no "
                                "Neighbor Solicitation on the home link, so a device bound meanwhile may wait "
                                "~1 s for its first packets (start the HA once the link is up a few seconds)")
            if cfg.dad_ms:
                try:
                    self.nd = HomeLinkND(cfg.home_link)
                except OSError as exc:
                    raise UserError("cannot open a packet socket on the home link %r for duplicate address "
                                    "detection: %s" % (cfg.home_link, exc.strerror),
                                    hint="run the HA as root (CAP_NET_RAW), or set \"dad_ms\": 0 in ha.json") from None
        if getattr(cfg, "journal", None) or getattr(cfg, "replica", None):
            from .continuity import Continuity
            self.keep = Continuity(self)
            self.keep.restore(_now_ms(), _wall_ms())     # bindings, routes, proxies before any socket
        if "udp4" in cfg.transports:
            self.socks["udp4"] = self._udp(socket.AF_INET, cfg.ipv4, "ipv4")
        if "udp6" in cfg.transports:
            self.socks["udp6"] = self._udp(socket.AF_INET6, "::", "address")
        if "ip6" in cfg.transports:
            self._open_ip6()
        if self.ipsec is not None:
            from .ike import IkeSockets
            self.ike = IkeSockets(self)
            self.ike.open()
        from .listenfilter import shield_for
        self.shield = shield_for(self)
        from .control import ControlServer
        self.control = ControlServer(self)
        self.control.open()
        from .vendor import VendorStore
        self.cache.vendor = VendorStore(self.cache.bindings)   # RFC 5094/5096 data per binding
        from .dhaad import Dhaad          # DHAAD on the home agents anycast address
        self.dhaad = Dhaad(self)
        self.dhaad.open()
        if cfg.aaa is not None:
            from ..aaa.agent import AaaAgent
            self.aaa = AaaAgent(self.cache, cfg.aaa, self.log, cfg.home_prefix, cfg.max_lifetime)
            self.aaa.open()
            if self.ipsec is not None:      # IPsec devices' PSKs from the server too (ha/ipsecaaa.py)
                from .ipsecaaa import attach as attach_ipsec_aaa
                attach_ipsec_aaa(self)
        # everything loaded so far (SAs, sockets, modules) lives as long as the HA: keep it out
        # of the cyclic collector's full passes, which otherwise pause the data plane
        gc.collect()
        gc.freeze()

    def _drop_stale_proxies(self):
        """Proxy entries for the home prefix left by an HA that was killed (its TUN and routes
        died with it, proxy entries do not): nobody answers for those HoAs until they register."""
        try:
            out = subprocess.run(["ip", "-6", "neigh", "show", "proxy", "dev", self.cfg.home_link],
                                 capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return
        for line in out.splitlines():
            try:
                addr = ipaddress.IPv6Address(line.split()[0])
            except (ValueError, IndexError):
                continue
            rn = getattr(self.cfg, "renumber", None)
            if addr in self.cfg.home_prefix or (rn is not None and addr in rn.new):
                self._kernel("proxy_del", addr.packed, self.home_ifindex)

    def _set_sysctl(self, path, value):
        old = _sysctl(path, value)
        if old is not None and old != str(value):
            self._sysctl_restore.append((path, old))

    def _udp(self, family, host, field):
        s = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        elif getattr(self.cfg, "replica", None) is not None:
            s.setsockopt(socket.SOL_IP, 15, 1)    # IP_FREEBIND: a standby binds the shared address it lacks
        # SO_REUSEADDR for the per-peer sockets (ha/peersocks.py); the lock makes a second HA fail
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._locks.append(exclusive_port_lock(family, self.cfg.port))
            s.bind((host, self.cfg.port))
        except OSError as exc:
            s.close()
            raise UserError("cannot bind UDP %s port %d (fields %r/'port'): %s" % (host, self.cfg.port, field,
                                                                                   exc.strerror),
                            hint="is the address configured in this namespace, and no other HA running?") from None
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        s.setblocking(False)
        why = filter_listener(s, ipv4=self.cache.v4homes is not None)   # non-roam6 dropped in the kernel
        if why:
            self.log("warning", reason="UDP %s: no kernel filter for non-IPv6 datagrams: %s" % (host, why))
        self._local["udp6" if family == socket.AF_INET6 else "udp4"] = (family, (host, self.cfg.port))
        return s

    def _open_ip6(self):
        self.spkt = packet_socket_for_bus(self.ha, esp=self.ipsec is not None)
        self.spkt.setblocking(False)
        enable_timestamps(self.spkt)
        self.sraw = hdrincl_socket()
        self.s41 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, C.NH_IPV6)
        try:
            self.s41.bind((self.cfg.address_text, 0))   # outer source of the tunnel = the HA address
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL:
                raise UserError("cannot use the HA address %s (field 'address'): %s" % (self.cfg.address_text,
                                                                                        exc.strerror),
                                hint="configure it on the home link, or drop \"ip6\" from 'transports'") from None
            # not there yet (still in DAD, or the link comes up later): bind anyway, say so
            try:
                self.s41.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
                self.s41.bind((self.cfg.address_text, 0))
            except OSError as exc2:
                raise UserError("cannot use the HA address %s (field 'address'): %s" % (self.cfg.address_text,
                                                                                        exc2.strerror),
                                hint="configure it on the home link, or drop \"ip6\" from 'transports'") from None
            self.log("warning", reason="the HA address %s (field 'address') is not configured here (yet): "
                     "ip6 works once it is" % self.cfg.address_text)
        self.s41.setblocking(False)
        # a protocol-135 raw socket, never read: its existence stops the kernel from answering
        # native MH packets (read from the packet socket) with "unknown next header" errors
        self.s135 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, C.NH_MH)
        self.s135.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        if self.cache.v4homes is not None:
            self.s4in6 = _v4_open_4in6(self)
        self._nft = nft_drop_param_problems(NFT_TABLE, self.log, _NFT_WHAT)

    def close(self):
        if self.nl is not None and self.tun is not None:
            self.cache.remove_all()
            self._apply_events()
        if self.keep is not None:
            self.keep.close()
        if self._nft:
            nft_delete_table(NFT_TABLE, self.log, _NFT_WHAT)
            self._nft = False
        if self.aaa is not None:
            self.aaa.close()
        if self.control is not None:
            self.control.close()
        if self.dhaad is not None:
            self.dhaad.close()
        if self.ike is not None:
            self.ike.close()
        for s in (list(self.socks.values()) + [self.s41, self.sraw, self.spkt, self.s135, self.nd, self.s4in6]
                  + self._locks):
            if s is not None:
                s.close()
        self.socks = {}
        self._locks = []
        if self.tun is not None:
            self.tun.close()          # the device goes with its last fd
            self.tun = None
        for path, old in reversed(self._sysctl_restore):
            _sysctl(path, old)
        self._sysctl_restore = []
        if self.nl is not None:
            self.nl.close()
            self.nl = None

    # ---- events -> kernel state ---------------------------------------------------------------
    def _apply_events(self):
        keep = self.keep
        evs = self.cache.events()
        if keep is not None and evs:
            now, wall = _now_ms(), _wall_ms()
            for ev in evs:
                if ev.kind.startswith("binding_"):
                    keep.changed(ev, now, wall)     # journal + standby, before the BAs leave:
            keep.flush(now, wall)                   # the batch's records in one write, few messages
        for ev in evs:
            kind = ev.kind
            if self.aaa is not None:
                self.aaa.on_event(ev, _now_ms())      # accounting
            if self.peers is not None and kind in ("binding_added", "binding_moved", "binding_removed"):
                self._follow_peer(ev)
            if kind == "binding_added" and self.routes_live:
                _, b = ev
                self._kernel("route_add", b.hoa, self.tun.ifindex)
                if self.home_ifindex and self.data_plane:
                    self._kernel("proxy_add", b.hoa, self.home_ifindex)
                    if keep is None or not keep.applying:     # a restore announces in chunks itself
                        self._gratuitous_na(b.hoa)
            elif kind == "binding_removed":
                _, b, _reason = ev
                self._kernel("route_del", b.hoa, self.tun.ifindex)
                if self.home_ifindex:
                    self._kernel("proxy_del", b.hoa, self.home_ifindex)
            elif kind == "ipv4_bound" or kind == "ipv4_released":
                op = "add" if kind == "ipv4_bound" else "del"
                self._kernel("route_" + op, ev.hoa4, self.tun.ifindex)
                if self.home_ifindex:
                    self._kernel("proxy_" + op, ev.hoa4, self.home_ifindex)
            elif kind == "dad_started" and self.nd is not None:
                _, hoa, _source = ev
                try:
                    self.nd.send(hoa)
                except OSError as exc:     # unanswered, the wait still ends in the BA
                    self.log.once(("dad_send", exc.errno), "send_error", peer=self.cfg.home_link, reason=exc.strerror)
            if kind == "bu_dropped" and self.shield is not None and ev.reason.startswith(SHIELDED_DROPS):
                self.shield.unknown_spi(_now_ms())
            d = ev.as_dict()
            name = d.pop("ev")
            if kind == "bu_dropped" or (kind == "bu_rejected" and ev.reason in ("auth", "ts_window")):
                # what an attacker can provoke at will is logged once per source and rule
                self.log.once((ev.source[1], ev.reason.split(":")[0]), name, **d)
            else:
                self.log(name, **d)

    def _gratuitous_na(self, hoa):
        """RFC 6275 §10.4.1: a new binding's HoA announced on the home link (an unsolicited NA,
        Override), so a neighbour cache still resolving it (another HA let it go: a Home Agent
        Switch, docs/PROTOCOL-NOTES.md) points here now, not after its next solicitation (1 s)."""
        from .continuity import unsolicited_na
        try:
            unsolicited_na(self.cfg.home_link, [hoa])
        except OSError as exc:
            self.log.once(("gratuitous_na", exc.errno), "send_error", peer=self.cfg.home_link, reason=exc.strerror)

    def _follow_peer(self, ev):
        """A bound MN's own receive queue (ha/peersocks.py) follows its binding."""
        b = ev.binding
        if ev.kind == "binding_removed":
            self.peers.drop(b.transport, *b.peer)
        else:
            old = (ev.old_transport,) + tuple(ev.old_peer) if ev.kind == "binding_moved" else None
            if old is not None and old[0] == "udp6" and tuple(old[1:]) != tuple(b.peer):
                self._local6.pop(tuple(old[1:]), None)     # the address it sent to from its old peer
            self.peers.follow(b.transport, b.peer, old, self._on_udp)

    def _flush(self, now):
        """After every input to the cache: routes first (the binding is live before the BA
        leaves), then what the cache queued."""
        self._apply_events()
        if self.cache.v4homes is not None:
            try:
                self.cache.v4homes.save()
            except OSError as exc:
                self.log.once(("leases", exc.errno), "error", reason="IPv4 leases file not written: %s" % exc)
        outs = self.cache.datagrams_to_send(now)
        if self.keep is not None:
            outs = self.keep.hold_bas(outs, now)     # replica "ack": BAs wait for the standby (ha/ack.py)
        self._send(outs)

    def _kernel(self, op, hoa, ifindex):
        try:
            getattr(self.nl, op)(hoa, ifindex)
        except NetlinkError as exc:
            self.log("error", op=op, hoa=socket.inet_ntop(socket.AF_INET if len(hoa) == 4 else socket.AF_INET6, hoa),
                     errno=exc.errno, reason=exc.strerror)

    def _send6(self, datagram, peer):
        """udp6: answer from the address the MN sent to (a stateful IPv6 firewall - the reason
        for udp6 - passes only replies from that exact address; the kernel would pick the
        outgoing interface's address)."""
        local = self._local6.get(peer)
        if local is None:
            self.socks["udp6"].sendto(datagram, peer)
        else:
            self.socks["udp6"].sendmsg([datagram], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, local)], 0, peer)

    def _send(self, outs):
        if self.ipsec is not None and outs:
            outs = self.ipsec.protect(outs)       # MN-HA messages to IPsec devices: sealed
        for datagram, (transport, host, port) in outs:
            peer = (host, port)
            try:
                if transport == "ip6":
                    self.sraw.sendto(datagram, peer)
                elif transport == "udp6":
                    self._send6(datagram, peer)
                else:
                    self.socks[transport].sendto(datagram, peer)
            except OSError as exc:
                self.log.once(("send", peer[0], exc.errno), "send_error", peer="%s:%d" % peer, reason=exc.strerror)

    # ---- packet handlers ----------------------------------------------------------------------
    def _on_udp(self, transport, sock=None):
        sock = sock or self.socks[transport]
        bindings = self.cache.bindings
        tun_write = self.tun.write
        ha = self.ha
        v6 = transport == "udp6"
        local6 = self._local6
        v4homes = self.cache.v4homes
        # the listener (everybody) in small batches: a bound MN's own socket waits at most for
        # one of them (ha/peersocks.py); a peer socket in large ones
        own = sock is not self.socks[transport]
        block = self.cache.limits.block
        blocked = block.blocked
        # a udp4 peer socket is connected: every datagram on it is from its peer, so `recv` (no
        # source address made into a tuple and a text per datagram: ~1/6 of an upstream packet's cost)
        fixed = None
        if own and not v6:
            try:
                fixed = sock.getpeername()
            except OSError:
                pass                            # (not connected after all: read with recvfrom)
        for _ in range(256 if own else LISTENER_BATCH):
            try:
                if v6:
                    data, anc, _flags, addr = sock.recvmsg(65536, _ANC6)
                elif fixed is not None:
                    data, addr = sock.recv(65536), fixed
                else:
                    data, addr = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue   # e.g. ICMP port unreachable reported on the socket
            peer = addr[:2]
            if blocked and not own and peer[0] in blocked and block.drop_datagram(data, transport, peer, bindings,
                                                                                  _now_ms()):
                continue       # a host blocked for failing (ha/sourceblock.py): no parsing, no rules
            if data and data[0] == 1 and not v6:     # RFC 5555 TLV header (roam6_codec/udptlv.py)
                data = _tlv_in(self, data, peer)
                if data is None:
                    continue
            if v6:
                for level, kind, value in anc:
                    if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(value) >= 20:
                        if local6.get(peer) != value:
                            if len(local6) > 65536:
                                local6.clear()
                            local6[peer] = value[:16] + b"\0\0\0\0"   # in6_pktinfo, any interface
            if v4homes is not None and data and data[0] >> 4 == 4:
                _v4_from_mn(self, data, transport, peer)       # to the IPv4 HoA's home (RFC 5555 §4.1)
                continue
            if len(data) < 40 or data[0] >> 4 != 6:
                self.log.once((addr[0], "not-ipv6"), "dropped", source="%s:%d" % peer,
                              reason="UDP payload is not an IPv6 packet (roam6 carries IPv6 only)")
                continue
            if data[6] == C.NH_MH and data[24:40] == ha:
                self._signal(data, (transport, peer[0], peer[1]))
                continue
            if data[6] == 50 and self.ipsec is not None and data[24:40] == ha:   # ESP (ha/ipsecmh.py)
                self._signal(data, (transport, peer[0], peer[1]))
                continue
            b = bindings.get(data[8:24])
            if b is not None and b.peer == peer and b.transport == transport:
                if data[6] == 58 and len(data) > 40 and data[40] == 146 and data[24:40] == ha:
                    from .dhaad import mpa_packet       # a Mobile Prefix Solicitation (ha/dhaad.py)
                    mpa = mpa_packet(data, self.cfg)
                    if mpa is not None:
                        self._send([(mpa, (transport, peer[0], peer[1]))])
                    continue
                try:
                    tun_write(data)
                    b.rx_packets += 1           # accounting (aaa/agent.py)
                    b.rx_bytes += len(data)
                except OSError:
                    pass
            else:
                now = _now_ms()
                self.cache.unbound_data(data[8:24], (transport, peer[0], peer[1]), now)
                self._flush(now)      # (BAs of this batch's BUs queued too: their events first)
                self._unflushed = False

    def _on_home_nd(self):
        """An NA for, or another node's DAD probe of, a HoA whose BU waits for DAD: BA 134."""
        for hoa in self.nd.claimed():
            if self.cache.dad_pending(hoa):
                now = _now_ms()
                self.cache.dad_conflict(hoa, now)
                self._flush(now)

    def _signal(self, packet, source):
        # expiry on the monotonic clock, RFC 4285 timestamps on the wall clock (cache docstring)
        now = _now_ms()
        if self.ipsec is not None and self.ipsec.on_signal(self, packet, source, now):
            return                                    # ESP, or an MH in clear for an IPsec device
        if self.aaa is None or not self.aaa.revocation_in(packet, source, now):   # (MH 16: aaa/revocation.py)
            self.cache.receive(packet, source, now, wall=_wall_ms())
        if self._batching:
            self._unflushed = True      # run() flushes once after every ready socket's turn
        else:
            self._flush(now)

    def _on_tun(self):
        bindings = self.cache.bindings
        socks = self.socks
        s41 = self.s41
        fd = self.tun.fd
        v4bound = self.cache.v4homes.bound if self.cache.v4homes is not None else None
        data_sas = self.ipsec.data_out if self.ipsec is not None else None    # ESP tunnel mode (ipsecmh.py)
        for _ in range(256):
            try:
                pkt = os.read(fd, 65536)
            except (BlockingIOError, InterruptedError):
                return
            if pkt and pkt[0] >> 4 == 4:      # to an IPv4 HoA: IPv4-in-UDP (udp4), IPv4-in-IPv6[-UDP] (udp6, ip6)
                b = v4bound.get(pkt[16:20]) if v4bound is not None else None
                if b is not None and b.transport == "ip6":
                    try:
                        self.s4in6.sendto(pkt, b.peer)
                    except OSError:
                        pass
                    continue
            else:
                b = bindings.get(pkt[24:40])
            if b is None:
                if data_sas and pkt[24:40] in data_sas:    # no binding: ESP in UDP 4500 (ha/espudp.py)
                    self.ike.udp_esp.seal(pkt[24:40], pkt)
                continue
            if data_sas and b.hoa in data_sas:
                sealed = self.ipsec.seal_data(b, pkt)
                if sealed is not None:
                    self._send([sealed])
                    b.tx_packets += 1
                    b.tx_bytes += len(pkt)
                continue
            try:
                t = b.transport
                if t == "udp4":
                    socks["udp4"].sendto(_tlv_frame(pkt) if b.tlv else pkt, b.peer)
                elif t == "udp6":
                    self._send6(pkt, b.peer)
                else:
                    s41.sendto(pkt, b.peer)
                b.tx_packets += 1
                b.tx_bytes += len(pkt)
            except OSError:
                pass

    def _on_packet(self):
        for data, ifindex, ts in frames_to(self.spkt, self.ha, 64):
            # a packet socket on every interface can see one frame twice (a bridge port whose MAC
            # is the bridge's, a veth pair): fold those copies, never a second transmission of
            # the same bytes (a replay must get its BA 135)
            if self._copies.is_copy(data, ifindex, ts, _now_ms()):
                continue
            self._signal(data, ("ip6", socket.inet_ntop(socket.AF_INET6, data[8:24]), 0))

    def _on_41(self):
        bindings = self.cache.bindings
        for _ in range(256):
            try:
                inner, addr = self.s41.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            if len(inner) < 40 or inner[0] >> 4 != 6:
                continue
            b = bindings.get(inner[8:24])
            if b is not None and b.transport == "ip6" and b.peer[0] == addr[0]:
                try:
                    self.tun.write(inner)
                    b.rx_packets += 1
                    b.rx_bytes += len(inner)
                except OSError:
                    pass

    # ---- the loop -----------------------------------------------------------------------------
    def stop(self, *_):
        self._stop = True

    def _hup(self, *_):
        self._reload = True

    def reload_keys(self):
        """SIGHUP: read the keys file again (e.g. after `roam6 provision --revoke`). A file that
        no longer loads is reported and the SAs in use stay."""
        from .config import load_keys
        peers = []              # the keys file's IPsec devices (ha/ipsecconf.py)
        try:
            sas = load_keys(self.cfg.keys_file, self.cfg.home_prefix, ipsec_out=peers) if self.cfg.keys_file else []
            if peers or self.ipsec is not None:
                from .ipsecconf import check_peers
                check_peers(peers, sas, getattr(self.cfg, "security", ["rfc4285"]), "keys file %s" % self.cfg.keys_file)
            v4static = None
            if self.cache.v4homes is not None or any(getattr(sa, "ipv4_hoa", None) for sa in sas):
                from .ipv4home import static_of     # the IPv4 HoAs of the keys file (RFC 5555)
                v4static = static_of(sas, self.cfg.keys_file, self.cache.v4homes)
        except UserError as exc:
            self.log("error", reason="keys file not reloaded: %s" % exc)
            return
        by_spi = sas_by_spi(sas)
        if self.ipsec is not None:   # IPsec devices (ha/ipsecmh.py): new PSKs/HoAs, gone ones revoked
            if getattr(self.aaa, "ipsec_aaa", None) is not None:
                peers = self.aaa.ipsec_aaa.keep(peers)     # and the AAA server's stay (ha/ipsecaaa.py)
            by_spi.update(self.ipsec.reload(peers))
            if self.ike is not None:
                self.ike.udp_esp.prune()   # ESP-in-UDP routes of dropped devices (ha/espudp.py)
        if self.aaa is not None:     # SAs from the AAA server stay
            by_spi.update({spi: sa for spi, sa in self.cache.sas.items() if spi in self.aaa.sa_expires})
        self.cache.replace_sas(by_spi, v4static)
        if self.shield is not None:
            self.shield.set_spis(by_spi, _now_ms())
        self._flush(_now_ms())        # routes/proxies of ended bindings and IPv4 HoAs, the leases file
        self.log("keys_reloaded", sas=len(sas))

    def run(self):
        handlers = {}
        for transport, s in self.socks.items():
            handlers[s.fileno()] = (lambda t=transport: self._on_udp(t))
        handlers[self.tun.fd] = self._on_tun
        if self.spkt is not None:
            handlers[self.spkt.fileno()] = self._on_packet
            handlers[self.s41.fileno()] = self._on_41
        if self.s4in6 is not None:
            handlers[self.s4in6.fileno()] = lambda: _v4_on_4in6(self)
        if self.nd is not None:
            handlers[self.nd.fileno()] = self._on_home_nd
        if self.control is not None:
            handlers.update(self.control.fds())
        if self.dhaad is not None:
            handlers.update(self.dhaad.fds())
        if self.ike is not None:
            handlers.update(self.ike.fds())
        if self.aaa is not None:
            for fd, h in self.aaa.fds().items():
                handlers[fd] = (lambda h=h: (h(), self._flush(_now_ms())))
        if self.keep is not None:
            handlers.update(self.keep.handlers())
        signals = {signal.SIGTERM: self.stop, signal.SIGINT: self.stop, signal.SIGHUP: self._hup}
        with epoll_with_signals(handlers, signals) as ep:
            def add_fd(fd, cb):
                handlers[fd] = cb
                ep.register(fd, select.EPOLLIN)

            def remove_fd(fd):
                handlers.pop(fd, None)
                try:
                    ep.unregister(fd)
                except (OSError, ValueError):     # the epoll already gone (the loop ended)
                    pass
            self.peers = PeerSockets(self._local, add_fd, remove_fd)
            listeners = {s.fileno() for s in self.socks.values()}
            # "ready" only once SIGTERM is ours: a supervisor that stops the HA right after it said
            # ready must get the clean stop (routes, proxies, TUN removed), not the default kill
            cfg = self.cfg
            self.log("ready", tun=self.tun.name, transports=sorted(self.socks) + (["ip6"] if self.spkt else []),
                     ipv4=cfg.ipv4, address=cfg.address_text, port=cfg.port, sas=len(cfg.sas))
            while not self._stop:
                if self._reload:
                    self._reload = False
                    self.reload_keys()
                    from .prefixes import reload as reload_prefixes
                    reload_prefixes(self, _now_ms())     # ha.json "renumber" (ha/prefixes.py)
                deadline = self.cache.get_timer()
                if self.aaa is not None:
                    t = self.aaa.get_timer()
                    deadline = t if deadline is None or (t is not None and t < deadline) else deadline
                for other in (self.keep, self.switcher, self.shield, self.cache.limits.block):
                    kt = other.get_timer() if other is not None else None
                    deadline = kt if deadline is None or (kt is not None and kt < deadline) else deadline
                timeout = -1 if deadline is None else max(0, deadline - _now_ms()) / 1000
                try:
                    ready = ep.poll(timeout)
                except InterruptedError:
                    continue
                if len(ready) > 1:     # the shared listeners last: bound MNs' own sockets go first
                    ready.sort(key=lambda r: r[0] in listeners)
                # the BUs of every ready socket into the cache, then one flush: routes, journal and
                # standby for all of them before their BAs (a loaded HA writes once per pass)
                self._batching = True
                for fd, _mask in ready:
                    try:
                        handlers[fd]()
                    except Exception as exc:   # a bug must not take the HA down with every binding
                        self.log.once(("internal", type(exc).__name__, str(exc)[:80]), "internal_error",
                                      error="%s: %s" % (type(exc).__name__, exc))
                self._batching = False
                if self._unflushed:
                    self._unflushed = False
                    self._flush(_now_ms())
                if self.shield is not None and self.shield.block.changed:
                    self.shield.blocks_changed(_now_ms())     # blocked hosts into the kernel filter
                now = _now_ms()
                if deadline is not None and now >= deadline:
                    if self.aaa is not None:
                        self.aaa.handle_timer(now)    # RADIUS retransmissions, failover, SA refresh
                    self.cache.handle_timer(now)      # expiries; BAs after DAD
                    if self.keep is not None:
                        self.keep.handle_timer(now)
                    self.cache.limits.block.handle_timer(now)    # blocked hosts (ha/sourceblock.py)
                    if self.shield is not None:
                        self.shield.handle_timer(now)
                    self._flush(now)
                if self.switcher is not None:
                    self._send(self.switcher.datagrams_to_send(now, _wall_ms()))
            self.peers.close()                    # (while the epoll they are registered in lives)
            self.peers = None
        self.log("stopping", bindings=len(self.cache.bindings))
