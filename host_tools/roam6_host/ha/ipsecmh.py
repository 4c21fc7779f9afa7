"""The HA's IPsec (issue #19, RFC 3776 / RFC 4877; docs/PROTOCOL-NOTES.md §9.6): the IKEv2
responder's CHILD_SAs put to work on the Mobility Headers and, for devices that ask, the payload.

Sans-IO apart from the `log` callable (the driver's Logger) and `on_signal(ha, ...)`, the driver's
hook, which hands an opened BU to `ha.cache` and opened payload to `ha.tun`. The driver (ha/driver.py,
ha/ike.py) hands it:
- `ike_receive(udp_payload, peer, local_port, now)` / `ike_datagrams(now)`: UDP 4500 both ways;
- `open_esp(packet, source, now)`: an IPv6 packet to the HA whose upper layer is ESP (udp4/udp6:
  the inner packet, src HoA; ip6: src CoA + Home Address option). SPI -> CHILD_SA -> open (replay
  window, ICV) -> the HoA the packet claims must be that CHILD_SA's HoA (the keys file's, which
  IKE_AUTH's CP handed out): one SA never speaks for another HoA. Returns ("mh", packet) - the same
  packet with the MH where the ESP was, for the binding cache's ESP rules - or ("data", inner) for
  the payload tunnel (inner source = the HoA), or None (dropped, counted in `counts`, logged once
  per source and reason);
- `clear_refused(packet, source)`: a Mobility Header in clear claiming an IPsec device's HoA:
  True = drop it (no BA: no SA to sign one);
- `protect(outs)`: the HA's own MN-HA messages (BE, HA Switch, BRI...) to an IPsec device's HoA
  leave sealed with its CHILD_SA (a BA is sealed by `Child.ba`, called by the binding cache);
- `seal_data(binding, packet)`: downstream payload for a HoA with a tunnel-mode CHILD_SA.
The binding cache sees every IPsec device as a pseudo security association (`CacheSA`, SPI above
2**32 so it never meets an RFC 4285 SPI): bindings, HoA pinning, per-SA caps and SIGHUP keep
working on them unchanged.
"""
from roam6_codec import consts as C
from roam6_codec import mhopts as mo
from roam6_codec.mh import BindingAck
from roam6.wire.addr import ip6_to_text
from roam6.wire.ipv6 import build_ipv6

from ..ipsec.responder import Responder

NH_ESP = 50
PSEUDO_SPI_BASE = 1 << 32       # the cache's key for an IPsec device: never an RFC 4285 SPI
IKE_SAS_PER_DEVICE = 2          # established IKE SAs kept per NAI (a re-authentication overlaps the old)
from .cache import ESP_SKIPPED_RULES, _walk_options  # noqa: F401  (the rules a BU inside ESP skips)
from .espfast import FastSA, fast_sa, keyed_mac  # noqa: F401


class CacheSA:
    """What the binding cache needs of a security association (ha/sa.SA's fields, no RFC 4285 key)."""

    __slots__ = ("nai", "spi", "key", "hoa", "last_ts", "max_units")
    esp = True              # (ha/switch.py: its messages carry no RFC 4285 option; sealed instead)

    def __init__(self, nai, spi, hoa):
        self.nai, self.spi, self.key, self.hoa = nai, spi, None, hoa
        self.last_ts = 0
        self.max_units = None


class Child:
    """One CHILD_SA pair of an IPsec device."""

    __slots__ = ("owner", "nai", "hoa", "sa_in", "sa_out", "cache_sa", "tunnel")

    def __init__(self, owner, nai, hoa, sa_in, sa_out, cache_sa, tunnel):
        self.owner, self.nai, self.hoa = owner, nai, hoa
        self.sa_in, self.sa_out, self.cache_sa, self.tunnel = sa_in, sa_out, cache_sa, tunnel

    def ba(self, cache, c, status, seq, units, bra, refresh):
        """The binding cache's BA for a BU that came inside ESP: no MN-ID, no MN-HA option (RFC 4877
        §4.3), K echoed (RFC 6275 §6.1.8), sealed with the device's newest transport CHILD_SA."""
        hoa = c.hoa
        flags = C.BA_K if c.flags & C.BU_K else 0
        if c.v4ack is None:                 # the usual shapes: from a template (same bytes as the codec's)
            key = (refresh is not None, bool(bra))
            tpl = self.owner.ba_templates.get(key)
            if tpl is None:
                tpl = self.owner.ba_templates[key] = _BATemplate(cache.ha, *key)
            mh = tpl.make(cache, hoa, status, flags, seq, units, refresh, bra)
        else:
            mh = ba_codec(cache.ha, hoa, status, flags, seq, units, refresh, bra, c.v4ack)
        out = self.owner.mh_out.get(hoa, self)
        esp = out.sa_out.seal(mh, C.NH_MH)
        if esp is None:
            return None                   # sequence numbers used up: the MN rekeys
        return self.owner.wrap(esp, hoa, c.coa, c.source)


