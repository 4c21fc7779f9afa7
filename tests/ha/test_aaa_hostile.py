"""The HA's AAA side against a hostile or broken RADIUS server (issue 18 "bad input"): the binding
cache and aaa.agent in this process, the "server" a UDP socket on loopback that the test answers
by hand (what a real FreeRADIUS never sends: test_aaa.py has the real one). Garbage, a wrong
shared secret, undecodable attributes, a key of the wrong size, no answer at all: each is
logged, nothing is bound, nothing raises; a good Accept afterwards still works."""
import select
import socket

from pyrad import packet as rp
from pyrad.dictionary import Dictionary

from ha_helpers import HA, T0, V4COA, V4MAPPED, a6, build_bu, make_cache, ntp_timestamp, parse_ba

from roam6_host.aaa.agent import AaaAgent
from roam6_host.aaa.config import AaaConfig, Server
from roam6_host.aaa.freeradius import CLIENT_DICTIONARY
import ipaddress

SECRET = b"loopback-secret"
NAI3 = b"board3@example.test"
SPI3 = 5003
KEY3 = bytes(range(40, 56))
HOA3 = a6("2001:db8:aa::300")
SRC = ("udp4", "198.18.12.2", 40003)


class Log:
    def __init__(self):
        self.lines = []

    def __call__(self, ev, **f):
        self.lines.append(dict(f, ev=ev))

    def once(self, key, ev, **f):
        self(ev, **f)

    def evs(self, ev):
        return [x for x in self.lines if x["ev"] == ev]


def setup(timeout_ms=100, retries=2):
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(2)
    cfg = AaaConfig()
    cfg.servers = [Server("127.0.0.1", srv.getsockname()[1], srv.getsockname()[1])]
    cfg.secret = SECRET
    cfg.timeout_ms, cfg.retries = timeout_ms, retries
    cache = make_cache()
    log = Log()
    agent = AaaAgent(cache, cfg, log, ipaddress.IPv6Network("2001:db8:aa::/64"), 3600)
    agent.clock = lambda: 1000          # the virtual clock send_bu uses
    agent.open()
    return srv, cache, agent, log


def send_bu(cache, seq=1):
    bu = build_bu(KEY3, SPI3, NAI3, HOA3, HA, seq, 150, "udp4", v4coa=V4COA, timestamp=ntp_timestamp(T0, seq))
    cache.receive(bu, SRC, 1000, wall=T0)
    return cache.datagrams_to_send(1000)


def request(srv):
    raw, peer = srv.recvfrom(4096)
    req = rp.AuthPacket(packet=raw, secret=SECRET, dict=Dictionary(CLIENT_DICTIONARY))
    return req, peer


def pump(agent):
    fds = agent.fds()
    r, _w, _x = select.select(list(fds), [], [], 0.2)
    for fd in r:
        fds[fd]()


def accept(req, secret=SECRET, key=KEY3, spi=SPI3):
    rep = req.CreateReply()
    rep.secret = secret
    rep.code = rp.AccessAccept
    rep["Roam6-MN-HA-Key"] = key
    rep["Roam6-MN-HA-SPI"] = spi
    rep["Roam6-Home-Address"] = "2001:db8:aa::300"
    return rep.ReplyPacket()


def test_garbage_wrong_secret_and_bad_attributes_are_logged_and_bind_nothing():
    srv, cache, agent, log = setup()
    try:
        assert send_bu(cache) == []                  # held: no answer yet
        req, peer = request(srv)
        assert req["User-Name"] == [NAI3.decode()] and req.message_authenticator
        assert req.verify_message_authenticator()
        good = accept(req)
        srv.sendto(b"\x02\x01\x00", peer)                                    # shorter than a header
        srv.sendto(bytes([2, (req.id + 1) & 0xFF]) + good[2:], peer)          # an id nobody waits for
        srv.sendto(accept(req, secret=b"not-the-secret"), peer)               # wrong shared secret
        srv.sendto(good[:20] + b"\x1a\x01", peer)                             # attribute length 1
        for _ in range(4):
            pump(agent)
        reasons = " | ".join(x["reason"] for x in log.evs("aaa_bad_reply"))
        assert "shorter" in reasons and "no request waits" in reasons and "Authenticator" in reasons, reasons
        assert not cache.bindings and SPI3 not in cache.sas and agent.client.pending() == 1
        # a well-signed Accept whose key has the wrong size: logged, BA 130, nothing bound
        srv.sendto(accept(req, key=bytes(15)), peer)
        pump(agent)
        assert log.evs("aaa_bad_attributes") and not cache.bindings and SPI3 not in cache.sas
        (dg, dest), = cache.datagrams_to_send(0)
        _pkt, ba = parse_ba(dg, hoa=HOA3)
        assert ba.status == 130 and dest == SRC
        # the next BU asks again; a good Accept binds it and the BA is signed with the key
        assert send_bu(cache, seq=2) == []
        req, peer = request(srv)
        srv.sendto(accept(req), peer)
        pump(agent)
        (dg, dest), = cache.datagrams_to_send(0)
        _pkt, ba = parse_ba(dg, key=KEY3, mac_coa=V4MAPPED + V4COA, hoa=HOA3)
        assert ba.status == 0 and HOA3 in cache.bindings
    finally:
        agent.close()
        srv.close()


