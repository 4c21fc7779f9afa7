"""`roam6 mh decode|encode` run as a real command."""
import json
import os
import subprocess
import sys

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "tcpdump")
BU = ("6000000000383c4020010db800020000000000000000020020010db8000300000000000000000300"
      "870201020000c91020010db80001000000000000000001003b030500e269000180000069040400050006050c"
      "1f546d90e3044a169eec9b03")
BA_MH = "3b0306005761000000010069010400000000050c8448ed2faf4ad55158c5b229"


def roam6(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "roam6_host", "mh", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_decode_argument_every_field():
    r = roam6("decode", BU)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["ipv6"]["src"] == "2001:db8:2::200" and d["ipv6"]["hao"] == "2001:db8:1::100"
    m = d["mh"]
    assert m["type"] == "BindingUpdate" and m["seq"] == 1 and m["flags"] == ["A"] and m["lifetime"] == 105
    assert m["checksum"] == 0xE269 and m["checksum_ok"] is True
    assert m["options"] == [{"type": "NonceIndices", "home_nonce_index": 5, "careof_nonce_index": 6},
                            {"type": "BindingAuthData", "authenticator": "1f546d90e3044a169eec9b03"}]


def test_decode_stdin_lines_and_mh_mode_with_addresses():
    r = roam6("decode", "--mh", "--src", "2001:db8:3::300", "--dst", "2001:db8:1::100",
              stdin="# a comment\n%s\n\n%s\n" % (BA_MH, BA_MH.upper()))
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 0 and len(lines) == 2
    assert lines[0]["type"] == "BindingAck" and lines[0]["checksum_ok"] is True and lines[0]["seq"] == 1


def test_decode_encode_pipe_reproduces_bytes():
    inputs = [BU, "6000000000088740200100db8000000000000000000000001200100db8000000000000000000000002"[:0] +
              "60000000000887402001 0db8000000000000000000000001 20010db8000000000000000000000002 3b00000068fb0000"]
    r = roam6("decode", stdin="\n".join(inputs) + "\n")
    assert r.returncode == 0, r.stdout + r.stderr
    e = roam6("encode", stdin=r.stdout)
    assert e.returncode == 0, e.stdout + e.stderr
    assert e.stdout.split() == ["".join(x.split()).lower() for x in inputs]
    r = roam6("decode", "--mh", BA_MH)
    e = roam6("encode", stdin=r.stdout)
    assert e.stdout.strip() == BA_MH


def test_pcap_decode_encode_round_trip():
    r = roam6("decode", "--pcap", os.path.join(DATA, "ipv6_mobility_1.pcap"))
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) == 16
    e = roam6("encode", stdin=r.stdout)
    assert e.returncode == 0 and len(e.stdout.split()) == 16
    again = roam6("decode", stdin=e.stdout)
    for a, b in zip(lines, again.stdout.splitlines()):
        a, b = json.loads(a), json.loads(b)
        a.pop("frame"), a.pop("time"), a.pop("ip_offset")
        assert a == b


def test_malformed_input_error_line_exit_1_no_traceback():
    r = roam6("decode", BU[:-2], "zz" + BU, BU)
    assert r.returncode == 1 and r.stderr == ""
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[0]["input"] == 1 and lines[0]["offset"] == 4 and "Payload Length" in lines[0]["error"]
    assert lines[1]["input"] == 2 and lines[1]["offset"] == 0 and "not hex" in lines[1]["error"]
    assert lines[2]["mh"]["type"] == "BindingUpdate"
    r = roam6("decode", "--mh", "3b05050000000007c000")
    assert r.returncode == 1 and json.loads(r.stdout)["offset"] == 1


