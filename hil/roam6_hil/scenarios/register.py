"""`roam6 hil run register --board unix [--transport udp4|udp6|ip6] [--family ipv6|ipv4|both]
[--report DIR]`.

Builds the bench (CONTRACTS.md §8), starts the real home agent (`roam6 ha`) and the mobile node
(MicroPython unix port, `boards/unix/main.py`, heap 100K unless --heap) on the access network the transport
needs (udp4: apB, IPv4 behind NAT; udp6/ip6: apA, IPv6), waits for the binding, then from the CN
sends UDP to the HoA (the MN's probe echoes it: both directions), counts the MN's own datagrams
at the CN, pings the HoA, and writes DIR/report.json. Exit 0 only if all of it worked. The bench
always comes down. --family ipv4 (or both): the MN also asks for an RFC 5555 IPv4 home address
(config "ipv4_hoa": "0.0.0.0"; the HA assigns one of the bench's IPv4 home pool), and the same
checks run on it from the IPv4-only correspondent `cn4` (cn4.py; UDP to the IPv4 HoA echoed back,
ping); ipv4 leaves out the IPv6 checks, both does both.

The pieces (HA/MN configs and starters, each process an eventlog.EventProc, CN traffic) are
functions so the end-to-end tests reuse them.
"""
import json
import os
import secrets
import sys

from roam6_host.heapsize import HELP as HEAP_HELP, heap_size

# the bench's one MN starter and one HA starter; the end-to-end tests reach them through here too
from ..board_unix import start_mn
from ..boards import SCENARIO_BOARD_HELP, scenario_board_real
from ..homeagent import BOARD_SA, start_ha, write_ha_config
from ..cnprobe import CN_SCRIPT, PROBE_PORT
from ..topology import CN_ADDR6, HA_ADDR, HA_IPV4, HOA, HOME_PREFIX, STATIC, Bench

NETWORK_FOR = {"udp4": "apB", "udp6": "apA", "ip6": "apA"}
NAI = BOARD_SA["nai"]
SPI = BOARD_SA["spi"]
DEFAULT_HEAP = "100K"  # the MN + netlink link adapter on the 64-bit unix port (the esp32 profile's heap)
SENSOR_PORT = 9001


def write_mn_config(bench, key_hex, transport, lifetime=600, sensor_interval_ms=20, name="mn",
                    state_file=None):
    cfg = {"nai": NAI, "spi": SPI, "key": key_hex, "hoa": HOA, "home_prefix": HOME_PREFIX,
           "ha": HA_ADDR, "ha_ipv4": HA_IPV4, "bootstrap": ["static"], "transports": [transport],
           "lifetime": lifetime, "timestamps": True,
           "state_file": state_file or bench.path("%s.state" % name),
           "probe": {"port": PROBE_PORT}}
    if sensor_interval_ms:
        cfg["probe"]["sensor"] = {"dst": CN_ADDR6, "port": SENSOR_PORT, "interval_ms": sensor_interval_ms}
    path = bench.path("%s.json" % name)
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def cn_traffic(bench, n=20, gap=0.02, listen_s=4.0):
    """From the CN: n datagrams to HoA:9000 (echoed by the MN's probe) and count the MN's own
    sensor datagrams arriving at CN:9001. Returns the counts as a dict."""
    r = bench.run("cn", [sys.executable, "-c", CN_SCRIPT, HOA, str(PROBE_PORT), str(SENSOR_PORT),
                         str(n), str(gap), str(listen_s)], check=False, timeout=listen_s + 10)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("CN traffic script failed: %s %s" % (r.stdout, r.stderr))


def ping_hoa(bench, count=3):
    """Echo replies the CN gets from the HoA (busybox ping6: deps/apt.txt has busybox)."""
    r = bench.run("cn", ["busybox", "ping6", "-c", str(count), "-W", "2", HOA], check=False,
                  timeout=count + 8)
    received = 0
    for line in r.stdout.splitlines():
        if "packets transmitted" in line:
            received = int(line.split(",")[1].split()[0])
    return received


def attach_for(bench, transport):
    net = NETWORK_FOR[transport]
    bench.attach(net, addressing="static")
    s = STATIC[net]
    coa = (s["v4"] if transport == "udp4" else s["v6"])[0].split("/")[0]
    return net, coa


