"""ESP in UDP 4500 (RFC 3948) on the HA's IKE sockets, for IPsec devices that send their payload
tunnel straight over UDP instead of inside a Mobile IPv6 transport (issue #19): an IKEv2 peer
such as strongSwan with kernel-libipsec, which always encapsulates ESP in UDP 4500 and registers
no binding (a remote-access client of the home link; docs/ARCHITECTURE.md "IPsec").

On the IKE socket a datagram whose first four bytes are not the non-ESP marker is ESP (RFC 3948
§2.2; a lone 0xFF is a NAT keepalive, §2.3, and ignored). `receive` opens it with the CHILD_SA its
SPI names (ipsecmh.IpsecHA.by_spi: replay window, ICV, counted drops as for ESP inside the Mobile
IPv6 transports), accepts only a tunnel-mode CHILD_SA's IPv6 packet whose source is that device's
home address (the keys file's, which IKE_AUTH's configuration payload handed out) and writes it to
the TUN: it reaches the home link. The first such packet routes the HoA into the TUN and proxies
it on the home link (as a binding does); later ones make the UDP source the return address (the
NAT mapping may change, RFC 3948 §5: authenticated packets only). `seal` sends the HA's downstream
packets for such a HoA back through the device's newest tunnel-mode CHILD_SA, ESP in UDP from
port 4500. A Mobile IPv6 binding for the HoA takes precedence (its own path, ha/driver.py
`_on_tun`); the route and proxy go when the device has no tunnel CHILD_SA left (`prune`, after
each IKE exchange: Delete, IKE SA deleted or replaced, SIGHUP). At most one entry per IPsec device
of the keys file: the state an attacker could make is bounded by it, and every entry needs an
authenticated packet.
"""
from roam6.wire.addr import ip6_to_text

MARKER = b"\0\0\0\0"


class UdpEsp:
    def __init__(self, ha):
        self.ha = ha                  # driver.HomeAgent (ipsec, cache, tun, log, _kernel)
        self.routes = {}              # {HoA: (peer (ip, port), socket)}: downstream return address
        self.counts = {"udp_esp_opened": 0, "udp_esp_sealed": 0, "udp_esp_keepalives": 0}

    def receive(self, data, peer, sock, now):
        """A datagram on UDP 4500 without the non-ESP marker."""
        ipsec = self.ha.ipsec
        if len(data) == 1 and data[0] == 0xFF:
            self.counts["udp_esp_keepalives"] += 1
            return
        source = ("udp-esp",) + tuple(peer)
        if len(data) < 8:
            return ipsec._dropped("esp_malformed", source)
        got = ipsec.open_sa(data, source)
        if got is None:
            return None
        child, nh, inner = got
        if not (nh == 41 and child.tunnel and len(inner) >= 40 and inner[0] >> 4 == 6):
            return ipsec._dropped("esp_wrong_proto", source, nai=child.nai.decode(), next_header=nh)
        if bytes(inner[8:24]) != child.hoa:
            return ipsec._dropped("esp_wrong_sa", source, nai=child.nai.decode(), hoa=ip6_to_text(inner[8:24]))
        hoa = child.hoa
        known = self.routes.get(hoa)
        self.routes[hoa] = (tuple(peer), sock)
        if known is None:
            self._kernel("add", hoa)
            self.ha.log("udp_esp_up", nai=child.nai.decode(), hoa=ip6_to_text(hoa), peer="%s:%d" % tuple(peer))
        elif known[0] != tuple(peer):
            self.ha.log("udp_esp_moved", nai=child.nai.decode(), peer="%s:%d" % tuple(peer))
        self.counts["udp_esp_opened"] += 1
        try:
            self.ha.tun.write(bytes(inner))
        except OSError:
            pass

    def seal(self, hoa, packet):
        """A downstream IPv6 packet for `hoa` (no binding): True when it left through the device's
        tunnel CHILD_SA as ESP in UDP; False when the HoA has no such path."""
        route = self.routes.get(hoa)
        if route is None:
            return False
        child = self.ha.ipsec.data_out.get(hoa)
        if child is None:
            return False
        esp = child.sa_out.seal(packet, 41)
        if esp is None:
            return True                   # sequence numbers used up: the peer rekeys
        peer, sock = route
        try:
            sock.sendto(esp, peer)
            self.counts["udp_esp_sealed"] += 1
        except OSError as exc:
            self.ha.log.once(("udp_esp_send", peer[0], exc.errno), "send_error", peer="%s:%d" % peer,
                             reason=exc.strerror)
        return True

    def prune(self):
        """Routes of HoAs whose device has no tunnel-mode CHILD_SA any more: removed."""
        data_out = self.ha.ipsec.data_out
        for hoa in [h for h in self.routes if h not in data_out]:
            del self.routes[hoa]
            self._kernel("del", hoa)
            self.ha.log("udp_esp_down", hoa=ip6_to_text(hoa))

    def _kernel(self, op, hoa):
        ha = self.ha
        if hoa in ha.cache.bindings or not getattr(ha, "routes_live", True):
            return                        # a binding owns the route and the proxy entry
        ha._kernel("route_" + op, hoa, ha.tun.ifindex)
        if ha.home_ifindex and ha.data_plane:
            ha._kernel("proxy_" + op, hoa, ha.home_ifindex)
            if op == "add":
                ha._gratuitous_na(hoa)
