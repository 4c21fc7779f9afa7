"""to_dict/from_dict and whole-packet dicts: every field survives, bytes come back exactly."""
from support import raises, unhex
from roam6_codec import jsonform as wj, mh, mhopts, icmp6, nd, udp, ipv4
from roam6.wire.addr import ip6_from_text as A
import test_mh as vec

HOA, CN = A("2001:db8:1::100"), A("2001:db8:3::300")


def _messages():
    return [
        mh.BindingRefreshRequest(),
        mh.HomeTestInit(b"12345678"), mh.CareofTest(8, b"abcdefgh", b"QWERTYUI"),
        mh.BindingUpdate(9, mh.BU_A | mh.BU_H | 0x0001, 10,
                         [mhopts.MNIdentifier(1, b"mn@example.test"), mhopts.MNIdentifier(2, b"\x00\x01"),
                          mhopts.IPv4HomeAddress(24, 1, b"\x0a\0\0\x01"), mhopts.ReplayProtection(2 ** 64 - 1),
                          mhopts.MobilityAuth(1, 4096)]),
        mh.BindingAck(0, mh.BA_K, 9, 10, [mhopts.NATDetection(True, 110), mhopts.IPv4AddressAck(0, 32, b"\1\2\3\4"),
                                          mhopts.DNSUpdate(0, 0x80, b"x"), mhopts.UnknownOption(77, b"zz")]),
        mh.BindingError(2, HOA),
        mh.ExperimentalMH(b"\x01\x02"), mh.UnknownMH(200, b"\x00" * 10),
        mh.HomeAgentSwitch([HOA], [mhopts.BindingRefreshAdvice(4)]),
        mh.Heartbeat(mh.HB_U | mh.HB_R, 3, [mhopts.RestartCounter(1)]),
        mh.BindingRevocation(2, 128, 5, mh.BR_P | mh.BR_G, [mhopts.VendorSpecific(1, 2, b"v"),
                                                           mhopts.ExperimentalOption(b"e")]),
    ]


def test_messages_round_trip_through_dicts():
    for m in _messages():
        d = wj.to_dict(m)
        back = wj.from_dict(d)
        assert back == m, (d, back, m)
        raw = m.encode(HOA, CN, mac=lambda pre: bytes(12))
        dec = mh.decode_mh(raw)
        d2 = wj.to_dict(dec)
        assert d2["header_len"] == raw[1] and d2["auto_pad"] is False
        assert wj.from_dict(d2).encode(HOA, CN) == raw


def test_readable_fields():
    d = wj.to_dict(_messages()[3])
    assert d["type"] == "BindingUpdate" and d["flags"] == 0xC001  # unnamed bit set: the raw word
    assert d["options"][0] == {"type": "MNIdentifier", "subtype": 1, "identifier_text": "mn@example.test"}
    assert d["options"][1]["identifier"] == "0001"
    assert d["options"][2]["address"] == "10.0.0.1" and d["options"][2]["prefix_len"] == 24
    assert d["options"][4]["authentication_data"] is None and d["options"][4]["mobility_spi"] == 4096
    d = wj.to_dict(mh.BindingAck(146, mh.BA_K | mh.BA_R))
    assert d["flags"] == ["K", "R"] and d["status_text"] == "MIPV6-AUTH-FAIL"
    assert wj.to_dict(mh.BindingError(1, HOA))["home_address"] == "2001:db8:1::100"


def test_from_dict_errors_name_the_field():
    e = raises(ValueError, wj.from_dict, {"type": "BindingUpdat"})
    assert "BindingUpdate" in str(e)
    e = raises(ValueError, wj.from_dict, {"type": "BindingUpdate", "seq": "7"})
    assert "seq" in str(e)
    e = raises(ValueError, wj.from_dict, {"type": "BindingUpdate", "flags": ["A", "Z"]})
    assert "Z" in str(e)
    e = raises(ValueError, wj.from_dict, {"type": "BindingError", "home_address": "2001:db8::zz"})
    assert "IPv6" in str(e)
    e = raises(ValueError, wj.from_dict, {"type": "HomeTestInit", "home_init_cookie": "xyz"})
    assert "home_init_cookie" in str(e)
    e = raises(ValueError, wj.from_dict, {"type": "HomeTestInit", "cookie": "00"})  # a field it lacks
    assert "'cookie'" in str(e) and "home_init_cookie" in str(e)


def test_icmp6_and_nd_dicts():
    ra = nd.RouterAdvertisement(64, nd.RA_H, 1800, 0, 0,
                                [nd.PrefixInformation(64, 0xE0, 1, 2, HOA), nd.HAInformation(5, 60),
                                 nd.LinkLayerAddress(1, b"\2\0\0\0\0\1")])
    d = wj.to_dict(ra)
    assert d["flags"] == ["H"] and d["options"][0]["flags"] == ["L", "A", "R"]
    assert wj.from_dict(d) == ra
    rep = icmp6.DHAADReply(3, [HOA, CN])
    assert wj.from_dict(wj.to_dict(rep)) == rep


def test_packets_round_trip_exactly():
    for s in (vec.S1, vec.S2, vec.S3, vec.S4, vec.S5):
        b = unhex(s)
        d = wj.packet_to_dict(b)
        assert d["ipv6"]["src"] and "mh" in d
        assert wj.packet_from_dict(d) == b
    assert wj.packet_to_dict(unhex(vec.S2))["mh"]["checksum_ok"] is False
    assert wj.packet_to_dict(unhex(vec.S3))["ipv6"]["hao"] == "2001:db8::cafe"


def test_edited_packet_gets_fresh_checksum_and_hao_shorthand():
    d = wj.packet_to_dict(unhex(vec.S3))
    d["mh"]["seq"] = 1
    b = wj.packet_from_dict(d)
    p = wj.decode_ipv6(b)
    assert mh.checksum_ok(bytes(p.payload), A("2001:db8::cafe"), A("::1"))
    hand = {"ipv6": {"src": "::1", "dst": "::1", "hao": "2001:db8::cafe"},
            "mh": {"type": "BindingUpdate", "flags": ["A", "H", "K"], "lifetime": 42,
                   "options": [{"type": "AlternateCoA", "address": "::"},
                               {"type": "MobileNetworkPrefix", "prefix_len": 64, "prefix": "::"}]}}
    assert wj.packet_from_dict(hand) == unhex(vec.S3)


def test_udp4_encapsulated_packet():
    inner = unhex(vec.S4)
    s4, d4 = b"\xc0\0\2\x64", b"\xc6\x12\1\2"
    pkt = ipv4.build_ipv4(s4, d4, 17, udp.build_udp(40000, 4191, inner, s4, d4))
    d = wj.packet_to_dict(pkt)
    assert d["ipv4"]["src"] == "192.0.2.100" and d["udp"]["dport"] == 4191
    assert d["udp"]["inner"]["mh"]["type"] == "BindingAck"
    assert wj.packet_from_dict(d) == pkt
    bad = bytearray(pkt)
    bad[28 + 41] = 5  # inner MH Header Len
    e = raises(wj.DecodeError, wj.packet_to_dict, bytes(bad))
    assert e.offset == 28 + 41


def test_packet_from_dict_refuses_unknown_keys():
    d = wj.packet_to_dict(unhex(vec.S4))
    d["mhh"] = d.pop("mh")
    e = raises(ValueError, wj.packet_from_dict, d)
    assert "'mhh'" in str(e)
