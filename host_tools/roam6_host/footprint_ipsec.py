"""The footprint runs' HA stand-in for an MN with `"security": "ipsec"` (`roam6 bench footprint
--ipsec`): the HA's sans-IO IKEv2 Responder on UDP 4500 and, on UDP 4191, BUs opened from the
CHILD_SA's ESP and answered with a BA (status 0, K echoed) sealed the same way. Only what the MN's
heap figure needs: no binding cache, no TUN (the real HA's IPsec is `roam6 ha` with ha.json
"security"). Same address as FootprintHA (footprint_run.HA_V4), so the same namespace rules apply.
"""
import socket
import struct
import threading
import time

from .errors import UserError


class IpsecFootprintHA:
    def __init__(self, psk, nai, ha_v4, ha6, hoa):
        from .ipsec.responder import Responder
        self.ha6, self.hoa = socket.inet_pton(socket.AF_INET6, ha6), socket.inet_pton(socket.AF_INET6, hoa)
        self.responder = Responder({nai.decode() if isinstance(nai, bytes) else nai: psk}, "ha.example.test",
                                   self._now(), assign=lambda _nai: (self.hoa, 64))
        self.socks = {}
        for port in (4191, 4500):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((ha_v4, port))
            except OSError as e:
                s.close()
                self.close()
                raise UserError("cannot bind %s:%d for the footprint's HA: %s" % (ha_v4, port, e.strerror),
                                hint="is another footprint run or HA using it?") from None
            s.settimeout(0.05)
            self.socks[port] = s
        self.sa = None
        self.stop = False
        self.bas = 0
        self.bu_hoas = []         # the source (home) address of each BU opened
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    @staticmethod
    def _now():
        return time.monotonic_ns() // 1_000_000

    def _loop(self):
        while not self.stop:
            for port, s in list(self.socks.items()):
                try:
                    data, peer = s.recvfrom(4096)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if port == 4500:
                    self._ike(data, peer)
                else:
                    self._bu(data, peer)

    def _ike(self, data, peer):
        r, now = self.responder, self._now()
        r.receive(data, peer, 4500, now)
        for out, to, _port in r.datagrams_to_send(now):
            self.socks[4500].sendto(out, to)
        ev = r.next_event()
        while ev is not None:
            if ev[0] in ("child_up", "child_rekeyed"):
                self.sa = (ev[2], ev[3])
            ev = r.next_event()

    def _bu(self, pkt, peer):
        from roam6.wire.binding import ipv6_packet
        from roam6.wire.checksum import checksum6
        from roam6_codec.mh import BindingAck
        if self.sa is None or len(pkt) < 48 or pkt[6] != 50:
            return
        got = self.sa[0].open(pkt[40:])
        if got is None or got[0] != 135 or got[1][2] != 5:
            return
        mh = got[1]
        self.bu_hoas.append(bytes(pkt[8:24]))
        seq, lifetime = struct.unpack_from(">H", mh, 6)[0], struct.unpack_from(">H", mh, 10)[0]
        ba = BindingAck(0, 0x80, seq, lifetime, []).encode(src=self.ha6, dst=self.hoa)
        assert checksum6(self.ha6, self.hoa, 135, ba) == 0
        self.socks[4191].sendto(bytes(ipv6_packet(self.ha6, self.hoa, 50, self.sa[1].seal(ba, 135))), peer)
        self.bas += 1

    def close(self):
        self.stop = True
        if getattr(self, "t", None) is not None:
            self.t.join(2)
        for s in self.socks.values():
            s.close()
