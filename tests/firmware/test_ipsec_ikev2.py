"""roam6.ipsec.ikev2.Initiator, sans-IO with a virtual clock, against the minimal responder in
ike_peer.py: the messages' layout, the handshake, the CHILD_SA keys (ESP both ways), the
retransmission timer, COOKIE, refusals, and malformed input that must never raise."""
from ike_peer import Peer
from support import Rand

from roam6.ipsec import ikev2 as k
from roam6.ipsec.prims import PRFS, prf_plus

PSK = b"device-psk-0123"
NAI = "mn1@example.test"
MN, HA = (b"\x0a\x00\x00\x02", 4500), (b"\x0a\x00\x00\x01", 4500)
HOA, HA6 = b"\x20\x01\x0d\xb8" + bytes(11) + b"\x02", b"\x20\x01\x0d\xb8" + bytes(11) + b"\x01"


def rng_bytes(seed):
    return bytes((seed * 31 + i * 17) & 255 for i in range(4096))


def make(now=0, **kw):
    return k.Initiator(PSK, NAI, MN, HA, [k.ts_host(HOA)], [k.ts_host(HA6)], now, rng=Rand(rng_bytes(1)), **kw)


def one(ike, now):
    out = ike.datagrams_to_send(now)
    assert len(out) == 1, out
    data, dst = out[0]
    assert dst == HA
    return data


def events(ike):
    out = []
    ev = ike.next_event()
    while ev:
        out.append(ev)
        ev = ike.next_event()
    return out


def response(req, spi_r, body):
    """An IKE_SA_INIT response with these payloads (a notify first)."""
    hdr = req[:8] + spi_r + bytes((k.PL_NOTIFY, 0x20, 34, k.F_R)) + bytes(4)
    return hdr + (28 + len(body)).to_bytes(4, "big") + body


def handshake(peer=None, **kw):
    ike = make(**kw)
    peer = peer or Peer(PSK, Rand(rng_bytes(2)), natt=kw.get("natt", True))
    ike.receive(peer.init(one(ike, 0)), 3)
    ike.receive(peer.auth(one(ike, 3)), 7)
    return ike, peer


def test_ike_sa_init_request_layout():
    ike = make()
    data = one(ike, 0)
    assert data[:4] == k.MARKER               # natt: UDP 4500 with the non-ESP marker from the start
    msg = data[4:]
    assert msg[:8] == ike.spi_i and msg[8:16] == bytes(8)
    assert msg[17] == 0x20 and msg[18] == k.IKE_SA_INIT and msg[19] == k.F_I and msg[20:24] == bytes(4)
    assert int.from_bytes(msg[24:28], "big") == len(msg)
    pls = k.parse_chain(msg, 28, len(msg), msg[16])
    assert [t for t, _, _ in pls] == [k.PL_SA, k.PL_KE, k.PL_NONCE, k.PL_NOTIFY, k.PL_NOTIFY]
    proto, spi, items = k.parse_sa(pls[0][2])
    assert proto == 1 and spi == b""
    assert items == [(1, 12, b"\x80\x0e\x00\x80"), (2, 2, b""), (3, 2, b""), (4, 31, b"")]
    assert bytes(pls[1][2][:4]) == b"\x00\x1f\x00\x00" and len(pls[1][2]) == 36
    assert len(pls[2][2]) == 32
    assert bytes(pls[3][2][2:4]) == b"\x40\x04" and bytes(pls[4][2][2:4]) == b"\x40\x05"


def test_handshake_child_sa_and_esp_both_ways():
    ike, peer = handshake()
    assert peer.auth_ok
    ev = events(ike)
    assert ev[0] == ("ike_up", 7)
    _, spi_in, spi_out, transport = ev[1]
    assert ev[1][0] == "child_up" and spi_out == 0xC0000001 and not transport
    assert spi_in == int.from_bytes(peer.init_esp_spi, "big") and spi_in >> 24
    assert ike.sk == peer.sk and ike.get_timer() is None
    # KEYMAT (§2.17): i->r encryption, i->r integrity, r->i encryption, r->i integrity
    km = prf_plus(PRFS[2][0], peer.sk["d"], peer.ni + peer.nr, 72)
    assert ike.esp_out.enc_key == km[:16] and ike.esp_out.integ_key == km[16:36]
    assert ike.esp_in.enc_key == km[36:52] and ike.esp_in.integ_key == km[52:72]
    assert k.parse_ts(peer.ts[0]) == [k.ts_host(HOA)] and k.parse_ts(peer.ts[1]) == [k.ts_host(HA6)]


