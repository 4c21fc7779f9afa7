"""The bootstrap sequencer (roam6.bootstrap.sequence): methods in the configured order."""
import struct

from support import unhex
from roam6.bootstrap.sequence import Bootstrap, static_info
from roam6.bootstrap import dns
from test_dhcp6 import reply, udinf, opt, HNP, HAA, HA, PFX, MAC, Rand
from test_dns import srv_answer, answer, V6, V4, SERVER

CFG = {"bootstrap": ["dhcpv6", "dns", "static"], "domain": "example.test",
       "ha": "bootstrap", "home_prefix": "2001:db8:aa::/64"}


def run(b, respond, t=0, limit=60000):
    """Drive a sequencer with a virtual clock; respond(data, dst, dport) -> (reply, sport) or None."""
    sent = []
    while not b.done and t < limit:
        for data, (dst, dport, sport) in b.datagrams_to_send(t):
            sent.append((t, dport, sport))
            r = respond(data, dst, dport)
            if r is not None:
                b.receive(r[0], dst, r[1], t + 1)
        if b.done:
            break
        nt = b.get_timer()
        t = max(t, nt)
        b.handle_timer(t)
    return sent


def xid(data):
    return struct.unpack(">I", data[:4])[0] & 0xFFFFFF


def qid(data):
    return struct.unpack(">H", data[:2])[0]


def test_dhcpv6_first_gives_ha_and_prefix():
    b = Bootstrap(CFG, MAC, True, [SERVER], Rand(), 0, dhcp_delay_ms=0)
    sent = run(b, lambda d, dst, p: (reply(xid(d), udinf(HNP, HAA)), 547) if p == 547 else None)
    assert sent == [(0, 547, 546)]
    r = b.result
    assert r["method"] == "dhcpv6" and r["ha"] == [HA] and r["home_prefix"] == (PFX, 64)


def test_dhcpv6_asks_for_identified_information_of_the_nai_realm():
    b = Bootstrap(dict(CFG, nai="board1@Example.Test"), MAC, True, [SERVER], Rand(), 0, dhcp_delay_ms=0)
    msg = b.datagrams_to_send(0)[0][0]
    assert msg[28:30] == b"\x00\x45" and msg.endswith(opt(49, dns.encode_name("Example.Test")))
    ha2 = HA[:15] + b"\x02"
    idinf = opt(69, opt(49, dns.encode_name("example.test")) + opt(72, ha2))
    b.receive(reply(xid(msg), idinf, udinf(HAA)), SERVER, 547, 1)
    assert b.result["ha"] == [ha2] and b.result["container"] == 69


def test_no_dhcpv6_server_falls_back_to_dns_after_budget():
    b = Bootstrap(CFG, MAC, True, [SERVER], Rand(b"\0\0\0" + b"\x80\x00" * 3), 0, dhcp_delay_ms=0)
    sent = run(b, lambda d, dst, p: (srv_answer(qid(d)), 53) if p == 53 else None)
    assert [s for s in sent if s[1] == 547] == [(0, 547, 546), (1000, 547, 546), (3000, 547, 546)]
    assert [s for s in sent if s[1] == 53] == [(4000, 53, 0)]
    r = b.result
    assert r["method"] == "dns" and r["ha"] == [V6] and r["ha_ipv4"] == [V4]
    assert r["home_prefix"] == (unhex("20010db800aa00000000000000000000"), 64)  # filled from cfg
    assert "dhcpv6: no answer within 4000 ms" in b.notes


def test_ipv4_only_link_skips_dhcpv6_and_uses_dns():
    b = Bootstrap(CFG, MAC, False, [SERVER], Rand(), 0)
    sent = run(b, lambda d, dst, p: (srv_answer(qid(d)), 53) if p == 53 else None)
    assert sent == [(0, 53, 0)] and b.result["method"] == "dns"
    assert b.notes == ["dhcpv6: no IPv6 on this link"]


def test_dhcpv6_with_only_the_ha_name_is_resolved_by_dns():
    haf = opt(73, dns.encode_name("ha.example.test"))

    def respond(d, dst, p):
        if p == 547:
            return reply(xid(d), udinf(HNP, haf)), 547
        name, off = dns.read_name(d, 12)
        qt = struct.unpack_from(">H", d, off)[0]
        return answer(qid(d), name, qt, V6 if qt == dns.AAAA else V4), 53

    b = Bootstrap(CFG, MAC, True, [SERVER], Rand(), 0, dhcp_delay_ms=0)
    run(b, respond)
    r = b.result
    assert r["method"] == "dhcpv6" and r["ha"] == [V6] and r["ha_ipv4"] == [V4]
    assert r["ha_fqdn"] == "ha.example.test" and r["home_prefix"] == (PFX, 64)