CN4_SCRIPT = r"""
import json, socket, sys, time
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)       # IPv4 only
s.bind(("0.0.0.0", 9002))
s.settimeout(0.05)
got = set(); frm = set()
end = time.monotonic() + 4
i = 0
while time.monotonic() < end and len(got) < n:
    if i < n:
        s.sendto(b"R6PD" + i.to_bytes(4, "big") + bytes(8), (dst, port)); i += 1
    try:
        d, a = s.recvfrom(2048)
    except socket.timeout:
        continue
    if d[:4] == b"R6PD":
        got.add(int.from_bytes(d[4:8], "big")); frm.add(a[0])
print(json.dumps({"sent": i, "echoed": len(got), "from": sorted(frm)}))
"""


def cn4_traffic(bench, hoa4, ns="cn", n=10):
    """From `ns` over IPv4 only: n datagrams to hoa4:9000, echoed by the MN's probe from its IPv4
    HoA. Returns {"sent", "echoed", "from": [source addresses of the echoes]}."""
    r = bench.run(ns, [sys.executable, "-c", CN4_SCRIPT, hoa4, str(PROBE_PORT), str(n)], check=False, timeout=15)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("CN IPv4 traffic script failed: %s %s" % (r.stdout, r.stderr))


def ping4(bench, hoa4, ns="cn", count=3):
    """Echo replies `ns` gets from the IPv4 HoA (busybox ping)."""
    r = bench.run(ns, ["busybox", "ping", "-c", str(count), "-W", "2", hoa4], check=False, timeout=count + 8)
    for line in r.stdout.splitlines():
        if "packets transmitted" in line:
            return int(line.split(",")[1].split()[0])
    return 0


def _ask_ipv4(path):
    with open(path) as f:
        cfg = json.load(f)
    cfg["ipv4_hoa"] = "0.0.0.0"
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def run_register(transport="udp4", report_dir=None, prefix=None, board="unix", heap=None, family="ipv6"):
    """The scenario; returns the report dict (and writes report_dir/report.json)."""
    if board != "unix":
        raise ValueError("register runs on the unix board here (real boards: through their driver)")
    prefix = prefix or "r6-"
    heap = heap or DEFAULT_HEAP
    key_hex = secrets.token_hex(16)
    report = {"scenario": "register", "board": board, "transport": transport, "family": family,
              "registered": False, "bu_ba_ms": None, "udp_down_sent": 0, "udp_down_received": 0,
              "udp_up_sent": 0, "udp_up_received": 0, "ping_ok": False, "errors": []}
    if family != "ipv6":
        report.update(ipv4_hoa=None, ipv4_udp_sent=0, ipv4_udp_echoed=0, ipv4_ping_ok=False)
    try:
        with Bench(prefix=prefix) as bench:
            _steps(bench, report, key_hex, transport, heap, family)
    except Exception as e:        # no root, a namespace in use...: reported, never a traceback
        report["errors"].append("bench: %s: %s" % (type(e).__name__, e))
    report["heap"] = heap
    six = family == "ipv4" or (report["udp_down_received"] > 0 and report["udp_up_received"] > 0
                                and report["ping_ok"])
    four = family == "ipv6" or (report["ipv4_udp_echoed"] > 0 and report["ipv4_ping_ok"])
    report["ok"] = bool(report["registered"] and six and four and not report["errors"])
    if report_dir:
        os.makedirs(report_dir, exist_ok=True)
        with open(os.path.join(report_dir, "report.json"), "w") as f:
            json.dump(report, f, indent=2, sort_keys=True)
    return report