def test_sha256_prf_and_integrity_and_transport_mode():
    ike, peer = handshake(prf=5, integ=12, transport=True)
    ev = events(ike)
    assert ev[0][0] == "ike_up" and ev[1][0] == "child_up" and ev[1][3] is True
    assert peer.transport and len(ike.sk["d"]) == 32 and len(ike.sk["ai"]) == 32
    assert ike.esp_out.icv_len == 16


def test_retransmits_the_same_request_with_doubling_timeouts_then_fails():
    ike = make(now=1000)
    first = one(ike, 1000)
    assert ike.get_timer() == 1500
    ike.handle_timer(1499)
    assert ike.datagrams_to_send(1499) == []
    waits = []
    t = 1500
    for _ in range(5):
        ike.handle_timer(t)
        assert one(ike, t) == first
        waits.append(ike.get_timer() - t)
        t = ike.get_timer()
    assert waits == [1000, 2000, 4000, 8000, 16000]
    ike.handle_timer(t)
    assert ike.datagrams_to_send(t) == [] and ike.get_timer() is None
    ev = events(ike)
    assert [e[0] for e in ev] == ["retransmit"] * 5 + ["failed"] and ev[-1] == ("failed", "timeout", 0)


def test_cookie_makes_a_new_request_that_starts_with_it():
    ike = make()
    req = one(ike, 0)[4:]
    body = k.chain([(k.PL_NOTIFY, k.notify(k.N_COOKIE, b"cookie-bytes"))])
    resp = response(req, bytes(8), body)
    ike.receive(k.MARKER + resp, 5)
    again = one(ike, 5)[4:]
    pls = k.parse_chain(again, 28, len(again), again[16])
    assert pls[0][0] == k.PL_NOTIFY and bytes(pls[0][2][4:]) == b"cookie-bytes" and len(pls) == 6


def test_refusals_become_failed_events():
    ike = make()
    req = one(ike, 0)[4:]
    body = k.chain([(k.PL_NOTIFY, k.notify(k.N_NO_PROPOSAL_CHOSEN))])
    resp = response(req, b"R" * 8, body)
    ike.receive(k.MARKER + resp, 5)
    assert events(ike) == [("failed", "notify", k.N_NO_PROPOSAL_CHOSEN)]
    # the responder refuses our AUTH (wrong PSK on our side)
    ike = make()
    peer = Peer(b"other-psk", Rand(rng_bytes(2)))
    ike.receive(peer.init(one(ike, 0)), 3)
    ike.receive(peer.auth(one(ike, 3)), 7)
    assert not peer.auth_ok and events(ike) == [("failed", "auth", k.N_AUTH_FAILED)]
    # the responder's AUTH does not prove our PSK: refused by us
    ike, _ = handshake(Peer(PSK, Rand(rng_bytes(2)), auth_psk=b"an-impostor"))
    assert events(ike) == [("failed", "auth", k.N_AUTH_FAILED)] and ike.esp_in is None
    # IKE SA up, CHILD_SA refused
    ike, _ = handshake(Peer(PSK, Rand(rng_bytes(2)), child=False))
    ev = events(ike)
    assert ev[0][0] == "ike_up" and ev[1] == ("child_failed", k.N_TS_UNACCEPTABLE)


def test_malformed_responses_never_raise_and_leave_the_exchange_waiting():
    ike = make()
    req = one(ike, 0)
    peer = Peer(PSK, Rand(rng_bytes(2)))
    good = peer.init(req)
    bad = []
    for n in range(len(good)):                       # every truncation
        bad.append(good[:n])
    lying = bytearray(good)
    lying[4 + 28 + 2:4 + 28 + 4] = b"\xff\xff"       # first payload's length runs past the end
    bad.append(bytes(lying))
    crit = bytearray(good)
    crit[4 + 16] = 200                               # unknown first payload type ...
    crit[4 + 28 + 1] = 0x80                          # ... marked critical
    bad.append(bytes(crit))
    short_len = bytearray(good)
    short_len[4 + 27] -= 1                           # header length one short of the datagram
    bad.append(bytes(short_len))
    other_spi = bytearray(good)
    other_spi[4] ^= 1
    bad.append(bytes(other_spi))
    bad.append(k.MARKER + bytes(200))
    bad.append(b"\x01\x02\x03\x04" + good[4:])       # ESP-looking, not IKE
    for b in bad:
        ike.receive(b, 1)
    assert ike.dropped + ike.ignored == len(bad) and events(ike) == []
    assert ike.get_timer() == 500                    # still waiting for a good answer
    ike.receive(good, 2)
    auth = one(ike, 2)
    good2 = peer.auth(auth)
    for n in range(0, len(good2), 7):
        ike.receive(good2[:n], 3)
    flipped = bytearray(good2)
    flipped[-20] ^= 1                                # inside the ciphertext: the ICV fails
    ike.receive(bytes(flipped), 3)
    assert events(ike) == [] and ike.get_timer() is not None
    ike.receive(good2, 4)
    assert [e[0] for e in events(ike)] == ["ike_up", "child_up"]
    ike.receive(good2, 5)                            # a duplicate response: ignored
    assert events(ike) == []