def test_encode_errors_name_the_problem():
    bad = ['{"type": "BindingUpdate", "seq": "x"}', "not json", '{"ipv6": {"src": "::1"}}',
           '{"type": "BindingUpdate", "flags": ["Q"]}', '{"type": "IPv4HomeAddress"}']
    r = roam6("encode", stdin="\n".join(bad) + "\n")
    assert r.returncode == 1 and r.stderr == ""
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["input"] for x in lines] == [1, 2, 3, 4, 5]
    assert "seq" in lines[0]["error"] and "not JSON" in lines[1]["error"] and "dst" in lines[2]["error"]
    assert "Q" in lines[3]["error"] and "Mobility Header" in lines[4]["error"]


def test_encode_hand_written_json_with_auto_padding():
    j = json.dumps({"ipv6": {"src": "2001:db8:2::200", "dst": "2001:db8:1::1", "hao": "2001:db8:1::100"},
                    "mh": {"type": "BindingUpdate", "seq": 7, "flags": ["A", "H"], "lifetime": 150,
                           "options": [{"type": "MNIdentifier", "subtype": 1, "identifier_text": "mn@example.com"},
                                       {"type": "MobilityAuth", "subtype": 1, "mobility_spi": 256,
                                        "authentication_data": "d83b8d94266ac94371f6da76"}]}})
    r = roam6("encode", j)
    assert r.returncode == 0, r.stdout
    out = r.stdout.strip()
    assert out.endswith("3b050500098e0007c0000096080f016d6e406578616d706c652e636f6d09110100000100"
                        "d83b8d94266ac94371f6da76")  # the RFC 4285 vector of docs/PROTOCOL-NOTES.md §10.3
    d = json.loads(roam6("decode", out).stdout)
    assert d["mh"]["checksum_ok"] is True


def test_user_mistakes_are_messages():
    r = roam6("decode", "--src", "nope", "--dst", "::1", "--mh", BA_MH)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--src" in r.stderr
    r = roam6("decode", "--pcap", "/nonexistent.pcap")
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr


def test_examples_decode_verify_and_round_trip():
    path = os.path.join(os.path.dirname(DATA), "..", "..", "examples", "messages.hex")
    with open(path) as f:
        text = f.read()
    r = roam6("decode", stdin=text)
    assert r.returncode == 0, r.stdout
    kinds = []
    for line in r.stdout.splitlines():
        d = json.loads(line)
        up = d.get("mh") or d.get("icmp6") or d["udp"]["inner"]["mh"]
        assert up["checksum_ok"] is True
        kinds.append(up["type"])
    assert kinds.count("BindingUpdate") == 3 and "MobilePrefixAdvertisement" in kinds
    e = roam6("encode", stdin=r.stdout)
    assert e.stdout.split() == [x for x in text.split("\n") if x and not x.startswith("#")]


def test_encode_out_of_range_or_wrong_type_names_the_field_and_where_it_is():
    bad = ['{"type": "BindingUpdate", "seq": 70000, "flags": ["A"], "lifetime": 105}',
           '{"type": "BindingAck", "status": 300}',
           '{"type": "BindingUpdate", "options": [{"type": "NonceIndices", "home_nonce_index": 5},'
           ' {"type": "NonceIndices", "careof_nonce_index": -1}]}',
           '{"ipv6": {"src": "2001:db8:2::200", "dst": "2001:db8:1::1", "hop_limit": 256},'
           ' "mh": {"type": "BindingRefreshRequest"}}',
           '{"ipv6": {"src": "2001:db8:2::200", "dst": "2001:db8:1::1"},'
           ' "mh": {"type": "BindingUpdate", "lifetime": "105"}}',
           '{"type": "HomeTestInit", "home_init_cookie": "0001"}']
    r = roam6("encode", stdin="\n".join(bad) + "\n")
    assert r.returncode == 1 and r.stderr == ""
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == len(bad) and [x["input"] for x in lines] == list(range(1, len(bad) + 1))
    assert lines[0]["error"] == "BindingUpdate: field 'seq': 70000 is out of range 0..65535"
    assert (lines[0]["field"], lines[0]["where"]) == ("seq", "BindingUpdate")
    assert lines[1]["error"] == "BindingAck: field 'status': 300 is out of range 0..255"
    assert lines[2]["error"] == ("BindingUpdate options[1] NonceIndices: field 'careof_nonce_index': "
                                 "-1 is out of range 0..65535")
    assert lines[3]["error"] == "ipv6: field 'hop_limit': 256 is out of range 0..255"
    assert lines[4]["error"] == "mh BindingUpdate: field 'lifetime': want an integer, got '105'"
    assert lines[5]["error"] == "HomeTestInit: field 'home_init_cookie': want 8 bytes, got 2"
    assert not [x for x in lines if "format requires" in x["error"] or "field" not in x]


