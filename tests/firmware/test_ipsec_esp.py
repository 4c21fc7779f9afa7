"""roam6.ipsec.esp: ESP (RFC 4303) sealing/opening, padding, ICV, the 64-packet anti-replay window.
The byte layout is checked against scapy's ESP in tests/ipsec/test_esp_scapy.py."""
from support import Rand

from roam6.ipsec.esp import SA

EK, AK = bytes(range(16)), bytes(range(100, 120))


def pair(integ=2):
    ak = AK if integ == 2 else bytes(range(32))
    return SA(0x1234, EK, ak, integ, Rand(b"\x42" * 4096)), SA(0x1234, EK, ak, integ)


def test_layout_padding_and_round_trip_transport_and_tunnel():
    out, inn = pair()
    for n, nh in ((0, 135), (1, 135), (14, 58), (15, 41), (64, 41), (1200, 41)):
        payload = bytes((i * 7) & 255 for i in range(n))
        pkt = out.seal(payload, nh)
        assert pkt[:4] == b"\x00\x00\x12\x34" and int.from_bytes(pkt[4:8], "big") == out.seq
        body = len(pkt) - 8 - 16 - 12
        assert body % 16 == 0 and body >= n + 2 and body - (n + 2) < 16   # minimal padding to 16
        assert inn.open(pkt) == (nh, payload)
    assert inn.opened == 6 and inn.top == 6


def test_sha256_128_icv():
    out, inn = pair(12)
    pkt = out.seal(b"x" * 40, 135)
    assert (len(pkt) - 8 - 16 - 16) % 16 == 0
    assert inn.open(pkt) == (135, b"x" * 40)


def test_replay_window_of_64():
    out, inn = pair()
    pkts = [out.seal(b"p%d" % i, 59) for i in range(100)]
    assert inn.open(pkts[0]) is not None
    assert inn.open(pkts[0]) is None and inn.replayed == 1            # the same packet again
    assert inn.open(pkts[99]) is not None                               # a jump ahead
    assert inn.open(pkts[50]) is not None                               # late, inside the window
    assert inn.open(pkts[50]) is None                                   # ... but only once
    assert inn.open(pkts[35]) is None and inn.replayed == 3             # 100 - 36 = 64: too old
    assert inn.open(pkts[36]) is not None                               # the window's oldest slot
    assert inn.top == 100


def test_bad_icv_wrong_spi_and_garbage_are_dropped_without_moving_the_window():
    out, inn = pair()
    pkt = bytearray(out.seal(b"hello", 135))
    bad = bytearray(pkt)
    bad[30] ^= 1
    assert inn.open(bytes(bad)) is None and inn.bad_icv == 1 and inn.top == 0
    other = bytearray(pkt)
    other[3] ^= 1
    assert inn.open(bytes(other)) is None and inn.bad_spi == 1
    for n in range(len(pkt)):
        assert inn.open(bytes(pkt[:n])) is None
    assert inn.open(b"\x00" * 4) is None
    assert inn.open(bytes(pkt)) == (135, b"hello")


def test_sequence_number_zero_refused_and_sender_stops_at_2_32_minus_1():
    out, inn = pair()
    out.seq = 0xFFFFFFFE
    last = out.seal(b"a", 59)
    assert last is not None and out.seal(b"b", 59) is None    # the SA must be rekeyed
    assert inn.open(last) == (59, b"a")
    z = SA(0x1234, EK, AK, 2, Rand(b"\x01" * 64))
    z.seq = -1
    assert inn.open(z.seal(b"c", 59)) is None and inn.replayed == 1   # seq 0 never valid


def test_key_lengths_checked():
    try:
        SA(1, EK, bytes(16))
    except ValueError:
        return
    raise AssertionError("a 16-byte HMAC-SHA1 key accepted")