def test_peer_informational_gets_an_answer_and_delete_ends_the_sa():
    ike, peer = handshake()
    events(ike)
    dpd = peer.seal([], k.INFORMATIONAL, 0, 0)
    ike.receive(dpd, 10)
    ans = one(ike, 10)
    req, inner = peer.open(ans)
    assert inner == [] and req[18] == k.INFORMATIONAL and req[19] == k.F_I | k.F_R and req[20:24] == bytes(4)
    ike.receive(peer.seal([(k.PL_DELETE, b"\x01\x00\x00\x00")], k.INFORMATIONAL, 0, 1), 11)
    one(ike, 11)
    assert events(ike) == [("deleted",)]


def test_configuration_payload_reply_parsing():
    addr = HOA
    reply = bytes((k.CFG_REPLY, 0, 0, 0)) + b"\x00\x0d\x00\x00" + b"\x00\x08\x00\x11" + addr + b"\x40"
    assert k.parse_cp_ip6(reply) == (addr, 64)
    assert k.parse_cp_ip6(bytes((k.CFG_REPLY, 0, 0, 0))) is None
    for bad in (reply[:-1], b"\x01\x00\x00\x00" + reply[4:], b"\x02"):
        try:
            k.parse_cp_ip6(bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % bad)
    # the request carries CP(CFG_REQUEST) INTERNAL_IP6_ADDRESS, empty, before the SA
    ike = make(request_hoa=True)
    peer = Peer(PSK, Rand(rng_bytes(2)))
    ike.receive(peer.init(one(ike, 0)), 3)
    _, inner = peer.open(one(ike, 3))
    types = [t for t, _, _ in inner]
    assert types.index(k.PL_CP) < types.index(k.PL_SA)
    assert bytes(inner[types.index(k.PL_CP)][2]) == b"\x01\x00\x00\x00\x00\x08\x00\x00"


def test_liveness_on_its_timer_and_on_request_then_timeout():
    ike, peer = handshake(liveness_ms=20000)
    events(ike)
    assert ike.get_timer() == 7 + 20000
    ike.handle_timer(20007)
    req = one(ike, 20007)
    assert ike.get_timer() == 20507                  # the request's retransmission timer
    _, inner = peer.open(req)
    assert inner == [] and req[4 + 18] == k.INFORMATIONAL and req[4 + 20:4 + 24] == b"\x00\x00\x00\x02"
    ike.receive(peer.answer(req), 20010)
    assert events(ike) == [("alive", 3)] and ike.get_timer() == 40010
    ike.check_liveness(20011)
    req = one(ike, 20011)
    ike.check_liveness(20012)                        # one request at a time
    assert ike.datagrams_to_send(20012) == [] and ike.ignored == 1
    t = 20011
    for _ in range(10):                              # the HA stays silent
        if ike.get_timer() is None:
            break
        t = ike.get_timer()
        ike.handle_timer(t)
        ike.datagrams_to_send(t)
    ev = events(ike)
    assert ev[-1] == ("failed", "timeout", 0) and [e[0] for e in ev[:-1]] == ["retransmit"] * 5


def test_child_rekey_new_keys_then_delete_of_the_old_sas():
    ike, peer = handshake()
    events(ike)
    old_in, old_out = ike.esp_in, ike.esp_out
    ike.rekey_child(10)
    req = one(ike, 10)
    _, inner = peer.open(req)
    types = [t for t, _, _ in inner]
    assert types == [k.PL_NOTIFY, k.PL_SA, k.PL_NONCE, k.PL_TSI, k.PL_TSR]
    assert bytes(inner[0][2]) == b"\x03\x04\x40\x09" + old_in.spi.to_bytes(4, "big")   # N(REKEY_SA), ESP, old SPI
    ike.receive(peer.answer(req), 12)
    assert ike.esp_out.spi == 0xC0000002 and ike.esp_in is not old_in and ike.esp_in_old is old_in
    km = peer.rekey_keymat
    assert ike.esp_out.enc_key == km[:16] and ike.esp_in.integ_key == km[52:72]
    dreq = one(ike, 12)                              # the Delete of the old inbound SA follows
    ike.receive(peer.answer(dreq), 13)
    assert peer.deleted == old_in.spi.to_bytes(4, "big")
    assert events(ike) == [("child_rekeyed", ike.esp_in.spi, 0xC0000002)] and ike.esp_in_old is None
    assert old_out.spi == 0xC0000001