def test_encode_takes_the_rfc_short_names_as_type():
    full = {"ipv6": {"src": "2001:db8:2::200", "dst": "2001:db8:1::1", "hao": "2001:db8:1::100"},
            "mh": {"type": "BindingUpdate", "seq": 7, "flags": ["A", "H"], "lifetime": 150,
                   "options": [{"type": "NonceIndices", "home_nonce_index": 5, "careof_nonce_index": 6}]}}
    short = json.loads(json.dumps(full))
    short["mh"]["type"] = "BU"
    pairs = [(full, short)]
    for s, cls in (("BRR", "BindingRefreshRequest"), ("HoTI", "HomeTestInit"), ("CoTI", "CareofTestInit"),
                   ("HoT", "HomeTest"), ("CoT", "CareofTest"), ("BA", "BindingAck"), ("BE", "BindingError")):
        pairs.append(({"type": cls, "seq": 1}, {"type": s, "seq": 1}) if cls == "BindingAck" else
                     ({"type": cls}, {"type": s}))
    ra = {"ipv6": {"src": "fe80::1", "dst": "ff02::1", "hop_limit": 255},
          "icmp6": {"type": "RouterAdvertisement", "router_lifetime": 0,
                    "options": [{"type": "PrefixInformation", "prefix_len": 64, "flags": ["L", "A", "R"],
                                 "prefix": "2001:db8:1::1"}]}}
    ra_short = json.loads(json.dumps(ra))
    ra_short["icmp6"]["type"] = "RA"
    ra_short["icmp6"]["options"][0]["type"] = "PIO"
    pairs.append((ra, ra_short))
    r = roam6("encode", stdin="".join(json.dumps(a) + "\n" + json.dumps(b) + "\n" for a, b in pairs))
    assert r.returncode == 0, r.stdout
    out = r.stdout.split()
    assert len(out) == 2 * len(pairs) and out[0::2] == out[1::2]
    # decode still says the class name
    d = json.loads(roam6("decode", out[1]).stdout)
    assert d["mh"]["type"] == "BindingUpdate" and d["mh"]["checksum_ok"] is True


def test_unknown_type_lists_both_forms_and_short_names_are_case_sensitive():
    r = roam6("encode", '{"type": "bu"}', '{"type": "Nope"}', '{"type": 5}', '{"type": ["BU"]}')
    assert r.returncode == 1 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 4
    for i, line in enumerate(lines):
        e = json.loads(line)
        assert e["input"] == i + 1 and e["field"] == "type" and e["error"].startswith("unknown type ")
        for name in ("BindingUpdate", "HomeTestInit", "PrefixInformation", "BU (BindingUpdate)",
                     "HoTI (HomeTestInit)", "CoT (CareofTest)", "BRR (BindingRefreshRequest)"):
            assert name in e["error"], e["error"]


