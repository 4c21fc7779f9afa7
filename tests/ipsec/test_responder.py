"""roam6_host.ipsec.responder sans-IO, with the MN's initiator (roam6.ipsec.ikev2) as its peer:
handshake and ESP both ways, a retransmitted request answered with the same bytes, refusals
(unknown ID, wrong PSK, no proposal, another DH group), malformed datagrams never raise, and the
half-open bound. strongSwan as the independent peer: test_responder_strongswan.py."""
import os
import random

from roam6.ipsec import ikev2 as k
from roam6_host.ipsec.responder import Responder

NAI = "mn1@example.test"
MN, HA = (b"\x0a\x00\x00\x02", 4500), (b"\x0a\x00\x00\x01", 4500)
PEER = ("10.0.0.2", 4500)
HOA, HA6 = bytes(15) + b"\x02", bytes(15) + b"\x01"


def initiator(psk=b"psk-1", **kw):
    return k.Initiator(psk, NAI, MN, HA, [k.ts_host(HOA)], [k.ts_host(HA6)], 0, **kw)


def pump(ike, r, now=0, limit=10):
    """Exchange datagrams until both sides are quiet; returns the responder's datagrams."""
    seen = []
    for _ in range(limit):
        a = ike.datagrams_to_send(now)
        for data, _dst in a:
            r.receive(data, PEER, 4500, now)
        b = r.datagrams_to_send(now)
        seen += b
        for data, _peer, _port in b:
            ike.receive(data, now)
        if not a and not b:
            break
    return seen


def drain(m):
    out = []
    ev = m.next_event()
    while ev:
        out.append(ev)
        ev = m.next_event()
    return out


def test_handshake_and_esp_both_ways():
    r = Responder({NAI: "psk-1"}, "ha.example.test", 0, local_ip="10.0.0.1")
    ike = initiator(prf=5, integ=12)
    pump(ike, r)
    assert [e[0] for e in drain(ike)] == ["ike_up", "child_up"]
    evs = drain(r)
    assert [e[0] for e in evs] == ["ike_up", "child_up"] and evs[0][1] == NAI
    _, _, sa_in, sa_out, transport, ts_i, ts_r = evs[1]
    assert not transport and ts_i == [k.ts_host(HOA)] and ts_r == [k.ts_host(HA6)]
    assert sa_in.open(ike.esp_out.seal(b"up", 41)) == (41, b"up")
    assert ike.esp_in.open(sa_out.seal(b"down", 41)) == (41, b"down")
    assert list(r.sas.values())[0].sk == ike.sk


def test_a_retransmitted_request_gets_the_same_response():
    r = Responder({NAI: "psk-1"}, "ha.example.test", 0)
    ike = initiator()
    (req, _), = ike.datagrams_to_send(0)
    r.receive(req, PEER, 4500, 0)
    r.receive(req, PEER, 4500, 1)        # IKE_SA_INIT again: a new SA each time (stateless start)...
    a, b = r.datagrams_to_send(1)
    assert a[0][8:16] != b[0][8:16]      # ... each with its own SPI; half-open bounded below
    ike.receive(a[0], 2)
    (auth, _), = ike.datagrams_to_send(2)
    r.receive(auth, PEER, 4500, 3)
    r.receive(auth, PEER, 4500, 4)       # IKE_AUTH again: the same answer, no second CHILD_SA
    x, y = r.datagrams_to_send(4)
    assert x[0] == y[0]
    assert [e[0] for e in drain(r)] == ["ike_up", "child_up"]


def test_refusals():
    r = Responder({"other@example.test": "psk-1"}, "ha.example.test", 0)
    ike = initiator()
    pump(ike, r)
    assert drain(ike) == [("failed", "auth", k.N_AUTH_FAILED)]
    assert drain(r)[0][:3] == ("refused", "auth", k.N_AUTH_FAILED) and not r.sas
    r = Responder({NAI: "psk-1"}, "ha.example.test", 0)
    ike = initiator(psk=b"wrong")
    pump(ike, r)
    assert drain(ike) == [("failed", "auth", k.N_AUTH_FAILED)]
    assert [e[:3] for e in drain(r)] == [("refused", "auth", k.N_AUTH_FAILED)]
    # a proposal we cannot do (3DES) and another DH group
    ike = initiator()
    (req, _), = ike.datagrams_to_send(0)
    msg = bytearray(req[4:])
    pls = k.parse_chain(msg, 28, len(msg), msg[16])
    sa_body = bytes(pls[0][2])
    bad = sa_body.replace(b"\x01\x00\x00\x0c\x80\x0e\x00\x80", b"\x01\x00\x00\x03\x80\x0e\x00\x80")
    r.receive(k.MARKER + bytes(msg).replace(sa_body, bad), PEER, 4500, 0)
    ke = bytes(pls[1][2])
    r.receive(k.MARKER + bytes(msg).replace(ke, b"\x00\x0e" + ke[2:]), PEER, 4500, 0)
    evs = drain(r)
    assert [e[:3] for e in evs] == [("refused", "proposal", 14), ("refused", "ke", 17)]
    (no_prop, _, _), (inv_ke, _, _) = r.datagrams_to_send(0)
    ike.receive(inv_ke, 1)
    assert drain(ike) == [("failed", "ke", 17)]


