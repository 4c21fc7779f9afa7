"""The ro scenario's capture analysis (hil/roam6_hil/scenarios/ro.py `paths`/`classify`) on pcaps
written here from codec-built packets: which MN<->CN packets went direct, plain, or through the
HA tunnel, per time window."""
import struct

from roam6_codec import consts as C
from roam6_codec import mh as M
from roam6.wire.addr import ip6_from_text
from roam6.wire.ipv6 import build_ipv6
from roam6_codec.udp import build_udp
from roam6_hil.scenarios.ro import paths

CN = ip6_from_text("2001:db8:f3::2")
HOA = ip6_from_text("2001:db8:aa::100")
COA = ip6_from_text("2001:db8:a1::50")
HA = ip6_from_text("2001:db8:f1::2")
OTHER = ip6_from_text("2001:db8:f3::99")


def write_pcap(path, frames, linktype=101):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for ts, data in frames:
            f.write(struct.pack("<IIII", int(ts), int((ts % 1) * 1e6), len(data), len(data)))
            f.write(data)


def udp(src, dst):
    return build_udp(9000, 9002, b"R6PD" + bytes(12), src=src, dst=dst)


def test_paths_per_window(tmp_path):
    direct_out = build_ipv6(CN, COA, C.NH_UDP, udp(CN, HOA), rh2=HOA)
    direct_back = build_ipv6(COA, CN, C.NH_UDP, udp(HOA, CN), hao=HOA)
    plain = build_ipv6(CN, HOA, C.NH_UDP, udp(CN, HOA))
    tunnel = build_ipv6(HA, COA, C.NH_IPV6, plain)
    coti = build_ipv6(COA, CN, C.NH_MH, M.CareofTestInit(b"\1" * 8).encode(src=COA, dst=CN))
    hoti_tun = build_ipv6(COA, HA, C.NH_IPV6,
                          build_ipv6(HOA, CN, C.NH_MH, M.HomeTestInit(b"\2" * 8).encode(src=HOA, dst=CN)))
    unrelated = build_ipv6(OTHER, HOA, C.NH_UDP, udp(OTHER, HOA))
    p = str(tmp_path / "x.pcap")
    write_pcap(p, [(10.1, plain), (10.2, tunnel), (10.3, unrelated), (20.1, coti), (20.2, hoti_tun),
                   (20.3, direct_out), (20.4, direct_back), (20.5, direct_back), (30.0, plain)])
    w = paths(p, CN, HOA, {"a": (10, 11), "b": (20, 21), "empty": (40, 41)}, coas=(COA,))
    assert (w["a"]["plain_udp"], w["a"]["tunnel_udp"], w["a"]["direct_udp"]) == (1, 1, 0)
    assert w["a"]["coa_seen"] == [] and w["a"]["mh"] == {}
    assert (w["b"]["plain_udp"], w["b"]["tunnel_udp"], w["b"]["direct_udp"]) == (0, 0, 3)
    assert w["b"]["mh"] == {"CoTI": 1, "HoTI": 1}
    # without the CoA list, a CoTI (no HAO, no RH2) is not recognisably MN<->CN
    assert paths(p, CN, HOA, {"b": (20, 21)})["b"]["mh"] == {"HoTI": 1}
    assert w["b"]["coa_seen"] == ["2001:db8:a1::50"]
    assert w["empty"]["direct_udp"] == 0


def test_paths_on_ethernet_and_missing_file(tmp_path):
    eth = b"\x02" * 12 + b"\x86\xdd"
    p = str(tmp_path / "e.pcap")
    write_pcap(p, [(5.0, eth + build_ipv6(COA, CN, C.NH_UDP, udp(HOA, CN), hao=HOA))], linktype=1)
    assert paths(p, CN, HOA, {"w": (0, 10)})["w"]["direct_udp"] == 1
    assert paths(str(tmp_path / "none.pcap"), CN, HOA, {"w": (0, 10)})["w"]["direct_udp"] == 0