def _mixed_capture(path):
    """A capture as a bench writes it: mobility messages bare and in each of roam6's tunnels (ip6
    = IPv6 in IPv6, udp6 and udp4 = UDP port 4191), among ping, DNS and ARP that carry none."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6, ICMPv6EchoRequest
    from scapy.layers.l2 import ARP, Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap
    mh = bytes.fromhex(BA_MH)
    ba = IPv6(src="2001:db8:aa::1", dst="2001:db8:aa::100", nh=135) / Raw(mh)
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    frames = [eth / ARP(),                                                                       # 1: not IP
              eth / IPv6(src="2001:db8:aa::100", dst="2001:db8:aa::1") / ICMPv6EchoRequest(),   # 2: ping
              eth / IPv6(bytes.fromhex(BU)),                                                     # 3: BU, bare
              eth / IP(src="198.18.1.2", dst="198.18.2.9") / UDP(sport=53, dport=40000) / Raw(b"dns"),  # 4
              eth / IPv6(src="2001:db8:aa::1", dst="2001:db8:f1::5") / ba,                       # 5: ip6 tunnel
              eth / IPv6(src="2001:db8:aa::1", dst="2001:db8:f1::5") / UDP(sport=4191, dport=4191) / ba,  # 6: udp6
              eth / IP(src="198.18.1.2", dst="198.18.2.9") / UDP(sport=4191, dport=4191) / ba,   # 7: udp4
              eth / IPv6(src="2001:db8:aa::1", dst="2001:db8:f1::5") / UDP(sport=9000, dport=9000) / Raw(b"x")]  # 8
    wrpcap(path, frames)


def test_pcap_shows_only_mobility_messages_unless_all(tmp_path):
    path = str(tmp_path / "mixed.pcap")
    _mixed_capture(path)
    r = roam6("decode", "--pcap", path)
    assert r.returncode == 0 and r.stderr == "", r.stdout + r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["frame"] for x in lines] == [3, 5, 6, 7]
    assert lines[0]["mh"]["type"] == "BindingUpdate" and lines[0]["mh"]["mh_type"] == 5
    assert lines[0]["mh"]["lifetime"] == 105 and lines[0]["mh"]["lifetime_s"] == 420
    assert lines[1]["inner"]["mh"]["mh_type"] == 6 and lines[1]["inner"]["mh"]["lifetime_s"] == 4 * 0x69
    assert lines[2]["udp"]["inner"]["mh"]["type"] == "BindingAck"
    assert lines[3]["ipv4"]["src"] == "198.18.1.2" and lines[3]["udp"]["inner"]["mh"]["status_text"] == "accepted"
    keys = list(lines[0]["mh"])                  # each beside its raw field
    assert keys.index("mh_type") == keys.index("type") + 1 and keys.index("lifetime_s") == keys.index("lifetime") + 1
    a = roam6("decode", "--pcap", path, "--all")
    every = [json.loads(x) for x in a.stdout.splitlines()]
    assert a.returncode == 0 and [x["frame"] for x in every] == list(range(1, 9))
    assert every[0]["skipped"] == "ethertype 0x0806" and every[1]["icmp6"]["type"] == "EchoRequest"
    # the added fields go back out on encode: the filtered lines give the captured packets back
    e = roam6("encode", stdin=r.stdout)
    assert e.returncode == 0, e.stdout
    assert e.stdout.split()[0] == BU


def test_pcap_with_no_mobility_message_says_so(tmp_path):
    from scapy.layers.inet6 import IPv6, ICMPv6EchoRequest
    from scapy.utils import wrpcap
    path = str(tmp_path / "ping.pcap")
    wrpcap(path, [IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest()] * 3)
    r = roam6("decode", "--pcap", path)
    assert r.returncode == 0 and r.stdout == ""
    assert "none of the 3 packets in %s carries a Mobility Header (--all prints them all)" % path in r.stderr


def test_encode_refuses_added_fields_that_disagree():
    d = json.loads(roam6("decode", "--mh", BA_MH).stdout)
    assert d["mh_type"] == 6 and d["lifetime_s"] == d["lifetime"] * 4
    r = roam6("encode", json.dumps(dict(d, lifetime_s=600)), json.dumps(dict(d, mh_type=5)), json.dumps(d),
              "--src", "2001:db8:3::300", "--dst", "2001:db8:1::100")
    lines = r.stdout.splitlines()
    assert r.returncode == 1 and "lifetime_s 600 disagrees with lifetime 105" in json.loads(lines[0])["error"]
    assert "mh_type 5 disagrees with type BindingAck (MH type 6)" in json.loads(lines[1])["error"]
    assert lines[2] == BA_MH
