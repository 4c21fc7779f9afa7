"""RFC 6275 §9.2 at the HA's binding cache and the CN (roam6_host/mhcheck.py): a Mobility Header
whose Payload Proto is not 59, or whose Header Len is below its type's minimum, is discarded and
answered with an ICMPv6 Parameter Problem (code 0) pointing at the field; an unknown MH type is
discarded and answered with a Binding Error, status 2; both answers rate-limited per source and
globally. The ICMPv6 answers are checked with scapy as an independent decoder."""
import struct

from scapy.layers.inet6 import ICMPv6ParamProblem, IPv6

from roam6.wire.checksum import checksum6
from roam6.wire.ipv6 import build_ipv6, decode_ipv6
from roam6_codec import consts as C
from roam6_codec.mh import BindingError, UnknownMH, decode_mh
from roam6_host.cn.core import Correspondent
from roam6_host.ha.limits import ANSWERS

from ha_helpers import COA6, HA, HOA, KEY, NAI, NAT_SRC, SPI, T0, bu4, build_bu, exchange, make_cache, ntp_timestamp


def _resum(pkt, src, dst, mh_off):
    """The packet with its MH checksum made right again for src -> dst."""
    b = bytearray(pkt)
    b[mh_off + 4:mh_off + 6] = b"\0\0"
    b[mh_off + 4:mh_off + 6] = struct.pack(">H", checksum6(src, dst, 135, bytes(b[mh_off:])))
    return bytes(b)


def _proto58(pkt, src=HOA, off=40):
    b = bytearray(pkt)
    b[off] = 58
    return _resum(b, src, HA, off)


def _param_problem(datagram, pointer, to):
    ip = IPv6(datagram)
    assert ip.src == "2001:db8:aa::1" and ip.dst == to, ip.summary()
    pp = ip[ICMPv6ParamProblem]
    assert pp.code == 0 and pp.ptr == pointer, (pp.code, pp.ptr)
    # scapy recomputes the checksum when the field is deleted: the HA's must be the same
    want = IPv6(bytes(ip))
    del want[ICMPv6ParamProblem].cksum
    assert IPv6(bytes(want))[ICMPv6ParamProblem].cksum == pp.cksum
    return pp


def test_payload_proto_not_59_is_discarded_with_parameter_problem_over_the_udp_tunnel():
    c = make_cache()
    bad = _proto58(bu4(1))
    out = exchange(c, bad, NAT_SRC, T0)
    assert not c.bindings, "a BU with Payload Proto 58 must not bind"
    [(datagram, dest)] = out
    assert dest == NAT_SRC                       # back over the tunnel it came by: the inner packet
    pp = _param_problem(datagram, 40, "2001:db8:aa::100")
    assert bytes(pp.payload)[:len(bad)] == bad   # the invoking packet, whole (it fits in 1280)
    ev = c.events()[-1]
    assert ev.kind == "bu_dropped" and "Payload Proto 58" in ev.reason


def test_header_len_below_the_minimum_gets_parameter_problem_pointing_at_header_len():
    c = make_cache()
    mh = bytearray((59, 0, 5, 0, 0, 0, 0, 0))        # a BU of Header Len 0 (its minimum is 1)
    pkt = _resum(build_ipv6(HOA, HA, C.NH_MH, bytes(mh)), HOA, HA, 40)
    [(datagram, dest)] = exchange(c, pkt, NAT_SRC, T0)
    _param_problem(datagram, 41, "2001:db8:aa::100")
    assert not c.bindings


def test_ip6_parameter_problem_goes_to_the_source_address_counting_the_extension_headers():
    c = make_cache()
    bu = build_bu(KEY, SPI, NAI, HOA, HA, 1, 150, "ip6", coa=COA6, timestamp=ntp_timestamp(T0, 1))
    off = decode_ipv6(bu).payload_offset               # 40 + the Destination Options header (24)
    assert off == 64
    [(datagram, dest)] = exchange(c, _proto58(bu, off=off), ("ip6", "2001:db8:a1::100", 0), T0)
    assert dest == ("ip6", "2001:db8:a1::100", 0)
    _param_problem(datagram, off, "2001:db8:a1::100")