def test_everything_fails_then_static_or_error():
    cfg = dict(CFG, ha="2001:db8:aa::1", ha_ipv4="198.18.1.2")
    b = Bootstrap(cfg, MAC, True, [SERVER], Rand(), 0, dhcp_delay_ms=0)
    run(b, lambda d, dst, p: None)
    assert b.result["method"] == "static" and b.result["ha"] == [HA] and b.result["ha_ipv4"] == [unhex("c6120102")]
    b = Bootstrap(CFG, MAC, True, [], Rand(), 0, dhcp_delay_ms=0)
    run(b, lambda d, dst, p: None)
    assert b.result is None and b.done and b.get_timer() is None
    assert b.error.startswith("no home agent found") and "no DNS server" in b.error and "no 'ha'" in b.error


def test_order_is_the_configured_one_and_bad_entries_are_named():
    cfg = dict(CFG, bootstrap=["static", "dhcpv6"], ha="2001:db8:aa::1")
    b = Bootstrap(cfg, MAC, True, [SERVER], Rand(), 0)
    assert b.done and b.result["method"] == "static" and b.datagrams_to_send(0) == []
    b = Bootstrap(dict(CFG, bootstrap=["carrier-pigeon", "static"], ha="2001:db8::zz"), MAC, True, [], Rand(), 0)
    assert b.result is None
    assert "carrier-pigeon: unknown method" in b.error and "config field 'ha'" in b.error


def test_static_info_names_bad_fields():
    for cfg, field in [({"ha_ipv4": "1.2.3"}, "ha_ipv4"), ({"home_prefix": "2001:db8::"}, "home_prefix"),
                       ({"home_prefix": "2001:db8::/129"}, "home_prefix")]:
        try:
            static_info(cfg)
        except ValueError as e:
            assert field in str(e)
        else:
            assert False, cfg


def test_datagrams_from_wrong_ports_are_ignored():
    b = Bootstrap(CFG, MAC, True, [SERVER], Rand(), 0, dhcp_delay_ms=0)
    d = b.datagrams_to_send(0)[0][0]
    b.receive(reply(xid(d), udinf(HAA)), SERVER, 5353, 1)
    assert not b.done and b.ignored == 1
    b.receive(reply(xid(d), udinf(HAA)), SERVER, 547, 2)
    assert b.done and b.result["ha"] == [HA]
    b.receive(reply(xid(d), udinf(HAA)), SERVER, 547, 3)  # after the end: counted, nothing else
    assert b.ignored == 2 and b.result["ha"] == [HA]


def test_peer_addresses_in_every_port_shape():
    from roam6.node.boot import _peer
    # lwIP ports (ESP32, Pico W) and CPython: tuples of text; the unix port: raw sockaddr bytes
    assert _peer(("192.0.2.1", 53)) == (unhex("c0000201"), 53)
    assert _peer(("fe80::1%wlan0", 547, 0, 2)) == (unhex("fe800000000000000000000000000001"), 547)
    sin = struct.pack("H", 2) + struct.pack(">H", 53) + unhex("c0000201") + bytes(8)
    assert _peer(sin) == (unhex("c0000201"), 53)
    sin6 = struct.pack("H", 10) + struct.pack(">H", 547) + bytes(4) + HA + struct.pack("I", 3)
    assert _peer(sin6) == (HA, 547)


def test_link_has_ip6_wants_more_than_a_link_local():
    from roam6.bootstrap.sequence import link_has_ip6
    ll = ("addr", 6, unhex("fe800000000000000000000000000001"), 64, True, 0x80)
    v4 = ("addr", 4, unhex("c0000232"), 24, True, 0x80)
    glob = ("addr", 6, unhex("20010db800a100000000000000000050"), 64, True, 0)
    assert not link_has_ip6([("link", True), ll, v4])  # apB: IPv4 only
    assert link_has_ip6([("link", True), ll, glob])
    assert link_has_ip6([ll, ("router", 6, unhex("fe800000000000000000000000000001"))])
    assert not link_has_ip6([ll, glob], ["udp4"])  # esp32 profile: no IPv6 at all
