"""The hot path (per-SA BU shapes, BA templates) gives byte-identical answers to the codec path,
for accepted and rejected BUs, and falls back to the codec for anything that does not match."""
from roam6_codec import consts as C

from ha_helpers import (HOA, HOA2, KEY2, NAI2, SPI2, KEY, NAI, NAT_SRC, SPI, T0, HA, V4MAPPED, V4COA, a4, build_bu,
                        bu4, make_cache, ntp_timestamp, parse_ba)

MAC4 = V4MAPPED + V4COA
S = 1000          # ms in a second (the cache's clocks count ms)


def scenario():
    """(packet, source, now) for a session with moves, refreshes, replays, bad keys, dereg."""
    s = []
    for i in range(1, 6):
        s.append((bu4(i, now=T0 + i * S), NAT_SRC if i < 3 else ("udp4", "198.18.13.2", 999), T0 + i * S))
    s.append((bu4(3, now=T0 + 6 * S), NAT_SRC, T0 + 6 * S))                      # 135
    s.append((bu4(9, now=T0 - 20 * S), NAT_SRC, T0 + 7 * S))                     # 144
    s.append((bu4(10, now=T0 + 8 * S, v4coa=a4("192.0.2.55")), NAT_SRC, T0 + 8 * S))   # new CoA, same shape
    s.append((build_bu(KEY, SPI, NAI, HOA, HA, 11, 150, "udp4", v4coa=V4COA,
                       timestamp=ntp_timestamp(T0 + 9 * S), mac_key=bytes(16)), NAT_SRC, T0 + 9 * S))  # 146
    s.append((bu4(12, now=T0 + 10 * S, ts=False), NAT_SRC, T0 + 10 * S))         # another shape
    s.append((bu4(13, now=T0 + 11 * S, lifetime=2), NAT_SRC, T0 + 11 * S))
    s.append((bu4(14, now=T0 + 12 * S, flags=C.BU_A | C.BU_F), NAT_SRC, T0 + 12 * S))   # 139 (flags differ)
    s.append((bu4(15, now=T0 + 13 * S, lifetime=0), NAT_SRC, T0 + 13 * S))       # dereg
    s.append((bu4(16, now=T0 + 14 * S, lifetime=0), NAT_SRC, T0 + 14 * S))       # 133
    # a second MN with a NAI of the same length: its first BU already matches the learnt layout
    s.append((build_bu(KEY2, SPI2, NAI2, HOA2, HA, 1, 150, "udp4", v4coa=a4("192.0.2.9"),
                       timestamp=ntp_timestamp(T0 + 15 * S, 0x1234)), ("udp4", "198.18.12.2", 7), T0 + 15 * S))
    return s


def run(fast):
    c = make_cache(fast=fast)
    outs = []
    for pkt, src, now in scenario():
        c.receive(pkt, src, now)
        outs.append(c.datagrams_to_send(now))
        c.events()
    return c, outs


def test_fast_and_codec_paths_agree_byte_for_byte():
    cf, fast = run(True)
    cs, slow = run(False)
    assert fast == slow
    statuses = [parse_ba(o[0][0])[1].status for o in fast]
    assert statuses == [0, 0, 0, 0, 0, 135, 144, 0, 146, 0, 0, 139, 0, 133, 0]
    assert HOA2 in cf.bindings and HOA2 in cs.bindings
    assert cf._shapes and not cs._shapes          # the fast run really used learnt shapes
    assert cf._ba_tpl and not cs._ba_tpl


def test_shape_is_only_learnt_from_authenticated_bus():
    c = make_cache()
    bad = build_bu(KEY, SPI, NAI, HOA, HA, 1, 150, "udp4", v4coa=V4COA, mac_key=bytes(16))
    c.receive(bad, NAT_SRC, T0)
    assert c._shapes == {}


def test_shape_hit_still_checks_mac_and_checksum():
    c = make_cache()
    c.receive(bu4(1), NAT_SRC, T0)
    assert len(bu4(1)) in c._shapes
    forged = build_bu(KEY, SPI, NAI, HOA, HA, 2, 150, "udp4", v4coa=V4COA,
                      timestamp=ntp_timestamp(T0 + S), mac_key=bytes(16))    # same shape, wrong key
    c.datagrams_to_send(T0)
    c.receive(forged, NAT_SRC, T0 + S)
    (out,) = c.datagrams_to_send(T0 + S)
    assert parse_ba(out[0], mac_coa=MAC4)[1].status == C.BA_AUTH_FAIL
    broken = bytearray(bu4(3, now=T0 + 2 * S))
    broken[45] ^= 1                                   # checksum
    c.receive(bytes(broken), NAT_SRC, T0 + 2 * S)
    assert c.datagrams_to_send(T0 + 2 * S) == []
    assert c.bindings[HOA].seq == 1


def test_mh_checksum_as_a_remainder_equals_checksum6():
    """_mh_checksum (the MH as one number modulo 0xFFFF) gives checksum6's value for any bytes:
    random ones, odd lengths, all zeros, all ones, and sums that fold to 0xFFFF."""
    import random

    from roam6.wire.checksum import checksum6
    c = make_cache()
    rnd = random.Random(18)
    cases = [bytes(n) for n in (0, 1, 2, 8)] + [b"\xff" * n for n in (1, 2, 7, 64)]
    cases += [bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200))) for _ in range(300)]
    for hoa in (HOA, HOA2, bytes(16), b"\xff" * 16):
        for mh in cases:
            assert c._mh_checksum(hoa, mh) == checksum6(HA, hoa, C.NH_MH, mh), (hoa, mh)
            assert c._mh_checksum(hoa, mh, int.from_bytes(mh, "big")) == checksum6(HA, hoa, C.NH_MH, mh)
