"""Property tests (hypothesis): random valid messages round-trip; random and mutated bytes only
ever raise DecodeError."""
from hypothesis import given, settings, strategies as st, HealthCheck

from roam6_codec import mh, mhopts, icmp6, nd
from roam6_codec import jsonform as wj
from roam6.wire.errors import DecodeError
from roam6.wire.ipv6 import decode_ipv6, build_ipv6

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
a16 = st.binary(min_size=16, max_size=16)
a4 = st.binary(min_size=4, max_size=4)
small = st.binary(max_size=24)

OPTS = st.one_of(
    st.builds(mhopts.BindingRefreshAdvice, u16),
    st.builds(mhopts.AlternateCoA, a16),
    st.builds(mhopts.NonceIndices, u16, u16),
    st.builds(mhopts.MobileNetworkPrefix, u8, a16, u8),
    st.builds(mhopts.MNIdentifier, u8, small),
    st.builds(mhopts.ReplayProtection, st.integers(0, 2 ** 64 - 1)),
    st.builds(mhopts.DNSUpdate, u8, u8, small),
    st.builds(mhopts.ExperimentalOption, small),
    st.builds(mhopts.VendorSpecific, u32, u8, small),
    st.builds(mhopts.RestartCounter, u32),
    st.builds(mhopts.IPv4HomeAddress, st.integers(0, 63), st.integers(0, 1), a4, st.integers(0, 0x1FF)),
    st.builds(mhopts.IPv4AddressAck, u8, st.integers(0, 63), a4, st.integers(0, 3)),
    st.builds(mhopts.NATDetection, st.booleans(), u32, st.integers(0, 0x7FFF)),
    st.builds(mhopts.IPv4CareofAddress, a4, u16),
    st.builds(mhopts.UnknownOption, st.integers(33, 255), small),
)
AUTH = st.one_of(st.none(), st.builds(mhopts.BindingAuthData, st.binary(min_size=12, max_size=12)),
                 st.builds(mhopts.MobilityAuth, u8, u32, st.binary(min_size=12, max_size=12)))
opt_lists = st.builds(lambda l, a: l + ([a] if a else []), st.lists(OPTS, max_size=5), AUTH)

MSGS = st.one_of(
    st.builds(mh.BindingRefreshRequest, opt_lists, u16),
    st.builds(mh.HomeTestInit, st.binary(min_size=8, max_size=8), opt_lists),
    st.builds(mh.CareofTestInit, st.binary(min_size=8, max_size=8), opt_lists),
    st.builds(mh.HomeTest, u16, st.binary(min_size=8, max_size=8), st.binary(min_size=8, max_size=8), opt_lists),
    st.builds(mh.CareofTest, u16, st.binary(min_size=8, max_size=8), st.binary(min_size=8, max_size=8), opt_lists),
    st.builds(mh.BindingUpdate, u16, u16, u16, opt_lists),
    st.builds(mh.BindingAck, u8, u8, u16, u16, opt_lists),
    st.builds(mh.BindingError, u8, a16, opt_lists, u8),
    st.builds(mh.ExperimentalMH, st.binary(max_size=40)),
    st.builds(mh.HomeAgentSwitch, st.lists(a16, max_size=3), opt_lists, u8),
    st.builds(mh.Heartbeat, u8, u32, opt_lists, u8),
    st.builds(mh.BindingRevocation, u8, u8, u16, u16, opt_lists),
    st.builds(mh.UnknownMH, st.sampled_from([8, 9, 10, 14, 15, 17, 200, 255]), st.binary(max_size=30)),
)


def _strip(opts):
    return [o for o in opts if not isinstance(o, (mhopts.Pad1, mhopts.PadN))]


@settings(max_examples=400, deadline=None)
@given(MSGS, a16, a16)
def test_valid_messages_round_trip(m, src, dst):
    raw = m.encode(src, dst)
    assert len(raw) % 8 == 0 and raw[1] == len(raw) // 8 - 1
    d = mh.decode_mh(raw)
    assert type(d) is type(m) and mh.checksum_ok(raw, src, dst)
    assert d.encode(src, dst) == raw
    if m.has_options:
        in_order = [o for o in m.options if not mhopts._last(o)] + [o for o in m.options if mhopts._last(o)]
        assert _strip(d.options) == in_order
        last = [o for o in d.options if mhopts._last(o)]
        if last:
            assert d.options[-1] is last[-1]  # authentication option last, nothing after it
    # JSON dicts carry every field
    assert wj.mh_from_dict(wj.to_dict(d), src, dst) == raw
    pkt = build_ipv6(src, dst, 135, raw)
    assert wj.packet_from_dict(wj.packet_to_dict(pkt)) == pkt


