"""The HA's IPsec costs for `roam6 bench ipsec` (section "ha"), in process on CPython: the HA's code
(ha/ipsecmh.IpsecHA + ha/cache.BindingCache) fed the bytes an MN sends, after a real IKEv2
handshake with the firmware's Initiator.

- bu_ba_us_rfc4285 / bu_ba_us_esp: one refreshing BU in, its BA out (udp6), per BU: RFC 4285
  (the cache's learnt fast path, MAC check, BA template and MAC) against ESP (open, the cache's
  rules through the codec, the BA encoded and sealed).
- tunnel_in_us_<n>B / tunnel_out_us_<n>B: one payload packet of n bytes through the tunnel-mode
  CHILD_SA: opened to the TUN (stubbed) / sealed to the binding's path.
Best of `rounds` runs of `count` each; no network, no sockets (the driver's costs are not in it).
"""
import time
import types

from roam6.ipsec import ikev2 as k
from roam6.wire.ipv6 import build_ipv6
from roam6_codec import consts as C
from roam6_codec.mh import BindingUpdate

from ..ha.bugen import build_bu, ntp_timestamp
from ..ha.cache import BindingCache
from ..ha.ipsecconf import IpsecPeer
from ..ha.ipsecmh import IpsecHA
from ..ha.sa import SA

HA = bytes.fromhex("20010db800aa00000000000000000001")
HOA = bytes.fromhex("20010db800aa00000000000000000100")
IHOA = bytes.fromhex("20010db800aa00000000000000000301")
COA = bytes.fromhex("20010db800a100000000000000000007")
SRC = ("udp6", "2001:db8:a1::7", 4191)
NAI, INAI = b"board1@example.test", "esp1@example.test"
KEY, PSK = bytes(range(16)), bytes(range(32))
WALL = 1_800_000_000_000


def _setup():
    cache = BindingCache(HA, HA[:8], {4096: SA(NAI, 4096, KEY, HOA)})
    ipsec = IpsecHA([IpsecPeer(INAI.encode(), PSK, IHOA)], HA, "ha.test", 0)
    for sa in ipsec.cache_sas.values():
        cache.add_sa(sa)
    ike = k.Initiator(PSK, INAI, (COA, 4500), (HA, 4500), [k.ts_host(IHOA, 135)], [k.ts_host(HA, 135)], 0,
                      transport=True, request_hoa=True)
    for _ in range(4):
        for data, _dst in ike.datagrams_to_send(0):
            ipsec.ike_receive(data, (SRC[1], 4500), 4500, 0)
        for data, _peer, _port in ipsec.ike_datagrams(0):
            ike.receive(data, 0)
    if ike.esp_out is None:
        raise RuntimeError("IKEv2 handshake with the HA's responder failed")
    return cache, ipsec, ike, types.SimpleNamespace(cache=cache, _flush=lambda now: None, tun=None)


def _best(fn, rounds, count):
    best = None
    for r in range(rounds):
        t = time.perf_counter()
        fn(r, count)
        us = (time.perf_counter() - t) * 1e6 / count
        best = us if best is None or us < best else best
    return round(best, 1)


def _tunnel(ha, ipsec, b, mn_sa, out, tag, rounds, count, written):
    """Payload through the tunnel-mode CHILD_SA both ways, 64 and 1200 B: tunnel_{in,out}_us_<tag><size>B."""
    del written[:]
    for size in (64, 1200):
        inner = build_ipv6(IHOA, COA, 59, bytes(size - 40))
        pkts = [build_ipv6(IHOA, HA, 50, mn_sa.seal(inner, 41)) for _ in range(rounds * count)]

        def tin(r, cnt, pkts=pkts):
            for i in range(r * cnt, (r + 1) * cnt):
                ipsec.on_signal(ha, pkts[i], SRC, 0)

        def tout(r, cnt, inner=inner):
            for _ in range(cnt):
                ipsec.seal_data(b, inner)

        out["tunnel_in_us_%s%dB" % (tag, size)] = _best(tin, rounds, count)
        out["tunnel_out_us_%s%dB" % (tag, size)] = _best(tout, rounds, count)
    if len(written) != 2 * rounds * count:
        raise RuntimeError("%stunnel packets were not opened" % tag)