def ba_codec(ha, hoa, status, flags, seq, units, refresh, bra, v4ack=None):
    """The BA's MH for an ESP-protected BU, laid out by the codec: NAT detection, BRA, IPv4 ack."""
    opts = []
    if refresh is not None:
        opts.append(mo.NATDetection(True, refresh))
    if bra:
        opts.append(mo.BindingRefreshAdvice(bra))
    if v4ack is not None and status < 128:
        opts.append(mo.IPv4AddressAck(v4ack[0], 32, v4ack[1]))
    return BindingAck(status, flags, seq, units, opts).encode(src=ha, dst=hoa)


class _BATemplate:
    """One BA shape (NAT detection? BRA?) laid out once by the codec; each BA patches the fields
    and sums the checksum (as the cache's RFC 4285 _BATemplate does)."""

    __slots__ = ("mh", "refresh_off", "bra_off")

    def __init__(self, ha, has_refresh, has_bra):
        self.mh = ba_codec(ha, bytes(16), 0, 0, 0, 0, 0 if has_refresh else None, 1 if has_bra else 0)
        self.refresh_off = self.bra_off = 0
        for t, off in _walk_options(self.mh):
            if t == C.MO_NAT_DETECTION:
                self.refresh_off = off + 4
            elif t == C.MO_BRA:
                self.bra_off = off + 2

    def make(self, cache, hoa, status, flags, seq, units, refresh, bra):
        buf = bytearray(self.mh)
        buf[4] = buf[5] = 0
        buf[6], buf[7] = status, flags
        buf[8:12] = ((seq << 16) | units).to_bytes(4, "big")
        if self.refresh_off:
            buf[self.refresh_off:self.refresh_off + 4] = refresh.to_bytes(4, "big")
        if self.bra_off:
            buf[self.bra_off:self.bra_off + 2] = bra.to_bytes(2, "big")
        buf[4:6] = cache._mh_checksum(hoa, buf).to_bytes(2, "big")
        return bytes(buf)


def _upper(packet):
    """(next header, its offset, HoA claimed) of an IPv6 packet: after the fixed header or after
    one Destination Options header (the ip6 path's Home Address option); None if malformed."""
    if len(packet) < 40:
        return None
    nh, off, hoa = packet[6], 40, None
    if nh == 60:
        if len(packet) < 48:
            return None
        nh, end = packet[40], 40 + (packet[41] + 1) * 8
        if end > len(packet):
            return None
        o = 42
        while o < end:
            t = packet[o]
            if t == 0:
                o += 1
                continue
            if o + 2 > end:
                return None
            if t == 0xC9 and packet[o + 1] == 16 and o + 18 <= end:
                hoa = bytes(packet[o + 2:o + 18])
            o += 2 + packet[o + 1]
        off = end
    return nh, off, hoa if hoa is not None else bytes(packet[8:24])


def _host(tss):
    """The address of a traffic selector list naming one IPv6 host (start == end), else None."""
    if len(tss) == 1 and tss[0][4] == tss[0][5] and len(tss[0][4]) == 16:
        return bytes(tss[0][4])
    return None


def esp_offset(packet):
    """(offset of the ESP header, HoA claimed) of an IPv6 packet whose upper layer is ESP; None else."""
    u = _upper(packet)
    return None if u is None or u[0] != NH_ESP else u[1:]


class _Quiet:
    def __call__(self, ev, **fields):
        pass

    def once(self, key, ev, **fields):
        pass


