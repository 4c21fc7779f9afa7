"""roam6's own messages in Ethernet (also VLAN-tagged) and raw-IPv6 captures written by scapy: the
real tcpdump reads them and prints the same field values roam6 decodes, and `roam6 mh decode
--pcap` reads pcap and pcapng alike.

Debian 12's tcpdump 4.99.3 stops before the last mobility option of a message and prints
"[|mobility]" (a bug of that version: on tcpdump's own regression capture it does the same, where
upstream's expected output, tests/data/tcpdump/*.out, lists every option). `same_as_tcpdump`
allows exactly that and nothing else; test_local_tcpdump_quirk shows it on tcpdump's capture."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from scapy.layers.l2 import Ether, Dot1Q
from scapy.utils import wrpcap, wrpcapng
from scapy.layers.inet6 import IPv6

from roam6_codec import mh, mhopts
from roam6.wire.addr import ip6_from_text as A
from roam6.wire.ipv6 import build_ipv6

from test_codec_tcpdump import tcpdump_text, DATA, _expected

TRUNC = " [|mobility]"


def same_as_tcpdump(ours, theirs):
    """ours == theirs, or theirs is ours without its last option followed by TRUNC."""
    if not theirs.endswith(TRUNC):
        return ours == theirs
    head = theirs[:-len(TRUNC)]
    rest = ours[len(head):]
    return ours.startswith(head) and rest.startswith("(") and rest.endswith(")") and rest.count("(") == 1

HOA, COA, HA, CN = A("2001:db8:aa::100"), A("2001:db8:a1::200"), A("2001:db8:aa::1"), A("2001:db8:f3::2")


def _packets():
    def pkt(src, dst, m, hao=None, rh2=None):
        return build_ipv6(src, dst, 135, m.encode(hao or src, rh2 or dst), hao=hao, rh2=rh2)
    return [
        pkt(HA, COA, mh.BindingRefreshRequest()),
        pkt(HOA, CN, mh.HomeTestInit(b"\x01\x02\x03\x04\x05\x06\x07\x08")),
        pkt(CN, COA, mh.CareofTest(0x1234, b"abcdefgh", b"ABCDEFGH")),
        pkt(COA, HA, mh.BindingUpdate(4242, mh.BU_A | mh.BU_H | mh.BU_K, 150, [mhopts.AlternateCoA(COA)]), hao=HOA),
        pkt(COA, CN, mh.BindingUpdate(7, mh.BU_A, 105, [mhopts.NonceIndices(0x0102, 0x0304),
                                                          mhopts.BindingAuthData(bytes(12))]), hao=HOA),
        pkt(HA, COA, mh.BindingAck(0, mh.BA_K, 4242, 150, [mhopts.BindingRefreshAdvice(100)]), rh2=HOA),
        pkt(CN, COA, mh.BindingError(1, HOA)),
    ]


def _tcpdump(path):
    if not shutil.which("tcpdump"):
        pytest.fail("tcpdump is missing: `make setup` installs it (deps/apt.txt)")
    proc = subprocess.run(["tcpdump", "-nn", "-v", "-r", path], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # -v prints the IPv6 header line, then the packet on the same line after "mobility: "
    return [ln.split("mobility: ", 1)[1].strip() for ln in proc.stdout.splitlines() if "mobility: " in ln]


def _decode(path):
    proc = subprocess.run([sys.executable, "-m", "roam6_host", "mh", "decode", "--pcap", path],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads(x) for x in proc.stdout.splitlines()]


@pytest.mark.parametrize("kind", ["ethernet", "vlan", "raw", "pcapng"])
def test_tcpdump_agrees_with_roam6(tmp_path, kind):
    raw = _packets()
    if kind == "raw":
        frames = [IPv6(p) for p in raw]
    elif kind == "vlan":
        frames = [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=7) / IPv6(p) for p in raw]
    else:
        frames = [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6(p) for p in raw]
    path = str(tmp_path / ("c.pcapng" if kind == "pcapng" else "c.pcap"))
    (wrpcapng if kind == "pcapng" else wrpcap)(path, frames)
    texts = _tcpdump(path)
    decoded = _decode(path)
    assert len(texts) == len(decoded) == len(raw)
    for d, text in zip(decoded, texts):
        assert d["mh"]["checksum_ok"] is True
        assert same_as_tcpdump(tcpdump_text(d["mh"]), text), (tcpdump_text(d["mh"]), text)
    # and the bytes come back
    enc = subprocess.run([sys.executable, "-m", "roam6_host", "mh", "encode"],
                         input="\n".join(json.dumps(d) for d in decoded), capture_output=True, text=True, timeout=60)
    assert enc.stdout.split() == [p.hex() for p in raw]


def test_local_tcpdump_quirk():
    """The local tcpdump against upstream's expected output for tcpdump's own capture: equal, or
    short of the last option in exactly the way same_as_tcpdump allows."""
    local = _tcpdump(os.path.join(DATA, "ipv6_mobility_1.pcap"))
    upstream = [t for _, _, t in _expected("ipv6_mobility_1-v.out")]
    assert len(local) == len(upstream) == 16
    for lo, up in zip(local, upstream):
        assert same_as_tcpdump(up, lo), (up, lo)
