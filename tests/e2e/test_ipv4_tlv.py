"""The RFC 5555 TLV header on udp4 end to end, and the NAT mapping kept by keepalives (issue 15):
the real MicroPython MN with config "ipv4_tlv_header" asks for T in its udp4 BUs, the real
`roam6 ha` grants it; a capture on the board's link (tcpdump) shows IPv4 and IPv6 inner packets
in TLV frames both ways, read with scapy as an independent oracle, and tshark dissects the IPv4
home address BU/BA of that capture with no malformed packet (it knows no TLV frames: they are
left out of its dissection). Then apB's NAT (nftables masquerade; this test sets its namespace's
UDP conntrack timeouts to 2 s) sees only the MN's keepalives (BU refreshes every second, the HA's NAT Detection refresh
time) for 4 s, and an IPv4 datagram from the IPv4-only correspondent still reaches the MN."""
import json
import secrets
import shutil
import signal
import subprocess
import time

from roam6_hil.scenarios import register as R

HOA4 = "198.18.50.100"
NAT_TIMEOUT_S = 2
SHORT_UDP = ["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_udp_timeout=%d" % NAT_TIMEOUT_S,
             "net.netfilter.nf_conntrack_udp_timeout_stream=%d" % NAT_TIMEOUT_S]


def frames(path):
    """[(to_ha, first byte, inner version)] of the UDP 4191 datagrams in the capture (scapy)."""
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap
    out = []
    for p in rdpcap(path):
        if UDP in p and 4191 in (p[UDP].sport, p[UDP].dport):
            d = bytes(p[UDP].payload)
            inner = d[4] >> 4 if d[:1] == b"\x01" and len(d) > 4 else d[0] >> 4
            out.append((p[UDP].dport == 4191, d[0], inner))
    return out


def test_tlv_both_ways_for_ipv4_and_ipv6_and_keepalives_hold_the_nat(bench):
    tcpdump, tshark = shutil.which("tcpdump"), shutil.which("tshark")
    assert tcpdump and tshark, "tcpdump and tshark are needed: apt-get install tcpdump tshark (deps/apt.txt)"
    key = secrets.token_hex(16)
    bench.run("apB", SHORT_UDP)       # apB's nftables NAT (conntrack, per namespace): 2 s for UDP
    ha = R.start_ha(bench, R.write_ha_config(bench, key, nat_refresh=1, ipv4_home=True))
    _net, coa = R.attach_for(bench, "udp4")
    cap = bench.path("tlv.pcap")
    dump = bench.popen("board", [tcpdump, "-i", "any", "-U", "-n", "-w", cap, "udp", "port", "4191"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    path = R.write_mn_config(bench, key, "udp4", sensor_interval_ms=0)
    with open(path) as f:
        cfg = json.load(f)
    cfg.update(ipv4_hoa="0.0.0.0", ipv4_tlv_header=True)
    with open(path, "w") as f:
        json.dump(cfg, f)
    mn = R.start_mn(bench, path, heap="64K", extra=["--coa", coa, "--transport", "udp4"])
    try:
        ev = mn.wait_for(lambda e: e.get("ev") in ("tlv", "error"), 10)
        assert ev is not None and ev == dict(ev, ev="tlv", on=True), mn.tail()
        assert mn.wait_for(lambda e: e.get("ev") == "ipv4" and e.get("hoa4") == HOA4, 5), mn.tail()
        bound = [e for e in ha.events if e.get("ev") == "binding_added"]
        assert bound and bound[0].get("tlv") is True, ha.tail()
        t4 = R.cn4_traffic(bench, HOA4)
        assert t4["echoed"] >= 9 and t4["from"] == [HOA4], t4
        t6 = R.cn_traffic(bench, n=10, gap=0.01, listen_s=1.0)
        assert t6["echoed"] >= 9, t6
        # the NAT: 2 s UDP timeout, 4 s with nothing but the MN's keepalives, then the CN again
        mn.mark()
        ha.mark()
        time.sleep(2 * NAT_TIMEOUT_S)
        kept = [e for e in mn.events if e.get("ev") == "bu"]
        assert len(kept) >= 2, mn.tail()                   # the keepalives (BU refreshes) went
        assert not [e for e in ha.events if e.get("ev") in ("binding_moved", "dropped")], ha.tail()
        t4 = R.cn4_traffic(bench, HOA4, n=5)
        assert t4["echoed"] >= 4, t4                        # the mapping lived: the HA still reaches the MN
    finally:
        mn.stop()
        ha.stop()
        dump.send_signal(signal.SIGINT)
        dump.wait(timeout=10)
    seen = frames(cap)
    tlv = {(to_ha, inner) for to_ha, first, inner in seen if first == 1}
    assert tlv >= {(True, 4), (True, 6), (False, 4), (False, 6)}, seen
    assert {(to_ha, first >> 4) for to_ha, first, _ in seen if first != 1} >= {(True, 6), (False, 6)}   # BU, BA bare
    # tshark: the bare IPv6-in-UDP frames (BU/BA with the IPv4 HoA options), TLV frames left out
    p = subprocess.run([tshark, "-r", cap, "-2", "-R", "!(udp.payload[0:1] == 01)", "-d", "udp.port==4191,ipv6",
                        "-V"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "Malformed" not in p.stdout and "IPv4 Home Address: 0.0.0.0" in p.stdout, p.stdout[-3000:]
    assert "IPv4 Address Acknowledgement" in p.stdout and "TLV-header format (T) flag: TLV-header format used" \
        in p.stdout, p.stdout[-3000:]