def run(rounds, count=300):
    cache, ipsec, ike, ha = _setup()
    n = rounds * count + 1
    flags = C.BU_A | C.BU_H | C.BU_K | C.BU_F
    esp_bus = [build_ipv6(IHOA, HA, 50, ike.esp_out.seal(
        BindingUpdate(s, flags, 150, []).encode(src=IHOA, dst=HA), C.NH_MH)) for s in range(1, n + 1)]
    plain_bus = [build_bu(KEY, 4096, NAI, HOA, HA, s, 150, "udp6", coa=COA, timestamp=ntp_timestamp(WALL, s))
                 for s in range(1, n + 1)]
    cache.receive(plain_bus[0], SRC, 0, wall=WALL)         # the fast path learns the shape
    ipsec.on_signal(ha, esp_bus[0], SRC, 0)
    if len(cache.datagrams_to_send(0)) != 2:
        raise RuntimeError("the BUs were not answered")

    def rfc4285(r, cnt):
        for i in range(1 + r * cnt, 1 + (r + 1) * cnt):
            cache.receive(plain_bus[i], SRC, 0, wall=WALL)
            cache.datagrams_to_send(0)

    def esp(r, cnt):
        for i in range(1 + r * cnt, 1 + (r + 1) * cnt):
            ipsec.on_signal(ha, esp_bus[i], SRC, 0)
            cache.datagrams_to_send(0)

    out = {"bu_ba_us_rfc4285": _best(rfc4285, rounds, count), "bu_ba_us_esp": _best(esp, rounds, count)}
    if cache.bindings[IHOA].seq != n or cache.bindings[HOA].seq != n:
        raise RuntimeError("not every BU was accepted")
    # the payload tunnel: a second CHILD_SA (tunnel mode)
    ni, spi = ike.rng(32), ike._new_spi()
    req = ike._encrypted([(k.PL_SA, k.sa_payload(3, spi, ike._esp_items())), (k.PL_NONCE, ni),
                          (k.PL_TSI, k.ts_payload([k.ts_host(IHOA)])),
                          (k.PL_TSR, k.ts_payload([k.ts_range(bytes(16), b"\xff" * 16)]))],
                         k.CREATE_CHILD_SA, k.F_I, ike._msgid)
    ipsec.ike_receive(k.MARKER + req, (SRC[1], 4500), 4500, 0)
    ipsec.ike_datagrams(0)
    child = ipsec.data_out[IHOA]
    # the MN's outbound SA = the HA's inbound one (same keys): seal with a twin of it
    from roam6.ipsec.esp import SA as EspSA
    mn_out = EspSA(child.sa_in.spi, child.sa_in.enc_key, child.sa_in.integ_key, ike.integ_id)
    written = []
    ha.tun = types.SimpleNamespace(write=written.append)
    b = cache.bindings[IHOA]
    _tunnel(ha, ipsec, b, mn_out, out, "", rounds, count, written)
    # the same with AES-GCM (RFC 4106): the HA's FastGcmSA (cryptography's AESGCM) in place of the child's SAs
    from roam6.ipsec.gcm import GcmSA
    from roam6_host.ha.espfast import fast_sa
    km_in, km_out = bytes(range(20)), bytes(range(20, 40))
    child.sa_in, child.sa_out = fast_sa(GcmSA(child.sa_in.spi, km_in)), fast_sa(GcmSA(child.sa_out.spi, km_out))
    _tunnel(ha, ipsec, b, GcmSA(child.sa_in.spi, km_in), out, "aes_gcm_", rounds, count, written)
    out["note"] = ("CPython, in process, one core; udp6 BU/BA; ESP AES-128-CBC + HMAC-SHA1-96 "
                   "(the cryptography package's AES); *_aes_gcm_*: the same tunnel with AES-128-GCM (RFC 4106, "
                   "cryptography's AESGCM)")
    return out