def test_no_answer_retransmits_then_ba_130_and_spi_mismatch_is_129():
    srv, cache, agent, log = setup(timeout_ms=50, retries=3)
    try:
        send_bu(cache)
        first, _ = request(srv)
        t = agent.get_timer()
        for _ in range(3):
            agent.handle_timer(t)
            t = agent.get_timer() if agent.get_timer() is not None else t
        again = [request(srv)[0] for _ in range(2)]
        assert all(r.id == first.id and r.authenticator == first.authenticator for r in again)   # RFC 5080
        assert log.evs("aaa_server_down") and log.evs("aaa_unavailable")
        (dg, _dest), = cache.datagrams_to_send(0)
        assert parse_ba(dg, hoa=HOA3)[1].status == 130 and not cache.bindings
        # the server holds another SPI for this NAI: 129, nothing installed
        send_bu(cache, seq=2)
        req, peer = request(srv)
        srv.sendto(accept(req, spi=SPI3 + 1), peer)
        pump(agent)
        (dg, _dest), = cache.datagrams_to_send(0)
        assert parse_ba(dg, hoa=HOA3)[1].status == 129 and log.evs("aaa_spi_mismatch")
        assert SPI3 + 1 not in cache.sas
    finally:
        agent.close()
        srv.close()


def test_made_up_nais_are_bounded_by_the_request_rate():
    """BUs from NAIs nobody provisioned cost an Access-Request each: at most requests_per_s of
    them; the rest get BA 130 at once (no request, nothing held)."""
    srv, cache, agent, log = setup()
    agent.cfg.requests_per_s = 2
    agent._tokens = 2
    try:
        answers = []
        for i in range(4):
            nai = b"fake%d@example.test" % i
            bu = build_bu(KEY3, 6000 + i, nai, HOA3, HA, 1, 150, "udp4", v4coa=V4COA, timestamp=ntp_timestamp(T0, 1))
            cache.receive(bu, SRC, 1000, wall=T0)
            answers.append(cache.datagrams_to_send(1000))
        assert answers[0] == [] and answers[1] == []          # held, asked
        assert [parse_ba(a[0][0], hoa=HOA3)[1].status for a in answers[2:]] == [130, 130]
        assert agent.stats["requests"] == 2 and len(agent.held) == 2 and log.evs("aaa_busy")
        cache.receive(build_bu(KEY3, 6009, b"later@example.test", HOA3, HA, 1, 150, "udp4", v4coa=V4COA,
                               timestamp=ntp_timestamp(T0, 1)), SRC, 1600, wall=T0 + 600)
        assert cache.datagrams_to_send(1600) == [] and agent.stats["requests"] == 3     # the bucket refilled
    finally:
        agent.close()
        srv.close()