def test_unknown_mh_type_gets_binding_error_2():
    c = make_cache()
    mh = UnknownMH(200, bytes(10)).encode(src=HOA, dst=HA)
    [(datagram, dest)] = exchange(c, build_ipv6(HOA, HA, C.NH_MH, mh), NAT_SRC, T0)
    p = decode_ipv6(datagram)
    be = decode_mh(bytes(p.payload))
    assert isinstance(be, BindingError) and be.status == C.BE_UNKNOWN_MH_TYPE
    assert p.src == HA and p.dst == HOA and checksum6(HA, HOA, 135, be.raw) == 0
    assert dest == NAT_SRC


def test_a_valid_bu_is_still_accepted_and_a_known_non_bu_type_gets_nothing():
    c = make_cache()
    assert len(exchange(c, bu4(1), NAT_SRC, T0)) == 1 and HOA in c.bindings
    brr = bytes((59, 0, 0, 0, 0, 0, 0, 0))             # BRR (type 0): known, not for the HA
    assert exchange(c, _resum(build_ipv6(HOA, HA, C.NH_MH, brr), HOA, HA, 40), NAT_SRC, T0) == []


def test_answers_are_limited_per_source_and_globally_even_with_rotating_ports():
    c = make_cache()
    mh = UnknownMH(200, bytes(10)).encode(src=HOA, dst=HA)
    pkt = build_ipv6(HOA, HA, C.NH_MH, mh)
    same = sum(len(exchange(c, pkt, NAT_SRC, T0 + i)) for i in range(50))
    assert same == 1                              # one source: 1 per second
    c = make_cache()
    n = 20000                                     # 20,000 packets in 2 s, every one from a new port
    answers = sum(len(exchange(c, pkt, ("udp4", "198.18.12.%d" % (i % 250), 1024 + i), T0 + i // 10))
                  for i in range(n))
    _per_rate, _per_burst, g_rate, g_burst = ANSWERS
    assert answers <= g_burst + g_rate * 2 + 1, answers
    assert answers >= g_rate                      # the budget is used, not zero


def test_unbound_data_binding_errors_share_the_global_budget():
    c = make_cache()
    n = 0
    for i in range(5000):                          # data from a HoA with no binding, rotating ports
        c.unbound_data(HOA, ("udp4", "198.18.12.2", 1024 + i), T0 + i // 5)
        n += len(c.datagrams_to_send(T0))
    _per_rate, _per_burst, g_rate, g_burst = ANSWERS
    assert n <= g_burst + g_rate * 1 + 1, n       # was ~1 per packet once the table reset


# ---- the CN -------------------------------------------------------------------------------
CN = bytes.fromhex("20010db8000300000000000000000300")
MN = bytes.fromhex("20010db8000200000000000000000200")


def _cn_out(cn, pkt, now=0):
    cn.receive(pkt, now)
    return [p for p, _dst in cn.datagrams_to_send(now)]


def test_cn_payload_proto_and_header_len_get_parameter_problem():
    cn = Correspondent(CN, kcn=bytes(20))
    hoti = bytearray((59, 1, 1, 0, 0, 0) + (0,) * 10)
    hoti[0] = 6
    pkt = _resum(build_ipv6(MN, CN, C.NH_MH, bytes(hoti)), MN, CN, 40)
    [out] = _cn_out(cn, pkt)
    pp = IPv6(out)[ICMPv6ParamProblem]
    assert IPv6(out).dst == "2001:db8:2::200" and pp.code == 0 and pp.ptr == 40
    cn = Correspondent(CN, kcn=bytes(20))
    hot = (59, 1, 3, 0, 0, 0) + (0,) * 10        # HoT with Header Len 1 (its minimum is 2)
    [out] = _cn_out(cn, _resum(build_ipv6(MN, CN, C.NH_MH, bytes(hot)), MN, CN, 40))
    assert IPv6(out)[ICMPv6ParamProblem].ptr == 41
    assert cn.stats["hot"] == 0


def test_cn_error_answers_are_rate_limited():
    cn = Correspondent(CN, kcn=bytes(20))
    bad = bytearray((6, 1, 1, 0, 0, 0) + (0,) * 10)
    n = 0
    for i in range(3000):
        src = MN[:14] + i.to_bytes(2, "big")
        n += len(_cn_out(cn, _resum(build_ipv6(src, CN, C.NH_MH, bytes(bad)), src, CN, 40), i))
    assert n <= 100 + 100 * 3 + 1, n
