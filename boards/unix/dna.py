"""The unix board's own addressing with Detecting Network Attachment (docs/ARCHITECTURE.md
"Addressing by the board"): what a Wi-Fi board's network stack does, done by the link adapter.

On every association (`attached()`, started by link.Link when the carrier comes up):
- IPv4 (RFC 4436): the remembered networks whose lease is still valid are probed at once with a
  unicast ARP request to the router's IP at its remembered link-layer address. A reply from that
  address: the board is back; the remembered address and default route go on the interface at
  once (netlink), and the DHCP exchange runs behind (INIT-REBOOT REQUEST, RFC 2131 §4.3.2). A NAK:
  the address comes off and a full exchange gives the new one (the MN sends a normal BU for it).
  No probe reply within `confirm_ms`: a new network, full exchange (DISCOVER with rapid commit,
  RFC 4039; dnsmasq answers it with the ACK at once).
- IPv6 (RFC 6059): a unicast Neighbor Solicitation to the remembered router's link-local address
  at its link-layer address; its solicited Neighbor Advertisement confirms the link and the
  remembered address goes on at once as optimistic (RFC 4429), with the default route, instead
  of waiting for the next Router Advertisement. Otherwise the kernel's SLAAC (RA) does it, and the
  result is remembered for next time.
The network memory (roam6.node.netmemory) is loaded here only: a board without this adapter's
addressing never imports it. Addresses are added with the lease's (or lifetime's) remaining
validity, so the kernel removes one the instant it would be past it.
"""
import socket
import struct
import time

from roam6.compat import IS_MICROPYTHON, ticks_diff, ticks_ms
from roam6.node import dhcp4
from roam6.node.netmemory import NetMemory
from roam6.wire.checksum import checksum6

_ETH_P_ARP = 0x0806
_ETH_P_IPV6 = 0x86DD
_BCAST = b"\xff" * 6
_IFA_F_OPTIMISTIC = 0x04
_IFA_F_NODAD = 0x02
_MSG_PEEK = getattr(socket, "MSG_PEEK", 2)


async def _sleep_ms(ms):
    import asyncio
    if IS_MICROPYTHON:
        await asyncio.sleep_ms(ms)
    else:
        await asyncio.sleep(ms / 1000)


def _wall():
    return int(time.time())


def _na(b, n):
    """The Ethernet frame b[:n] -> the target of the solicited Neighbor Advertisement in it, or None."""
    if n < 78 or b[12] != 0x86 or b[13] != 0xDD or b[14] >> 4 != 6 or b[20] != 58 or b[54] != 136 \
            or not b[58] & 0x40:
        return None
    return bytes(b[62:78])