def _only_decode_error(fn, b):
    try:
        fn(b)
    except DecodeError as e:
        assert 0 <= e.offset <= len(b) and e.reason


DECODERS = (mh.decode_mh, icmp6.decode_icmp6, decode_ipv6, wj.packet_to_dict)


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_only_raise_decode_error(b):
    for fn in DECODERS:
        _only_decode_error(fn, b)


@settings(max_examples=1000, deadline=None)
@given(st.binary(min_size=6, max_size=200))
def test_random_mh_bodies_with_plausible_header(b):
    """Random content behind a consistent Header Len: exercises the option parser."""
    body = bytearray(b + bytes(-len(b) % 8))
    body[1] = len(body) // 8 - 1
    body[2] %= 18
    _only_decode_error(mh.decode_mh, bytes(body))
    pkt = build_ipv6(bytes(16), bytes(16), 135, bytes(body))
    _only_decode_error(wj.packet_to_dict, pkt)


MUTATIONS = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 400)),
    st.tuples(st.just("set"), st.integers(0, 400), u8),
    st.tuples(st.just("extend"), st.binary(min_size=1, max_size=16)),
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MSGS, st.lists(MUTATIONS, min_size=1, max_size=4), st.booleans())
def test_mutated_messages_only_raise_decode_error(m, muts, with_hao):
    raw = bytearray(m.encode(bytes(16), bytes(16)))
    pkt = bytearray(build_ipv6(bytes(16), bytes(16), 135, bytes(raw), hao=bytes(16) if with_hao else None))
    for buf in (raw, pkt):
        for kind, *args in muts:
            if kind == "truncate":
                del buf[args[0] % (len(buf) + 1):]
            elif kind == "set" and buf:
                buf[args[0] % len(buf)] = args[1]  # hits Header Len, option lengths, ext lengths...
            elif kind == "extend":
                buf += args[0]
        for fn in DECODERS:
            _only_decode_error(fn, bytes(buf))


ND_OPTS = st.one_of(
    st.builds(nd.PrefixInformation, u8, u8, u32, u32, a16, u32),
    st.builds(nd.AdvInterval, u32, u16), st.builds(nd.HAInformation, u16, u16, u16),
    st.builds(nd.MTUOption, u32, u16), st.builds(nd.LinkLayerAddress, st.sampled_from([1, 2]),
                                                 st.binary(min_size=6, max_size=6)),
)
ICMPS = st.one_of(
    st.builds(icmp6.EchoRequest, u16, u16, small), st.builds(icmp6.EchoReply, u16, u16, small),
    st.builds(icmp6.DHAADRequest, u16, u16), st.builds(icmp6.DHAADReply, u16, st.lists(a16, max_size=3), u16),
    st.builds(icmp6.MobilePrefixSolicitation, u16, st.lists(ND_OPTS, max_size=2), u16),
    st.builds(icmp6.MobilePrefixAdvertisement, u16, u16, st.lists(ND_OPTS, max_size=3)),
    st.builds(nd.RouterAdvertisement, u8, u8, u16, u32, u32, st.lists(ND_OPTS, max_size=4)),
)


@settings(max_examples=300, deadline=None)
@given(ICMPS, a16, a16)
def test_icmp6_round_trip(m, src, dst):
    raw = m.encode(src, dst)
    d = icmp6.decode_icmp6(raw)
    assert d == m and icmp6.checksum_ok(raw, src, dst) and d.encode(src, dst) == raw
    assert wj.from_dict(wj.to_dict(d)) == m


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", b"\xa1\xb2\xc3\xd4\x00\x02\x00\x04",
                        b"\x0a\x0d\x0d\x0a", b""]), st.binary(max_size=200))
def test_pcap_reader_random_files_only_pcap_error(tmp_path_factory, magic, rest):
    from roam6_host import pcap
    path = tmp_path_factory.mktemp("p") / "x.pcap"
    path.write_bytes(magic + rest)
    try:
        for fr in pcap.read_frames(str(path)):
            off, v = pcap.ip_packet(fr.linktype, fr.data)
            if off is not None:
                try:
                    wj.packet_to_dict(fr.data[off:])
                except DecodeError:
                    pass
    except pcap.PcapError as e:
        assert str(e)
