"""tcpdump's own regression captures (tests/data/tcpdump, see its README): the well-formed ones
decode to the values tcpdump printed; the malformed ones are refused with DecodeError only."""
import os
import re
import subprocess
import sys

import pytest

from roam6_codec import mh, icmp6
from roam6.wire.addr import ip6_to_text
from roam6.wire.errors import DecodeError
from roam6_codec import jsonform as wj
from roam6_host import pcap

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "tcpdump")
MALFORMED = sorted(f for f in os.listdir(DATA) if f.endswith(".pcap") and f != "ipv6_mobility_1.pcap")


def _cookie(h):
    return "%s:%s" % (h[:8], h[8:16])


def tcpdump_text(d):
    """Render our decoded MH dict the way tcpdump -v prints a mobility header (the subset these
    captures use), so each field is compared with what tcpdump printed."""
    t = d["type"]
    flags = d.get("flags") or []
    if t == "BindingRefreshRequest":
        s = "BRR"
    elif t in ("HomeTestInit", "CareofTestInit"):
        w = "home" if t[0] == "H" else "careof"
        s = "%s %s Init Cookie=%s" % ("HoTI" if t[0] == "H" else "CoTI", "Home" if t[0] == "H" else "Care-of",
                                     _cookie(d[w + "_init_cookie"]))
    elif t in ("HomeTest", "CareofTest"):
        w = "Home" if t[0] == "H" else "Care-of"
        k = "home_" if t[0] == "H" else "careof_"
        s = "%s nonce id=0x%x %s Init Cookie=%s %s Keygen Token=%s" % (
            "HoT" if t[0] == "H" else "CoT", d[k + "nonce_index"], w, _cookie(d[k + "init_cookie"]), w,
            _cookie(d[k + "keygen_token"]))
    elif t == "BindingUpdate":
        # tcpdump prints " A" then "H", "L", "K" run together (" AHK")
        f = (" A" if "A" in flags else "") + "".join(x for x in "HLK" if x in flags)
        s = "BU seq#=%d%s lifetime=%d" % (d["seq"], f, d["lifetime"] * 4)
    elif t == "BindingAck":
        s = "BA status=%d%s seq#=%d lifetime=%d" % (d["status"], " K" if "K" in flags else "", d["seq"],
                                                    d["lifetime"] * 4)
    elif t == "BindingError":
        s = "BE status=%d homeaddr %s" % (d["status"], d["home_address"])
    else:
        raise AssertionError(t)
    for o in d["options"]:
        ot = o["type"]
        s += {"Pad1": "(pad1)", "PadN": "(padn)", "BindingAuthData": "(auth)"}.get(ot, "")
        if ot == "AlternateCoA":
            s += "(alt-CoA: %s)" % o["address"]
        elif ot == "NonceIndices":
            s += "(ni: ho=0x%04x co=0x%04x)" % (o["home_nonce_index"], o["careof_nonce_index"])
        elif ot == "BindingRefreshAdvice":
            s += "(refresh: %d)" % (o["refresh_interval"] * 4)
    return s


def _expected(name):
    out = []
    with open(os.path.join(DATA, name)) as f:
        for line in f:
            m = re.search(r"IP6 .*?(\S+) > (\S+): mobility: (.*)$", line)
            out.append((m.group(1), m.group(2), m.group(3).strip()))
    return out


def test_well_formed_capture_matches_tcpdump_text():
    frames = list(pcap.read_frames(os.path.join(DATA, "ipv6_mobility_1.pcap")))
    verbose = _expected("ipv6_mobility_1-v.out")
    plain = _expected("ipv6_mobility_1.out")
    assert len(frames) == len(verbose) == len(plain) == 16
    types = set()
    for fr, (src, dst, text), (_, _, short) in zip(frames, verbose, plain):
        off, v = pcap.ip_packet(fr.linktype, fr.data)
        assert v == 6 and fr.linktype == 229
        d = wj.packet_to_dict(fr.data[off:])
        assert d["ipv6"]["src"] == src and d["ipv6"]["dst"] == dst
        assert tcpdump_text(d["mh"]) == text
        assert text.startswith(short)
        types.add(d["mh"]["type"])
        # decoding and re-encoding gives the captured bytes back
        assert wj.packet_from_dict(d) == fr.data[off:]
    assert len(types) == 8  # BRR HoTI CoTI HoT CoT BU BA BE


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_capture_refused_cleanly(name):
    proc = subprocess.run([sys.executable, "-m", "roam6_host", "mh", "decode", "--pcap", os.path.join(DATA, name)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr == ""
    lines = [__import__("json").loads(x) for x in proc.stdout.splitlines()]
    assert lines and all(("error" in x and isinstance(x["offset"], int)) or "skipped" in x for x in lines)
    assert any("error" in x for x in lines)


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_payloads_only_raise_decode_error(name):
    """Beyond the IPv6 length check: hand the captured bytes after the IPv6 header to the MH and
    ICMPv6 decoders (tcpdump took next header 62 for mobility) and to the packet decoder with the
    Payload Length cut to what was captured. Only DecodeError (or a clean decode) may come out."""
    seen = 0
    for fr in pcap.read_frames(os.path.join(DATA, name)):
        off, v = pcap.ip_packet(fr.linktype, fr.data)
        if off is None:
            continue
        pkt = bytearray(fr.data[off:])
        if len(pkt) < 40:
            continue
        seen += 1
        body = bytes(pkt[40:])
        for dec in (mh.decode_mh, icmp6.decode_icmp6):
            for cut in range(len(body) + 1):
                try:
                    dec(body[:cut])
                except DecodeError:
                    pass
        n = len(pkt) - 40
        pkt[4], pkt[5] = n >> 8, n & 0xFF
        for nh in (pkt[6], 135, 58):
            pkt[6] = nh
            try:
                wj.packet_to_dict(bytes(pkt))
            except DecodeError as e:
                assert 0 <= e.offset <= len(pkt)
    assert seen


def test_malformed_mh_in_oobr_is_refused_at_header_len():
    fr = next(pcap.read_frames(os.path.join(DATA, "ipv6-mobility-header-oobr.pcap")))
    body = fr.data[40:]
    with pytest.raises(DecodeError) as ei:
        mh.decode_mh(body)
    assert ei.value.offset in (1, len(body))
    assert ip6_to_text(fr.data[8:24]) == "3030:3030:3030:3030:3030:3030:3030:3030"