def test_malformed_datagrams_never_raise():
    r = Responder({NAI: "psk-1"}, "ha.example.test", 0)
    ike = initiator()
    (req, _), = ike.datagrams_to_send(0)
    rnd = random.Random(19)
    junk = [req[:n] for n in range(len(req))] + [os.urandom(rnd.randrange(1, 400)) for _ in range(200)]
    for _ in range(100):
        b = bytearray(req)
        b[rnd.randrange(4, len(b))] = rnd.randrange(256)
        junk.append(bytes(b))
    for port in (500, 4500):
        for j in junk:
            r.receive(j[4:] if port == 500 else j, PEER, port, 0)
    assert r.dropped + r.ignored + len(r.sas) > 0
    # and a real exchange still works afterwards
    r2 = Responder({NAI: "psk-1"}, "ha.example.test", 0)
    ike = initiator()
    pump(ike, r2)
    assert [e[0] for e in drain(ike)] == ["ike_up", "child_up"]


def test_half_open_sas_are_bounded():
    r = Responder({NAI: "psk-1"}, "ha.example.test", 0, max_half_open=8)
    for i in range(50):
        ike = initiator()
        (req, _), = ike.datagrams_to_send(0)
        r.receive(req, PEER, 4500, i)
    assert len(r.sas) == 8


def test_cookies_under_a_flood_of_half_open_sas():
    r = Responder({NAI: "psk-1"}, "ha.example.test", 0, max_half_open=64, cookie_threshold=4)
    for i in range(4):                               # four half-open SAs: the threshold
        ike = initiator()
        (req, _), = ike.datagrams_to_send(0)
        r.receive(req, PEER, 4500, i)
    r.datagrams_to_send(4)
    for i in range(20):                              # a flood: answered with a cookie, no new SA
        ike = initiator()
        (req, _), = ike.datagrams_to_send(0)
        r.receive(req, ("10.9.9.%d" % i, 500), 4500, 10)
    assert len(r.sas) == 4 and r.cookies_sent == 20
    # a real initiator comes back with the cookie and gets through
    ike = initiator()
    pump(ike, r)
    assert [e[0] for e in drain(ike)] == ["ike_up", "child_up"] and r.cookies_sent == 21
    # a cookie for another address is refused again
    ike = initiator()
    (req, _), = ike.datagrams_to_send(0)
    r.receive(req, PEER, 4500, 11)
    (cookie_resp, _, _), = r.datagrams_to_send(11)
    ike.receive(cookie_resp, 12)
    (again, _), = ike.datagrams_to_send(12)
    r.receive(again, ("10.0.0.99", 4500), 4500, 13)
    (resp, _, _), = r.datagrams_to_send(13)
    assert resp[4 + 16] == k.PL_NOTIFY and r.cookies_sent == 23


def test_child_sa_rekey_and_delete_with_the_mn_initiator():
    r = Responder({NAI: "psk-1"}, "ha.example.test", 0)
    ike = initiator(liveness_ms=None)
    pump(ike, r)
    drain(ike)
    _, _, old_in, old_out, _, _, _ = drain(r)[1]
    ike.rekey_child(10)
    pump(ike, r, 10)
    assert drain(ike) == [("child_rekeyed", ike.esp_in.spi, ike.esp_out.spi)]
    evs = drain(r)
    assert [e[0] for e in evs] == ["child_rekeyed", "child_deleted"] and evs[1][2] == old_in.spi
    _, _, new_in, new_out, old_spi = evs[0]
    assert old_spi == old_in.spi
    assert new_in.spi == ike.esp_out.spi and new_out.spi == ike.esp_in.spi and new_in.spi != old_in.spi
    assert new_in.open(ike.esp_out.seal(b"after", 41)) == (41, b"after")
    assert ike.esp_in.open(new_out.seal(b"back", 41)) == (41, b"back")
    assert list(r.sas.values())[0].children == [(new_in, new_out)]
    # liveness still answered afterwards
    ike.check_liveness(20)
    pump(ike, r, 21)
    assert drain(ike) == [("alive", 1)]              # sent at 20, answered at 21
