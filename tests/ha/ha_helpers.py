"""Shared pieces of the HA tests: addresses, SAs, and an MN-side check of the BAs the HA sends."""
import socket

from roam6 import crypto
from roam6_codec import mhopts as mo
from roam6.wire.checksum import checksum6
from roam6.wire.ipv6 import decode_ipv6, pseudo_dst, pseudo_src
from roam6_codec.mh import BindingAck, decode_mh

from roam6_host.ha.bugen import V4MAPPED, build_bu, ntp_timestamp  # noqa: F401
from roam6_host.ha.cache import BindingCache
from roam6_host.ha.sa import SA


def a6(text):
    return socket.inet_pton(socket.AF_INET6, text)


def a4(text):
    return socket.inet_aton(text)


HA = a6("2001:db8:aa::1")
PREFIX = HA[:8]
HOA = a6("2001:db8:aa::100")
HOA2 = a6("2001:db8:aa::200")
KEY = bytes(range(16))
KEY2 = bytes(range(16, 32))
NAI = b"board1@example.test"
NAI2 = b"board2@example.test"
SPI, SPI2 = 4096, 4097
T0 = 1_800_000_000_000       # the virtual clock starts here (Unix ms)
V4COA = a4("192.0.2.100")
NAT_SRC = ("udp4", "198.18.12.2", 40001)    # the NAT's outer address and port
COA6 = a6("2001:db8:a1::100")


def make_cache(**kw):
    sas = {SPI: SA(NAI, SPI, KEY, HOA), SPI2: SA(NAI2, SPI2, KEY2, None)}
    return BindingCache(HA, PREFIX, sas, **kw)


def bu4(seq, lifetime=150, now=T0, ts=True, **kw):
    kw.setdefault("v4coa", V4COA)
    return build_bu(KEY, SPI, NAI, kw.pop("hoa", HOA), HA, seq, lifetime, "udp4",
                    timestamp=ntp_timestamp(now, 0x1234) if ts else None, **kw)


def parse_ba(datagram, key=KEY, mac_coa=None, hoa=HOA):
    """Decode a BA packet and check it as the MN would: MH checksum, and (when mac_coa is given)
    the MN-HA authenticator. Returns (ipv6 packet, BindingAck)."""
    pkt = decode_ipv6(datagram)
    assert pkt.nh == 135
    ba = decode_mh(pkt.payload)
    assert isinstance(ba, BindingAck), ba
    assert checksum6(pseudo_src(pkt), pseudo_dst(pkt), 135, ba.raw) == 0, "bad BA checksum"
    if mac_coa is not None:
        auth = ba.options[-1]
        assert isinstance(auth, mo.MobilityAuth) and auth.spi >= 256
        raw = ba.raw
        mh_data = raw[:4] + b"\0\0" + raw[6:len(raw) - 12]
        assert crypto.mnha_auth_data(key, mac_coa, hoa, mh_data) == auth.auth_data, "BA authenticator wrong"
    return pkt, ba


def exchange(c, packet, source, now, wall=None):
    """Feed the cache one packet; what it queued to send: [(datagram, (transport, host, port))]."""
    c.receive(packet, source, now, wall=wall)
    return c.datagrams_to_send(now)