def _steps(bench, report, key_hex, transport, heap, family="ipv6"):
    ha = mn = None
    v4 = family != "ipv6"
    try:
        ha = start_ha(bench, write_ha_config(bench, key_hex, ipv4_home=v4))
        net, coa = attach_for(bench, transport)
        report["network"], report["coa"] = net, coa
        path = write_mn_config(bench, key_hex, transport)
        mn = start_mn(bench, _ask_ipv4(path) if v4 else path, heap, logpath=bench.path("mn.log"))
        reg = mn.wait_for(lambda e: e.get("ev") in ("registered", "error"), 15)
        if reg is None or reg.get("ev") != "registered":
            report["errors"].append("no registration: %s" % (reg or "timeout"))
            return
        report["registered"] = True
        ba = [e for e in mn.events if e.get("ev") == "ba" and e.get("status", 1) < 128]
        report["bu_ba_ms"] = ba[-1]["bu_ba_ms"] if ba else None
        heap_ev = mn.wait_for(lambda e: e.get("ev") == "heap" and e["t_ms"] >= reg["t_ms"], 3)
        if heap_ev:
            report["mn_heap_alloc"] = heap_ev.get("alloc")
        if v4:
            ack = mn.wait_for(lambda e: e.get("ev") == "ipv4", 3)
            report["ipv4_status"] = ack.get("status") if ack else None
            report["ipv4_hoa"] = hoa4 = ack.get("hoa4") if ack else None
            if hoa4 is None:
                report["errors"].append("no IPv4 home address: %s" % (ack or "no ipv4 event"))
                return
            from ..cn4 import add_cn4         # the IPv4-only correspondent (CONTRACTS §8)
            report["ipv4_cn"] = add_cn4(bench)
            t4 = cn4_traffic(bench, hoa4, ns="cn4", n=20)
            report["ipv4_udp_sent"], report["ipv4_udp_echoed"] = t4["sent"], t4["echoed"]
            report["ipv4_udp_from"] = t4["from"]
            report["ipv4_ping_ok"] = ping4(bench, hoa4, ns="cn4") > 0
            if family == "ipv4":
                return
        t = cn_traffic(bench)
        report["udp_down_sent"] = t["down_sent"]
        report["udp_down_received"] = t["echoed"]      # the MN got it and sent it back
        report["udp_up_received"] = t["up_received"] + t["echoed"]
        report["udp_up_sent"] = t["up_max_seq"] + 1 + t["echoed"]
        report["rtt_ms_median"] = t["rtt_ms_median"]
        report["ping_ok"] = ping_hoa(bench) > 0
    except Exception as e:     # a broken step is reported, and the bench still comes down
        report["errors"].append("%s: %s" % (type(e).__name__, e))
    finally:
        for p in (mn, ha):
            if p is not None:
                p.stop()
        if mn is not None:
            report["mn_log_tail"] = mn.reader.last_lines(15)


def add_arguments(parser):
    parser.add_argument("--board", default="unix", type=scenario_board_real, choices=["unix", "serial"],
                        help=SCENARIO_BOARD_HELP + "; serial: a real board with --bench FILE (realboard.py)")
    parser.add_argument("--transport", default="udp4", choices=["udp4", "udp6", "ip6"],
                        help="udp4: apB, IPv4 behind NAT (default); udp6/ip6: apA, IPv6")
    parser.add_argument("--family", default="ipv6", choices=["ipv6", "ipv4", "both"],
                        help="the home address checked: ipv6 (default), ipv4 (an RFC 5555 IPv4 HoA from the HA's "
                             "pool, reached from the CN over IPv4), both")
    parser.add_argument("--report", default="reports/register", metavar="DIR",
                        help="report folder (default reports/register)")
    parser.add_argument("--prefix", default=None, help="namespace prefix (default r6-)")
    parser.add_argument("--heap", default=DEFAULT_HEAP, type=heap_size, metavar="SIZE",
                        help="MicroPython heap for the MN (default %s: the MN with the netlink link "
                             "adapter on the 64-bit unix port); %s" % (DEFAULT_HEAP, HEAP_HELP))
    from .. import realboard
    realboard.add_arguments(parser)


def run(args):
    if getattr(args, "board", "unix") == "serial" or getattr(args, "labgrid", None):
        from .. import realboard
        return realboard.run(args)
    from ..netns import check_prefix, require_root_and_tools
    require_root_and_tools(("ip", "nft"))      # said up front, not buried in the report's errors
    check_prefix(getattr(args, "prefix", None) or "r6-")
    report = run_register(args.transport, getattr(args, "report", None), getattr(args, "prefix", None),
                          getattr(args, "board", "unix"), getattr(args, "heap", DEFAULT_HEAP),
                          getattr(args, "family", "ipv6"))
    print(json.dumps({k: v for k, v in report.items() if k != "mn_log_tail"}, indent=2, sort_keys=True))
    return 0 if report["ok"] else 1