class IpsecHA:
    def __init__(self, peers, ha_address, local_id, now, log=None, local_ips=(None, None), **responder_kw):
        self.ha = bytes(ha_address)
        self.log = log or _Quiet()        # ha/driver.Logger: __call__ and once
        self.peers = {p.nai: p for p in peers}
        self.cache_sas = {}                         # {nai: CacheSA} (the primary HoA's)
        for i, p in enumerate(peers):
            self.cache_sas[p.nai] = CacheSA(p.nai, PSEUDO_SPI_BASE + i, p.hoa)
        self.more_sas = {}                          # {(nai, HoA): CacheSA}: keys file "more_hoas"
        self._more(PSEUDO_SPI_BASE + len(peers))
        self.hoas = {h: p.nai for p in peers for h in p.hoas}   # IPsec devices' HoAs: no MH in clear
        self.local_ips = local_ips                  # (IPv4 text, IPv6 text) the IKE sockets are bound to
        self.responder = Responder({p.nai: p.psk for p in peers}, local_id, now, assign=self._assign,
                                   allowed=self._allowed, **responder_kw)
        self.by_spi = {}                            # {inbound SPI: Child}
        self.mh_out = {}                            # {HoA: newest transport-mode Child}
        self.data_out = {}                          # {HoA: newest tunnel-mode Child}
        self.ba_templates = {}                      # {(NAT detection?, BRA?): _BATemplate}
        self.counts = {"esp_unknown_spi": 0, "esp_replayed": 0, "esp_bad_icv": 0, "esp_malformed": 0,
                       "esp_wrong_sa": 0, "esp_wrong_proto": 0, "clear_bu_refused": 0, "mh_sealed": 0,
                       "data_opened": 0, "data_sealed": 0}

    def reload(self, peers):
        """SIGHUP: the keys file's IPsec devices now. A device whose PSK or HoA is unchanged keeps
        its pseudo SA (and binding) and its SAs; a new one is added; a changed or removed one gets a
        new pseudo SA (or none: the cache revokes its binding) and loses its IKE and CHILD_SAs.
        Returns {pseudo SPI: CacheSA} for the cache's new SA table."""
        old, self.peers = self.peers, {p.nai: p for p in peers}
        nxt = max([sa.spi for sa in list(self.cache_sas.values()) + list(self.more_sas.values())]
                  + [PSEUDO_SPI_BASE - 1]) + 1
        changed = set()
        for nai, prev in old.items():
            p = self.peers.get(nai)
            if p is None or (p.psk, p.hoa) != (prev.psk, prev.hoa):
                changed.add(nai)
                del self.cache_sas[nai]
                for spi in [s for s, c in self.by_spi.items() if c.nai == nai]:
                    self._drop(spi)
                r = self.responder
                for spi_r in [x for x, sa in r.sas.items() if sa.peer_id == nai.decode()]:
                    del r.sas[spi_r]
        for nai, p in self.peers.items():
            if nai not in self.cache_sas:
                self.cache_sas[nai] = CacheSA(nai, nxt, p.hoa)
                nxt += 1
        for (nai, h) in list(self.more_sas):
            p = self.peers.get(nai)
            if p is None or nai in changed or h not in p.hoas:     # gone, or its device changed
                del self.more_sas[(nai, h)]
                for spi in [s for s, c in self.by_spi.items() if c.nai == nai and c.hoa == h]:
                    self._drop(spi)
        self._more(max([sa.spi for sa in list(self.cache_sas.values()) + list(self.more_sas.values())]
                       + [nxt - 1]) + 1)
        self.hoas = {h: p.nai for p in peers for h in p.hoas}
        self.responder.psks = {p.nai: p.psk for p in peers}
        return {sa.spi: sa for sa in list(self.cache_sas.values()) + list(self.more_sas.values())}

    def _more(self, nxt):
        """Pseudo SAs for the devices' further HoAs (keys file "more_hoas") not yet known."""
        for p in self.peers.values():
            for h in p.hoas[1:]:
                if (p.nai, h) not in self.more_sas:
                    self.more_sas[(p.nai, h)] = CacheSA(p.nai, nxt, h)
                    nxt += 1

    def _assign(self, nai):
        p = self.peers.get(nai.encode() if isinstance(nai, str) else nai)
        return (p.hoa, 128) if p is not None else None

    def _allowed(self, nai):
        """Every HoA of the device (a CHILD_SA's TSi naming one of them is kept, RFC 4877 §4.4)."""
        p = self.peers.get(nai.encode() if isinstance(nai, str) else nai)
        return p.hoas if p is not None else ()

    # ---- IKE ------------------------------------------------------------------------------------
    def ike_receive(self, data, peer, local_port, now):
        # NAT-D (RFC 7296 §2.23) hashes the address the request came to: the socket's family's
        self.responder.local_ip = self.local_ips[":" in peer[0]]
        self.responder.receive(data, peer, local_port, now)
        self._events()

    def ike_datagrams(self, now):
        return self.responder.datagrams_to_send(now)

    def _events(self):
        r = self.responder
        ev = r.next_event()
        while ev is not None:
            kind = ev[0]
            if kind == "child_up":
                _, nai, sa_in, sa_out, transport, ts_i, _ts_r = ev
                self._add(nai, sa_in, sa_out, not transport, _host(ts_i))
            elif kind == "child_rekeyed":
                _, nai, sa_in, sa_out, old_spi = ev
                old = self.by_spi.get(old_spi)
                self._add(nai, sa_in, sa_out, old.tunnel if old is not None else False,
                          old.hoa if old is not None else None)
            elif kind == "child_deleted":
                self._drop(ev[2])
            elif kind == "deleted":
                for spi in ev[2]:
                    self._drop(spi)
            elif kind == "ike_up":
                self._bound_ike_sas(ev[1])
            if kind == "refused":
                self.log("ike_refused", reason=ev[1], notify=ev[2], peer="%s:%d" % tuple(ev[3]))
            elif kind in ("ike_up", "ike_moved"):
                self.log(kind, nai=ev[1], peer="%s:%d" % tuple(ev[-1]))
            elif kind in ("child_up", "child_rekeyed", "child_deleted", "deleted"):
                self.log("ipsec_" + kind, nai=ev[1])
            ev = r.next_event()

    def _bound_ike_sas(self, nai):
        """At most IKE_SAS_PER_DEVICE established IKE SAs per device: the oldest go (and their
        CHILD_SAs), so a device re-authenticating without Deletes cannot grow the HA's memory."""
        r = self.responder
        mine = [x for x, sa in r.sas.items() if sa.up and sa.peer_id == nai]
        for spi_r in mine[:-IKE_SAS_PER_DEVICE]:
            for child in r.sas.pop(spi_r).children:
                self._drop(child[0].spi)

    def _add(self, nai, sa_in, sa_out, tunnel, hoa=None):
        """A CHILD_SA of device `nai` for `hoa` (its TSi's single address when that is one of the
        device's HoAs; else the primary HoA)."""
        nb = nai.encode()
        p = self.peers.get(nb)
        if p is None:
            return
        if hoa not in p.hoas[1:]:
            hoa = p.hoa
        cache_sa = self.cache_sas[nb] if hoa == p.hoa else self.more_sas[(nb, hoa)]
        child = Child(self, nb, hoa, fast_sa(sa_in), fast_sa(sa_out), cache_sa, tunnel)
        self.by_spi[sa_in.spi] = child
        (self.data_out if tunnel else self.mh_out)[hoa] = child

    def _drop(self, spi_in):
        child = self.by_spi.pop(spi_in, None)
        if child is None:
            return
        table = self.data_out if child.tunnel else self.mh_out
        if table.get(child.hoa) is child:
            rest = [c for c in self.by_spi.values() if c.hoa == child.hoa and c.tunnel == child.tunnel]
            if rest:
                table[child.hoa] = rest[-1]
            else:
                del table[child.hoa]

    # ---- ESP in ---------------------------------------------------------------------------------
    def _dropped(self, reason, source, **fields):
        self.counts[reason] += 1
        self.log.once((source[1], reason), "esp_dropped", reason=reason, source="%s:%s:%d" % source, **fields)
        return None

    def open_sa(self, esp, source):
        """(child, next header, payload) of one ESP packet (its SPI's inbound SA), or None: dropped and
        counted (unknown SPI, replayed, bad ICV, malformed). For ESP in IPv6 and in UDP 4500 alike."""
        child = self.by_spi.get(int.from_bytes(esp[:4], "big"))
        if child is None:
            return self._dropped("esp_unknown_spi", source)
        sa = child.sa_in
        before = (sa.replayed, sa.bad_icv)
        got = sa.open(esp)
        if got is None:
            reason = ("esp_replayed" if sa.replayed != before[0] else "esp_bad_icv" if sa.bad_icv != before[1]
                      else "esp_malformed")
            return self._dropped(reason, source, nai=child.nai.decode())
        return (child,) + tuple(got)

    def open_esp(self, packet, source, now):
        at = esp_offset(packet)
        if at is None or len(packet) < at[0] + 8:
            return self._dropped("esp_malformed", source)
        off, hoa = at
        end = 40 + ((packet[4] << 8) | packet[5])
        got = self.open_sa(packet[off:end], source)
        if got is None:
            return None
        child, nh, payload = got
        if hoa != child.hoa:
            return self._dropped("esp_wrong_sa", source, nai=child.nai.decode(), hoa=ip6_to_text(hoa))
        if nh == C.NH_MH and not child.tunnel:
            out = bytearray(packet[:off])
            out += payload
            n = len(out) - 40
            out[4], out[5] = n >> 8, n & 0xFF
            out[6 if off == 40 else 40] = C.NH_MH
            return "mh", bytes(out), child
        if nh == 41 and child.tunnel and len(payload) >= 40 and payload[0] >> 4 == 6 and payload[8:24] == child.hoa:
            self.counts["data_opened"] += 1
            return "data", bytes(payload), child
        return self._dropped("esp_wrong_proto", source, nai=child.nai.decode(), next_header=nh)

    def clear_refused(self, packet, source):
        """A Mobility Header in clear for an IPsec device's HoA: to be dropped (True)."""
        u = _upper(packet)
        if u is None or u[0] != C.NH_MH or u[2] not in self.hoas:
            return False
        hoa = u[2]
        self.counts["clear_bu_refused"] += 1
        self.log.once((source[1], "clear"), "bu_dropped", reason="ipsec: MH in clear for the IPsec device %s"
                      % self.hoas[hoa].decode(), source="%s:%s:%d" % source)
        return True

    # ---- ESP out --------------------------------------------------------------------------------
    def wrap(self, esp, hoa, coa, source):
        """An ESP packet (transport or tunnel) from the HA to an MN on `source`'s path."""
        if source[0] == "ip6":
            if coa is None or coa == hoa:
                return build_ipv6(self.ha, hoa, NH_ESP, esp), ("ip6", ip6_to_text(hoa), 0)
            return build_ipv6(self.ha, coa, NH_ESP, esp, rh2=hoa), ("ip6", ip6_to_text(coa), 0)
        return build_ipv6(self.ha, hoa, NH_ESP, esp), source

    def protect(self, outs):
        """The HA's MHs in clear to an IPsec device (BE, HA Switch, BRI, ...) sealed with its CHILD_SA."""
        res = []
        for datagram, dest in outs:
            hoa = off = None
            if len(datagram) >= 40 and datagram[24:40] != self.ha:
                if datagram[6] == C.NH_MH:
                    hoa, off = bytes(datagram[24:40]), 40
                elif (datagram[6] == 43 and len(datagram) >= 64 and datagram[40] == C.NH_MH and datagram[42] == 2
                      and datagram[41] == 2):
                    hoa, off = bytes(datagram[48:64]), 64
            child = self.mh_out.get(hoa) if hoa is not None else None
            if child is not None:
                esp = child.sa_out.seal(datagram[off:], C.NH_MH)
                if esp is None:
                    continue
                out = bytearray(datagram[:off]) + esp
                n = len(out) - 40
                out[4], out[5] = n >> 8, n & 0xFF
                out[6 if off == 40 else 40] = NH_ESP
                datagram = bytes(out)
                self.counts["mh_sealed"] += 1
            res.append((datagram, dest))
        return res

    def seal_data(self, b, packet):
        """Downstream payload to `b.hoa` in the device's tunnel-mode CHILD_SA: (datagram, dest) or None."""
        child = self.data_out.get(b.hoa)
        if child is None:
            return None
        esp = child.sa_out.seal(packet, 41)
        if esp is None:
            return None
        self.counts["data_sealed"] += 1
        src = (b.transport,) + tuple(b.peer)
        return self.wrap(esp, b.hoa, b.coa if b.transport == "ip6" else None, src)

    # ---- the driver's hook ----------------------------------------------------------------------
    def on_signal(self, ha, packet, source, now):
        """driver._signal's first step: True when this module took the packet (ESP, or an MH in
        clear for an IPsec device); False: the RFC 4285 path as before."""
        u = _upper(packet)
        if u is None:
            return False
        if u[0] == C.NH_MH:
            return self.clear_refused(packet, source)
        if u[0] != NH_ESP:
            return False
        got = self.open_esp(packet, source, now)
        if got is None:
            return True
        kind, inner, child = got
        if kind == "mh":
            from .clock import wall_ms
            ha.cache.receive(inner, source, now, wall=wall_ms(), esp=child)
            ha._flush(now)
        else:
            b = ha.cache.bindings.get(child.hoa)
            if b is not None:
                try:
                    ha.tun.write(inner)
                    b.rx_packets += 1
                    b.rx_bytes += len(inner)
                except OSError:
                    pass
        return True


def attach(ha):
    """Give the HomeAgent `ha` its IpsecHA (ha.json "security" lists "ipsec"): the keys file's
    IPsec devices become pseudo SAs of its binding cache."""
    from .clock import now_ms
    cfg = ha.cfg
    peers = list(getattr(cfg, "ipsec_peers", ()))
    ha.ipsec = IpsecHA(peers, cfg.address, cfg.address_text, now_ms(), log=ha.log,
                       local_ips=(cfg.ipv4, cfg.address_text))
    for sa in list(ha.ipsec.cache_sas.values()) + list(ha.ipsec.more_sas.values()):
        ha.cache.add_sa(sa)
    ha.cache.esp_sas = ha.ipsec.cache_sas       # journal records name an IPsec device by its NAI (SPI 0)
