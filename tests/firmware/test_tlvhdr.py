"""node/tlvhdr.py's frame and unframe (RFC 5555 TLV header, docs/PROTOCOL-NOTES.md §4.2) and its
config check, on CPython and on MicroPython (its memoryview copies; the codec's side and the
negotiation: tests/ha/test_tlv.py)."""
from roam6.node import tlvhdr
from roam6.node.config import ConfigError
from support import raises


def test_frame_then_unframe_gives_the_packet_back():
    for size in (20, 40, 63, 64, 65, 300, 1280):
        pkt = bytes([0x45 if size < 40 else 0x60]) + bytes((i * 7) & 0xFF for i in range(1, size))
        buf = bytearray(1300)
        buf[4:4 + size] = pkt
        n = tlvhdr.frame(buf, size)
        assert n == size + 4 and bytes(buf[:4]) == bytes([1, size >> 8, size & 0xFF, 0])
        assert tlvhdr.unframe(buf, n) == size and bytes(buf[:size]) == pkt


def test_bad_frames_are_refused():
    good = bytearray([1, 0, 20, 0, 0x45]) + bytearray(19)
    for bad in (good[:4], bytearray([2]) + good[1:], good + b"!", good[:-1], bytearray([1, 0, 4, 0]) + b"zzzz"):
        assert tlvhdr.unframe(bytearray(bad), len(bad)) == 0


def test_config_check():
    tlvhdr.parse_config({"ipv4_tlv_header": True, "ipv4_hoa": "0.0.0.0"}, ConfigError)
    tlvhdr.parse_config({"ipv4_tlv_header": False}, ConfigError)
    e = raises(ConfigError, tlvhdr.parse_config, {"ipv4_tlv_header": True}, ConfigError)
    assert e.field == "ipv4_tlv_header" and "ipv4_hoa" in str(e)
    e = raises(ConfigError, tlvhdr.parse_config, {"ipv4_tlv_header": 1, "ipv4_hoa": "0.0.0.0"}, ConfigError)
    assert "true or false" in str(e)
