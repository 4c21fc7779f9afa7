from support import raises, unhex
from roam6.wire.addr import ip6_to_text, ip6_from_text, ip4_to_text, ip4_from_text


def test_ip6_compression_rfc5952():
    cases = [
        ("2001:db8::1", "20010db8000000000000000000000001"),
        ("::", "00000000000000000000000000000000"),
        ("::1", "00000000000000000000000000000001"),
        ("1::", "00010000000000000000000000000000"),
        ("2001:db8:0:1:1:1:1:1", "20010db8000000010001000100010001"),  # one zero group: no ::
        ("2001:0:0:1::1", "20010000000000010000000000000001"),  # longest run wins
        ("2001:db8::1:0:0:1", "20010db8000000000001000000000001"),  # first of equal runs
        ("fe80::20d:54ff:fe98:bc93", "fe80000000000000020d54fffe98bc93"),
        ("::ffff:192.0.2.1", "00000000000000000000ffffc0000201"),
    ]
    for text, h in cases:
        b = unhex(h)
        assert ip6_to_text(b) == text, (ip6_to_text(b), text)
        assert ip6_from_text(text) == b


def test_ip6_from_text_long_forms():
    assert ip6_from_text("2001:0DB8:0000:0000:0000:0000:0000:0001") == unhex("20010db8000000000000000000000001")
    assert ip6_from_text("::ffff:1.2.3.4") == unhex("00000000000000000000ffff01020304")
    assert ip6_from_text("64:ff9b::198.18.1.2") == unhex("0064ff9b0000000000000000c6120102")


def test_ip6_from_text_refuses_garbage():
    for bad in ["", "1:2:3", "1::2::3", "12345::", "g::1", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8", ":::"]:
        e = raises(ValueError, ip6_from_text, bad)
        assert "IPv6" in str(e)


def test_ip4():
    assert ip4_to_text(b"\xc6\x12\x01\x02") == "198.18.1.2"
    assert ip4_from_text("198.18.1.2") == b"\xc6\x12\x01\x02"
    for bad in ["1.2.3", "1.2.3.256", "a.b.c.d", "1.2.3.4.5", ""]:
        raises(ValueError, ip4_from_text, bad)