class Addressing:
    confirm_ms = 60       # how long a probe of the remembered routers may take (a Wi-Fi AP answers in ~1-5)
    probe_every_ms = 5    # the probes again meanwhile (the first may go out before the AP forwards)
    dhcp_first_ms = 10    # DHCP retransmission: 6 x 10 ms, then 20, 40 ... 250 ms (RFC 2131's ~4 s is for
    dhcp_retry_ms = 250   # a wired host; a roaming sensor's first frames may be lost to the association)
    dhcp_tries = 16
    v6_first_ms = 30      # a board preferring IPv6, back on a dual-stack network: how long IPv4 waits for it

    def __init__(self, link, memory_path, families=(4, 6), log=None):
        self.link = link
        self.families = families
        self.confirmed6 = False
        # no path: addressing without a memory (every network is a first visit)
        self.mem = NetMemory(memory_path, 4 if memory_path else 0).load(_wall())
        if log is None:
            from roam6.node.eventlog import log_event as log
        self.log = log
        self._t_up = 0
        self.stats = {"confirmed": 0, "full": 0, "nak": 0, "v6_confirmed": 0, "remembered": 0}
        self.nl = socket.socket(16, socket.SOCK_RAW, 0)
        self.nl.bind(struct.pack("HHII", 16, 0, 0, 0) if IS_MICROPYTHON else (0, 0))
        self._nlseq = 0
        self._pk = {}        # ethertype -> packet socket (opened when first needed)
        self._u = None
        self._xid = (ticks_ms() * 7919) & 0xFFFFFFFF
        self.rx = bytearray(600)   # every frame and DHCP reply is read into this, one at a time
        self.v4 = None       # (addr, plen) this adapter put on the interface
        self.valid = {}      # IPv6 address -> valid lifetime (s) as the kernel last announced it
        self.pending = []    # events for the link adapter to report with its next ones
        self._task = None
        self._learn6 = True
        self._watcher = None
        self._retry_ms = 1000
        self._t6 = None      # this association's IPv6 probe task
        self._macs6 = ()     # the routers' MACs it probes
        self._a6 = None      # the IPv6 address it confirmed

    def events(self, events):
        """The link adapter's events: an association starts `attached()` (a lost one stops it); a
        global IPv6 address and default router the kernel's SLAAC set up are remembered once per
        association (unless they came from the memory)."""
        import asyncio
        for ev in events:
            if ev[0] == "link":
                if self._task is not None:
                    self._task.cancel()
                    self._task = None
                self.v4 = None
                if ev[1]:
                    self._learn6 = True
                    self._retry_ms = 1000
                    self._task = asyncio.create_task(self.attached())
                if self._watcher is None:
                    self._watcher = asyncio.create_task(self._watch())
            elif ev[0] == "addr" and ev[1] == 4 and not ev[4] and self.v4 is not None and ev[2] == self.v4[0]:
                # our address went away under us with the link still up (as a station's stack drops
                # it on a re-association the carrier did not show): a new association
                self.v4 = None
                if self.link.up:
                    if self._task is not None:
                        self._task.cancel()
                    self._task = asyncio.create_task(self.attached())
        link = self.link
        gw = link._gw[6]
        if self._learn6 and gw and 6 in self.families and not self.confirmed6:
            for a, (fam, plen, fl) in link._addrs.items():
                if fam == 6 and a[0] & 0xE0 == 0x20 and not fl & 0x40 and self.valid.get(a):
                    self._learn6 = False
                    self.remember6(a, plen, gw, self.valid[a])
                    break

    # -- sockets -------------------------------------------------------------------------------
    def _packet(self, proto):
        """A raw packet socket (whole Ethernet frames) for `proto` on this interface."""
        s = self._pk.get(proto)
        if s is None:
            if IS_MICROPYTHON:
                s = socket.socket(17, 3, struct.unpack("<H", struct.pack(">H", proto))[0])
                s.bind(struct.pack("<H", 17) + struct.pack(">H", proto) + struct.pack("<i", self.link.ifindex)
                       + bytes(12))
            else:
                s = socket.socket(17, 3, socket.htons(proto))
                s.bind((self.link.ifname, proto))
            s.setblocking(False)
            self._pk[proto] = s
        return s

    def _send_ll(self, proto, data, mac):
        try:
            self._packet(proto).send(mac + self.link.mac + struct.pack(">H", proto) + data)
        except OSError:
            pass

    def _recv_ll(self, proto):
        """One waiting frame into self.rx -> its length (0: none). Reads into the one buffer, one
        frame at a time (MicroPython's readinto glues datagrams: it is given the frame's size,
        peeked for IPv6; an ARP frame is 42 bytes and more is padding), never a fresh block per
        frame: a fragmented small heap may not have one."""
        s = self._pk[proto]
        rx = self.rx
        try:
            if not IS_MICROPYTHON:
                return s.recv_into(rx, 42 if proto == _ETH_P_ARP else len(rx))
            if proto == _ETH_P_ARP:
                size = 42
            else:
                h = s.recv(20, _MSG_PEEK)
                if not h:
                    return 0
                size = min(54 + ((h[18] << 8) | h[19]), len(rx)) if len(h) == 20 else 1
            return s.readinto(rx, size) or 0
        except OSError:
            return 0

    def _udp(self):
        if self._u is None:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.setsockopt(socket.SOL_SOCKET, 2, 1)    # SO_REUSEADDR
            u.setsockopt(socket.SOL_SOCKET, 6, 1)    # SO_BROADCAST
            u.setsockopt(socket.SOL_SOCKET, 25, self.link.ifname.encode())   # SO_BINDTODEVICE
            u.bind(socket.getaddrinfo("0.0.0.0", 68)[0][-1])
            self._bcast = socket.getaddrinfo("255.255.255.255", 67)[0][-1]
            u.setblocking(False)
            self._u = u
        return self._u

    def close(self):
        for s in list(self._pk.values()) + [self._u, self.nl]:
            if s is not None:
                s.close()
        self._pk = {}
        self._u = None

    # -- netlink ---------------------------------------------------------------------------------
    def _nl(self, mtype, flags, body):
        self._nlseq += 1
        try:
            self.nl.send(struct.pack("IHHII", 16 + len(body), mtype, 1 | flags, self._nlseq, 0) + body)
        except OSError:
            pass

    @staticmethod
    def _rta(t, v):
        return struct.pack("HH", 4 + len(v), t) + v + bytes((4 - len(v) % 4) % 4)

    def _add(self, fam, addr, plen, router, valid_s, flags=0):
        """Default route (onlink) first, then the address: usable the instant the kernel announces it."""
        af = 2 if fam == 4 else 10
        valid_s = max(1, valid_s)
        self._nl(24, 0x500, struct.pack("BBBBBBBBI", af, 0, 0, 0, 254, 3, 0, 1, 4)
                 + self._rta(5, router) + self._rta(4, struct.pack("i", self.link.ifindex)))
        body = (struct.pack("BBBBI", af, plen, 0, 0, self.link.ifindex) + self._rta(2, addr) + self._rta(1, addr)
                + self._rta(6, struct.pack("IIII", valid_s, valid_s, 0, 0)))
        if flags:
            body += self._rta(8, struct.pack("I", flags))
        self._nl(20, 0x500, body)

    def _delete(self, fam, addr, plen):
        af = 2 if fam == 4 else 10
        self._nl(21, 0, struct.pack("BBBBI", af, plen, 0, 0, self.link.ifindex) + self._rta(2, addr))

    def _say(self, fam, how, addr):
        """The event log line `addressing` (docs/CONTRACTS.md §7): how the board got its address on
        this association, ms after the carrier came up."""
        from roam6.wire.addrtext import ip4_to_text, ip6_to_text
        text = None if addr is None else (ip4_to_text(addr) if fam == 4 else ip6_to_text(addr))
        self.log("addressing", family=fam, how=how, addr=text, ms=ticks_diff(ticks_ms(), self._t_up))

    async def _watch(self):
        """A DHCP client keeps trying: on a link that is up with no IPv4 address from us and no
        exchange running (no server answered, or the association's task ended early), ask again
        after 1, 2, 4 ... 60 s."""
        import asyncio
        while True:
            await _sleep_ms(self._retry_ms)
            t = self._task
            if self.link.up and 4 in self.families and self.v4 is None and (t is None or t.done()):
                self._retry_ms = min(self._retry_ms * 2, 60000)
                self._task = asyncio.create_task(self._v4())

    # -- IPv4 ------------------------------------------------------------------------------------
    def _arp(self, spa, tpa, mac):
        self._send_ll(_ETH_P_ARP, struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1) + self.link.mac + spa
                      + (mac if mac != _BCAST else bytes(6)) + tpa, mac)

    async def _arp_wait(self, want, ms, resend=None, dhcp=None):
        """ARP replies until one matches `want` {(router ip, mac): entry} (or mac None: any MAC);
        `resend()` every `probe_every_ms` meanwhile (frames sent while the AP's port is not yet
        forwarding are lost: a Wi-Fi association and the bench's bridge alike)."""
        t0 = last = ticks_ms()
        while ticks_diff(ticks_ms(), t0) < ms:
            if resend is not None and ticks_diff(ticks_ms(), last) >= self.probe_every_ms:
                last = ticks_ms()
                resend()
            while True:
                n = self._recv_ll(_ETH_P_ARP)
                if not n:
                    break
                d = self.rx
                if n >= 42 and d[20] == 0 and d[21] == 2:      # an ARP reply
                    sha, spa = bytes(d[22:28]), bytes(d[28:32])
                    for (ip, mac), e in want.items():
                        if ip == spa and (mac is None or mac == sha) and d[6:12] == sha:
                            return e, sha
            if dhcp is not None:        # (xid, types): a DHCP answer in the meantime ends the wait
                m = self._dhcp_poll(*dhcp)
                if m is not None:
                    return None, m
            await _sleep_ms(1)
        return None, None

    def _dhcp_send(self, pkt):
        try:
            self._udp().sendto(pkt, self._bcast)
        except OSError:
            pass

    def _dhcp_poll(self, xid, want):
        """A waiting reply of a type in `want` for `xid` -> (mtype, yiaddr, opts), or None."""
        u = self._udp()
        while True:
            try:
                n = u.readinto(self.rx) if IS_MICROPYTHON else u.recv_into(self.rx)
            except OSError:
                return None
            if not n:
                return None
            m = dhcp4.parse(self.rx, xid, self.link.mac, n)
            if m and m[0] in want:
                return m

    async def _dhcp(self, pkt, xid, want, sent=False):
        """Send `pkt` (retransmitted; `sent`: the first copy is out already) until a reply of a type
        in `want` -> (mtype, yiaddr, opts) or None."""
        wait = self.dhcp_first_ms
        for i in range(self.dhcp_tries):
            if i or not sent:
                self._dhcp_send(pkt)
            t0 = ticks_ms()
            while ticks_diff(ticks_ms(), t0) < wait:
                m = self._dhcp_poll(xid, want)
                if m is not None:
                    return m
                if self.link.up is False:
                    return None
                await _sleep_ms(1)
            if i >= 5:          # 6 quick ones first: the first may go out before the AP forwards
                wait = min(wait * 2, self.dhcp_retry_ms)
        return None

    def _next_xid(self):
        self._xid = (self._xid + 1) & 0xFFFFFFFF
        return self._xid

    async def _v4(self):
        self._packet(_ETH_P_ARP)
        while self._recv_ll(_ETH_P_ARP):        # what came before this association is not an answer
            pass
        wall = _wall()
        cands = self.mem.candidates(4, wall)
        e = None
        if cands:
            want = {}
            for c in cands:
                want[(c["r"], c["m"])] = c

            # a DISCOVER side by side (RFC 4436 §2.2 lets the DHCP exchange run in parallel): on
            # a network the probes do not confirm, its answer is already there (rapid commit)
            xid = self._next_xid()
            disc = dhcp4.discover(xid, self.link.mac)
            self._dhcp_poll(xid, ())        # drains what came before
            n = [0]

            def probe():                    # the probes every 5 ms, the DISCOVER every 10 ms
                for c in cands:
                    self._arp(c["a"], c["r"], c["m"])
                if not n[0] & 1:
                    self._dhcp_send(disc)
                n[0] += 1
            probe()
            e, got = await self._arp_wait(want, self.confirm_ms, probe, (xid, (dhcp4.OFFER, dhcp4.ACK)))
            if e is None:
                await self._full(xid, disc, got)
                return
        if e is not None:
            self.stats["confirmed"] += 1
            self.mem.used(e["k"])
            await self._v6_first(e["m"])
            self._add(4, e["a"], e["p"], e["r"], e["x"] - wall)
            self.v4 = (e["a"], e["p"])
            self._say(4, "confirmed", e["a"])
            xid = self._next_xid()
            m = await self._dhcp(dhcp4.request(xid, self.link.mac, e["a"]), xid, (dhcp4.ACK, dhcp4.NAK))
            if m is None:
                return      # no answer: the lease is still valid (RFC 2131 §4.3.2); the kernel ends it on time
            if m[0] == dhcp4.ACK:
                self._learned(m, e["m"])
                return
            self.stats["nak"] += 1
            self.mem.forget(e["k"])
            self.mem.save()
            self._delete(4, e["a"], e["p"])
            self.v4 = None
            self._say(4, "nak", e["a"])
        await self._full()

    async def _full(self, xid=None, disc=None, m=None):
        """A full exchange; xid/disc: a DISCOVER already sent (m: its answer, if one came)."""
        self.stats["full"] += 1
        mac = self.link.mac
        if xid is None:
            xid = self._next_xid()
            disc = dhcp4.discover(xid, mac)
            m = await self._dhcp(disc, xid, (dhcp4.OFFER, dhcp4.ACK))
        elif m is None:
            m = await self._dhcp(disc, xid, (dhcp4.OFFER, dhcp4.ACK), sent=True)
        if m is not None and m[0] == dhcp4.OFFER:
            m = await self._dhcp(dhcp4.request(xid, mac, m[1], m[2]["server"]), xid, (dhcp4.ACK, dhcp4.NAK))
        if m is None or m[0] != dhcp4.ACK:
            self._say(4, "no lease", None)
            return
        _t, yiaddr, o = m
        if not o["router"]:
            return
        plen = dhcp4.plen_of(o["mask"])
        self._add(4, yiaddr, plen, o["router"], o["lease"] or 3600)
        self.v4 = (yiaddr, plen)
        self._say(4, "lease", yiaddr)
        # the router's link-layer address for next time (behind the BU, not before it)
        self._arp(yiaddr, o["router"], _BCAST)
        _e, rmac = await self._arp_wait({(o["router"], None): 1}, 500,
                                        lambda: self._arp(yiaddr, o["router"], _BCAST))
        if rmac:
            self._learned(m, rmac)

    def _learned(self, m, rmac):
        _t, yiaddr, o = m
        if not o["router"]:
            return
        self.mem.remember(4, yiaddr, dhcp4.plen_of(o["mask"]), o["router"], rmac, o["dns"],
                          _wall() + (o["lease"] or 3600), o["server"] or b"")
        self.mem.save()
        self.stats["remembered"] += 1
        # the interface's copy of the address follows the renewed lease
        self._add(4, yiaddr, dhcp4.plen_of(o["mask"]), o["router"], o["lease"] or 3600)

    async def _v6_first(self, mac):
        """A board whose first transport is IPv6, back on a dual-stack network it knows (its IPv6
        probe is out to the same router): the router's NA comes a moment after its ARP reply, and
        the IPv4 address reported first would make the MN send a BU for udp4 and another for udp6
        a few ms later (two of RFC 6275's MAX_UPDATE_RATE, 3 a second). So IPv4 goes on once the
        link adapter has the confirmed IPv6 address as usable (the kernel announces it a few ms
        after it is added where the link does no DAD: its DAD work runs first), or the probe has
        ended unconfirmed, at most `v6_first_ms` later."""
        t6 = self._t6
        if t6 is None or self.families[0] != 6 or mac not in self._macs6:
            return
        t0 = ticks_ms()
        while ticks_diff(ticks_ms(), t0) < self.v6_first_ms:
            if self.confirmed6:
                v = self.link._addrs.get(self._a6)
                if v is not None and (not v[2] & 0x40 or v[2] & _IFA_F_OPTIMISTIC):
                    return
            elif t6.done():
                return
            await _sleep_ms(1)

    # -- IPv6 ------------------------------------------------------------------------------------
    def _ll(self):
        """This interface's link-local address (fe80::/64 from the MAC, EUI-64, as the kernel forms it)."""
        m = self.link.mac
        return b"\xfe\x80" + bytes(6) + bytes((m[0] ^ 2, m[1], m[2], 0xFF, 0xFE, m[3], m[4], m[5]))

    def _ns(self, target, dst, mac):
        src = self._ll()
        body = bytearray(struct.pack(">BBHI", 135, 0, 0, 0) + target + b"\x01\x01" + self.link.mac)
        struct.pack_into(">H", body, 2, checksum6(src, dst, 58, body))
        self._send_ll(_ETH_P_IPV6, struct.pack(">IHBB", 0x60000000, len(body), 58, 255) + src + dst + body, mac)

    async def _v6(self):
        wall = _wall()
        cands = self.mem.candidates(6, wall)
        if not cands:
            return
        self._packet(_ETH_P_IPV6)
        while self._recv_ll(_ETH_P_IPV6):
            pass
        t0 = last = ticks_ms()
        for c in cands:
            self._ns(c["r"], c["r"], c["m"])
        while ticks_diff(ticks_ms(), t0) < self.confirm_ms:
            if ticks_diff(ticks_ms(), last) >= self.probe_every_ms:
                last = ticks_ms()
                for c in cands:
                    self._ns(c["r"], c["r"], c["m"])
            while True:
                n = self._recv_ll(_ETH_P_IPV6)
                if not n:
                    break
                tgt = _na(self.rx, n)
                for c in cands:
                    if tgt == c["r"] and self.rx[6:12] == c["m"]:
                        self.stats["v6_confirmed"] += 1
                        self.confirmed6 = True
                        self._a6 = c["a"]
                        self.mem.used(c["k"])
                        self._add(6, c["a"], c["p"], c["r"], c["x"] - wall, _IFA_F_OPTIMISTIC)
                        if self._optimistic():
                            # the kernel announces the address only once DAD is over (~1 s), but
                            # lets it be used now (RFC 4429): tell movement now; the link adapter
                            # hands it on at its next read (the default route's announcement
                            # wakes it). Without DAD the kernel announces it at once.
                            fl = _IFA_F_OPTIMISTIC | 0x40
                            self.link._addrs[c["a"]] = (6, c["p"], fl)
                            self.pending.append(("addr", 6, c["a"], c["p"], True, fl))
                        self._say(6, "confirmed", c["a"])
                        return
            await _sleep_ms(1)

    def _optimistic(self):
        """Does this interface do DAD and use optimistic addresses meanwhile (Linux: accept_dad,
        optimistic_dad and use_optimistic all on)? Otherwise a tentative address cannot be a
        source (EADDRNOTAVAIL) until the kernel says it is usable."""
        for k in ("accept_dad", "optimistic_dad", "use_optimistic"):
            try:
                with open("/proc/sys/net/ipv6/conf/%s/%s" % (self.link.ifname, k)) as f:
                    if int(f.read()) < 1:
                        return False
            except (OSError, ValueError):
                return False
        return True

    def remember6(self, addr, plen, router, valid_s):
        """A SLAAC address and default router the kernel configured: note them (the router's MAC
        from a unicast-able NS exchange happens at the next association's probe: here it is asked
        once with a multicast NS)."""
        import asyncio
        asyncio.create_task(self._learn_router6(addr, plen, router, valid_s))

    async def _learn_router6(self, addr, plen, router, valid_s):
        self._packet(_ETH_P_IPV6)
        dst = b"\xff\x02" + bytes(9) + b"\x01\xff" + router[13:16]
        self._ns(router, dst, b"\x33\x33" + dst[12:16])
        t0 = ticks_ms()
        while ticks_diff(ticks_ms(), t0) < 500:
            n = self._recv_ll(_ETH_P_IPV6)
            if not n:
                await _sleep_ms(2)
                continue
            if _na(self.rx, n) == router:
                self.mem.remember(6, addr, plen, router, bytes(self.rx[6:12]), [], _wall() + valid_s)
                self.mem.save()
                self.stats["remembered"] += 1
                return

    async def attached(self):
        """One association: IPv6 and IPv4 probes side by side."""
        import asyncio
        self.v4 = None
        self.confirmed6 = False
        self._t_up = ticks_ms()
        self._macs6 = [c["m"] for c in self.mem.candidates(6, _wall())] if 6 in self.families else ()
        self._t6 = t6 = asyncio.create_task(self._v6()) if 6 in self.families else None
        try:
            if 4 in self.families:
                await self._v4()
        finally:
            if t6 is not None:
                await t6