def test_sa_is_asked_again_after_cache_s_and_a_reject_then_ends_the_binding():
    srv, cache, agent, log = setup()
    agent.cfg.cache_s = 10
    try:
        send_bu(cache)
        req, peer = request(srv)
        srv.sendto(accept(req), peer)
        pump(agent)
        (dg, _dest), = cache.datagrams_to_send(0)
        assert parse_ba(dg, key=KEY3, mac_coa=V4MAPPED + V4COA, hoa=HOA3)[1].status == 0
        assert agent.get_timer() == 1000 + 10_000        # the SA's refresh, cache_s after the Accept
        # refresh time: asked in the background, an Accept keeps binding and SA (and its replay state)
        agent.handle_timer(11_000)
        req, peer = request(srv)
        assert req["User-Name"] == [NAI3.decode()]
        sa = cache.sas[SPI3]
        srv.sendto(accept(req), peer)
        pump(agent)
        assert cache.sas[SPI3] is sa and HOA3 in cache.bindings and log.evs("aaa_refreshed")
        # next time the server rejects (the device was revoked): the binding ends, the SA goes
        agent.handle_timer(agent.get_timer())
        req, peer = request(srv)
        rep = req.CreateReply()
        rep.code = rp.AccessReject
        srv.sendto(rep.ReplyPacket(), peer)
        pump(agent)
        assert HOA3 not in cache.bindings and SPI3 not in cache.sas and log.evs("aaa_revoked")
        assert [e.reason for e in cache.events() if e.kind == "binding_removed"] == ["revoked"]
    finally:
        agent.close()
        srv.close()


def test_framed_ip_address_is_the_ipv4_hoa_and_a_bad_one_is_left_out(tmp_path):
    """RFC 5555 from AAA (aaa/ipv4.py): an Accept's Framed-IP-Address becomes the NAI's IPv4 HoA
    (the MN asking 0.0.0.0 gets it, the pool gives it up); one outside the IPv4 home prefix is
    logged and left out, the IPv6 registration still made; a forgotten SA drops it."""
    from roam6.core.registration import Registration
    from roam6.core.v4ack import enable
    from roam6_codec import mhopts as mo
    from roam6_host.aaa import ipv4 as aaa4
    from roam6_host.ha import ipv4home
    srv, cache, agent, log = setup()
    cache.v4homes = h = ipv4home.IPv4Homes(ipaddress.IPv4Network("198.18.50.0/24"),
                                           [ipaddress.IPv4Address("198.18.50.20"),
                                            ipaddress.IPv4Address("198.18.50.21")],
                                           None, str(tmp_path / "leases.json"))
    try:
        for seq, framed, want in ((1, "10.9.9.9", None), (9, "198.18.50.20", "198.18.50.20")):
            r = Registration(NAI3, SPI3, KEY3, HOA3, HA, 600, True, seq, T0 + 2208988800 * 1000)
            enable(r, bytes(4))
            r.move(V4COA, "udp4", 0)
            (pkt, _), = r.datagrams_to_send(0)
            cache.receive(bytes(pkt), SRC, 1000, wall=T0)
            assert cache.datagrams_to_send(1000) == []       # held for the server
            req, peer = request(srv)
            rep = req.CreateReply()
            rep.secret, rep.code = SECRET, rp.AccessAccept
            rep["Roam6-MN-HA-Key"], rep["Roam6-MN-HA-SPI"] = KEY3, SPI3
            rep["Roam6-Home-Address"] = "2001:db8:aa::300"
            rep["Framed-IP-Address"] = framed
            srv.sendto(rep.ReplyPacket(), peer)
            pump(agent)
            (dg, _dest), = cache.datagrams_to_send(0)
            _pkt, ba = parse_ba(dg, key=KEY3, mac_coa=V4MAPPED + V4COA, hoa=HOA3)
            assert ba.status == 0 and HOA3 in cache.bindings
            ack = ba.find(mo.IPv4AddressAck)
            if want is None:       # left out: the pool's first address, and the reason logged
                assert "10.9.9.9" in log.evs("aaa_ipv4_refused")[-1]["reason"] and not h.aaa_static
                assert ack.status == 0 and ack.address == bytes([198, 18, 50, 20])
                agent._forget(SPI3)                          # the next BU asks the server again
                assert not h.bound and SPI3 not in cache.sas
            else:
                assert ack.status == 0 and ack.address == ipaddress.IPv4Address(want).packed
                assert log.evs("aaa_accept")[-1]["hoa4"] == want and h.static == {NAI3: ack.address}
                assert ack.address not in h.pool
        agent._forget(SPI3)
        assert not h.aaa_static and not h.static and len(h.pool) == 2
        assert aaa4.grant(agent, NAI3, {"Framed-IP-Address": ["198.18.50.255"]}) is None   # broadcast
        assert "not a host address" in log.evs("aaa_ipv4_refused")[-1]["reason"]
    finally:
        agent.close()
        srv.close()
