"""Mutation fuzzing of the host codec (and the firmware's IPv6 decoder it builds on): truncated,
overwritten and extended copies of valid packets only ever raise DecodeError."""
from support import unhex
from roam6_codec import mh, icmp6
from roam6_codec import jsonform as wj
from roam6.wire.ipv6 import decode_ipv6
from roam6.wire.errors import DecodeError
import test_mh as vec
import test_wire_ipv6 as vec6
import test_jsonform as vecj

SEEDS = [unhex(vec.S1), unhex(vec.S3), unhex(vec.S4), unhex(vec.S5), vec6.BU_PKT,
         unhex("6000000000382b4020010db800030000000000000000030020010db8000200000000000000000200"
               "870202010000000020010db80001000000000000000001003b0306005761000000010069010400000000050c"
               "8448ed2faf4ad55158c5b229")]
# every MH type and option kind, as bare MHs and in packets with a HAO
for _m in vecj._messages():
    _raw = _m.encode(vecj.HOA, vecj.CN, mac=lambda pre: bytes(12))
    SEEDS.append(_raw)
    SEEDS.append(wj.build_ipv6(vecj.CN, vecj.CN, 135, _raw, hao=vecj.HOA))


class LCG:
    def __init__(self, seed):
        self.x = seed

    def next(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return self.x % n


def _decoders(b):
    for fn in (decode_ipv6, wj.packet_to_dict, mh.decode_mh, icmp6.decode_icmp6):
        try:
            fn(b)
        except DecodeError as e:
            assert 0 <= e.offset <= len(b)


def test_mutations_only_raise_decode_error():
    r = LCG(7)
    for i in range(600):
        b = bytearray(SEEDS[r.next(len(SEEDS))])
        for _ in range(1 + r.next(3)):
            k = r.next(3)
            if k == 0:
                b = b[:r.next(len(b) + 1)]
            elif k == 1 and b:
                b[r.next(len(b))] = r.next(256)
            else:
                b += bytes(r.next(256) for _ in range(1 + r.next(8)))
        _decoders(bytes(b))
        if len(b) > 40:
            _decoders(bytes(b[40:]))  # the upper layer alone, and as an MH


def test_every_truncation_and_length_byte():
    for seed in SEEDS:
        for n in range(len(seed)):
            _decoders(seed[:n])
        for pos in range(len(seed)):
            for v in (0, 1, 2, 7, 8, 0x7F, 0xFF):
                b = bytearray(seed)
                b[pos] = v
                _decoders(bytes(b))
