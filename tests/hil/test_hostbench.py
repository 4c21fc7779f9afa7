"""`roam6 hil up|down --bench FILE`: the bench on a host's own interfaces.

"The host" here is a network namespace the test owns (every command runs in it through
`ip netns exec`), with interfaces made by the test BEFORE `hil up`, standing for the ports the
access points hang off: veths whose other ends sit on bridges in an `air` namespace, where the
board's link (a veth from a `board` namespace) is moved from one AP's bridge to another.
"""
import ipaddress
import json
import os
import subprocess
import sys
import time

import pytest

from roam6_host.errors import UserError
from roam6_hil import benchfile
from roam6_hil.netns import ns_pids

from nshelp import TestNamespaces

ROAM6 = [sys.executable, "-m", "roam6_host"]

BENCH = """
name = "{name}"
[home]
interface = "home0"
prefix = "2001:db8:aa::/64"
hoa = "2001:db8:aa::100"
[ha]
address = "2001:db8:aa::1"
ipv4 = "198.18.1.2"
[cn]
address6 = "2001:db8:f3::2"
address4 = "198.18.3.2"
[[ap]]
interface = "apA"
ssid = "roam6-A"
psk = "roam6-bench-A"
ipv6 = {{ prefix = "{v6}", router = "{r6}" }}
[[ap]]
interface = "{apb}"
ssid = "roam6-B"
psk = "roam6-bench-B"
ipv4 = {{ subnet = "192.0.2.0/24", router = "192.0.2.1", dhcp = ["192.0.2.100", "192.0.2.199"] }}
ipv6 = {{ prefix = "2001:db8:b1::/64", router = "2001:db8:b1::1" }}
"""


def write_bench(tmp_path, name, v6="2001:db8:a1::/64", apb="apB", file=None):
    p = tmp_path / ("%s.toml" % (file or name))
    p.write_text(BENCH.format(name=name, v6=v6, r6=ipaddress.ip_network(v6)[1], apb=apb))
    return str(p)


@pytest.mark.parametrize("text, msg", [
    ("[home]\ninterface='x'\n", "needs `prefix`"),
    ("nonsense = [", "not valid TOML"),
    ("[wifi]\n", "unknown section"),
])
def test_bad_bench_files_are_clear_errors(tmp_path, text, msg):
    p = tmp_path / "b.toml"
    p.write_text(text)
    with pytest.raises(UserError, match=msg):
        benchfile.load(str(p))


def test_bench_file_checks(tmp_path):
    good = benchfile.load(write_bench(tmp_path, "t1"))
    assert [a["ssid"] for a in good["aps"]] == ["roam6-A", "roam6-B"] and benchfile.outside_safe_ranges(good) == []
    # 2a01:4f8:1::/64 is a real provider's prefix: outside the documentation ranges
    wide = benchfile.load(write_bench(tmp_path, "t2", v6="2a01:4f8:1::/64"))
    assert benchfile.outside_safe_ranges(wide) == ["2a01:4f8:1::/64", "2a01:4f8:1::1"]
    text = open(write_bench(tmp_path, "t3")).read().replace('router = "2001:db8:a1::1"', 'router = "2001:db8:a2::1"')
    (tmp_path / "t3.toml").write_text(text)
    with pytest.raises(UserError, match="must be in prefix"):
        benchfile.load(str(tmp_path / "t3.toml"))
    assert benchfile.load(str(tmp_path / "t1.toml"))["home"]["interface"] == "home0"
    with pytest.raises(UserError, match="no bench file"):
        benchfile.load(str(tmp_path / "nope.toml"))


@pytest.fixture
def host():
    """Namespaces host/air/board; the host has a WAN port with its default route, the AP ports
    apA, apB, apC (veths to bridges airA, airB, airC in air) and the home link home0."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces); `make test` runs as root")
    n = TestNamespaces()
    try:
        h, a, b = n.add("host"), n.add("air"), n.add("board")
        n.veth(h, "wan0", a, "w")
        n.ip(h, "addr", "add", "203.0.113.1/24", "dev", "wan0")
        n.ip(h, "route", "add", "default", "via", "203.0.113.254")
        n.veth(h, "home0", a, "hm")
        for x in "ABC":
            n.ip(a, "link", "add", "air" + x, "type", "bridge", "forward_delay", "0", "stp_state", "0")
            n.veth(h, "ap" + x, a, "p" + x)
            n.ip(a, "link", "set", "p" + x, "master", "air" + x)
            n.ip(a, "link", "set", "air" + x, "up")
        n.veth(b, "wlan0", a, "board")
        yield n
    finally:
        n.teardown()


def in_host(n, argv, timeout=60):
    return subprocess.run(["ip", "netns", "exec", n.full("host")] + argv, capture_output=True, text=True,
                          timeout=timeout)


def host_snapshot(n):
    code = "import json; from roam6_hil.hostbench import snapshot; print(json.dumps(snapshot()))"
    r = in_host(n, [sys.executable, "-c", code])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_refused_files_leave_the_host_alone_and_up_down_restores_it(host, tmp_path):
    n = host
    name = n.prefix.strip("-")[-6:]
    before = host_snapshot(n)
    # an unknown interface; the interface of the default route; a range that is not ours
    for path, msg in ((write_bench(tmp_path, name, apb="eth9", file="unknown"), "unknown interface"),
                      (write_bench(tmp_path, name, apb="wan0", file="wan"), "default route"),
                      (write_bench(tmp_path, name, v6="2a01:4f8:1::/64", file="wide"), "outside the documentation")):
        r = in_host(n, ROAM6 + ["hil", "up", "--bench", path])
        assert r.returncode != 0 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert host_snapshot(n) == before
    path = write_bench(tmp_path, name)
    r = in_host(n, ROAM6 + ["hil", "up", "--bench", path])
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        up = host_snapshot(n)
        assert up != before and up["sysctls"]["net/ipv6/conf/all/forwarding"] == "1"
        assert any(line.split()[0].split("@")[0] == "apA" and "2001:db8:a1::1/64" in line for line in up["addrs"])
        # `roam6 cn` runs on the file's CN address (its event log in the bench's workdir)
        cn_log = "/run/roam6-hil/bench-%s-work/cn/cn.log" % name
        assert '"ev": "ready"' in open(cn_log).read() and "2001:db8:f3::2" in open(cn_log).read()
        # the board on AP A (its link moved onto airA) gets a SLAAC address from radvd on the host's apA
        n.ip("air", "link", "set", "board", "master", "airA")
        n.ip("board", "link", "set", "wlan0", "up")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = n.ip("board", "-6", "addr", "show", "dev", "wlan0").stdout
            if "2001:db8:a1:" in out:
                break
            time.sleep(0.1)
        assert "2001:db8:a1:" in out, out
        # up twice: refused, the first one stays
        r = in_host(n, ROAM6 + ["hil", "up", "--bench", path])
        assert r.returncode != 0 and "already up" in r.stderr
    finally:
        r = in_host(n, ROAM6 + ["hil", "down", "--bench", path])
    assert r.returncode == 0, r.stdout + r.stderr
    assert host_snapshot(n) == before
    assert ns_pids(n.full("host")) == []          # radvd, Kea, dnsmasq, the HA: all gone
    r = in_host(n, ROAM6 + ["hil", "down", "--bench", path])
    assert r.returncode == 0 and "not up" in r.stdout


# A stand-in for the board's Wi-Fi radio (a test double: the unix port has no `network` module,
# and there is no radio here): joining SSID X moves the board's link onto AP X's bridge in `air`,
# as associating with X would; on an AP with IPv4 its stack asks for a DHCPv4 lease (busybox
# udhcpc, the script below puts it on); ifconfig() waits for the address SLAAC (else DHCPv4)
# gives, as a station does.
NETWORK_STANDIN = '''
import os, time
AIR = %r
BRIDGE = %r
DHCP4 = %r
V6 = %r
SCRIPT = %r
STA_IF = 0


class WLAN:
    ssid = None

    def __init__(self, i=0):
        pass

    def active(self, *a):
        return True

    def disconnect(self):
        os.system("ip netns exec %%s ip link set dev board down nomaster" %% AIR)
        WLAN.ssid = None

    def connect(self, ssid, psk):
        # a new association: a station's stack forgets the last network's addresses, routers and neighbours
        os.system("ip -6 addr flush dev wlan0 scope global")
        os.system("ip -6 route flush dev wlan0 proto ra")
        os.system("ip -6 neigh flush dev wlan0")
        os.system("ip -4 addr flush dev wlan0; ip -4 route flush dev wlan0; ip -4 neigh flush dev wlan0")
        os.system("ip netns exec %%s ip link set dev board master %%s up" %% (AIR, BRIDGE[ssid]))
        if ssid in DHCP4:
            os.system("busybox udhcpc -i wlan0 -q -n -t 10 -T 1 -s %%s >/dev/null 2>&1 &" %% SCRIPT)
        WLAN.ssid = ssid

    def isconnected(self):
        return WLAN.ssid is not None

    def ifconfig(self):
        # the address SLAAC gives where the AP has IPv6, the lease's where it has IPv4: both on
        # before the MN starts, the IPv6 one returned where there is one
        for _ in range(200):
            got = []
            for fam in ("-6", "-4"):
                os.system("ip -br %%s addr show dev wlan0 scope global > wlan.txt" %% fam)
                words = open("wlan.txt").read().split()
                got.append(words[2].split("/")[0] if len(words) > 2 else None)
            v6, v4 = got
            if (v6 or WLAN.ssid not in V6) and (v4 or WLAN.ssid not in DHCP4):
                return (v6 or v4, "", "", "")
            time.sleep_ms(20)
        return ("0.0.0.0", "", "", "")
'''


def test_serial_board_registers_through_the_bench_file(host, tmp_path):
    """`roam6 hil run register --board serial --bench FILE --roams 2`: the unix port on a pty is the
    board, deployed by the command, told over its REPL to join AP A; registered, CN traffic and ping
    to the HoA through the host's HA; then it joins B and A again, registering each time; the host
    restored afterwards."""
    from roam6_host.unixboard import UnixBoard
    n = host
    name = n.prefix.strip("-")[-6:]
    path = write_bench(tmp_path, name)
    from roam6_hil.board_unix import firmware_bundle
    bundle = firmware_bundle(False)     # `roam6 build --board unix`, cached in build/hil/ as the bench does
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "udhcpc.sh").write_text('#!/bin/sh\n[ "$1" = bound ] || exit 0\nip addr add $ip/${mask:-24} dev $interface\n'
                                  'ip route replace default via $router dev $interface\n')
    os.chmod(fs / "udhcpc.sh", 0o755)
    (fs / "network.py").write_text(NETWORK_STANDIN % (n.full("air"), {"roam6-A": "airA", "roam6-B": "airB",
                                                                      "roam6-C": "airC"},
                                                      ["roam6-B", "roam6-C"], ["roam6-A", "roam6-B"],
                                                      str(fs / "udhcpc.sh")))
    n.run("board", ["sysctl", "-qw", "net.ipv6.conf.wlan0.accept_dad=0"])
    before = host_snapshot(n)
    board = UnixBoard(str(fs), prefix=["ip", "netns", "exec", n.full("board")]).start()
    try:
        r = in_host(n, ROAM6 + ["hil", "run", "register", "--board", "serial", "--port", board.port, "--bench", path,
                                "--bundle", str(bundle), "--transport", "udp6", "--roams", "2",
                                "--report", str(tmp_path / "rep")],
                    timeout=120)
        rep = json.loads((tmp_path / "rep" / "report.json").read_text())
        assert r.returncode == 0, r.stdout + r.stderr
        assert "main.py" in rep["deployed"] and "config.json" in rep["deployed"]
        assert rep["registered"] and rep["coa"].startswith("2001:db8:a1:"), rep
        assert rep["udp_down_received"] > 0 and rep["ping_ok"], rep
        assert [(r["to"], r["coa"].split(":")[2], r["registered"]) for r in rep["roams"]] == [
            ("roam6-B", "b1", True), ("roam6-A", "a1", True)], rep["roams"]
        assert all(0 < r["join_to_registered_ms"] < 20000 for r in rep["roams"])
        assert host_snapshot(n) == before
        # the roam scenario on the same board (deployed already, no --bundle: only its config goes over
        # the REPL): the virtual bench's report, measured from the host's side (CN probes, sniffer and
        # pcaps on apA/apB)
        r = in_host(n, ROAM6 + ["hil", "run", "roam", "--board", "serial", "--port", board.port, "--bench", path,
                                "--transport", "udp6", "--roams", "2", "--dwell", "0.3",
                                "--report", str(tmp_path / "roam")], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "OK: probes flowed again after every roam" in r.stdout and "down ms" in r.stdout, r.stdout
        rep = json.loads((tmp_path / "roam" / "report.json").read_text())
        assert rep["board"] == "serial" and rep["deployed"] == ["config.json"]
        assert rep["networks"] == ["roam6-A", "roam6-B"]
        s = rep["summary"]
        assert s["ok"] and s["recovered_all"] and s["completed_roams"] == 2 and s["transports"] == ["udp6"], s
        assert [(x["net"], x["coa"].split(":")[2]) for x in rep["rows"]] == [("roam6-B", "b1"), ("roam6-A", "a1")]
        for row in rep["rows"]:
            # the probes' gap seen on the AP ports, and the board's BA line (stamped on arrival)
            # (longer than a few probe intervals: the MN restarts on each join; only what left the
            # port of the AP the board was on counts as reaching it)
            assert 20 < row["interruption_down_ms"] < 20000 and row["bu_ba_ms"] is not None, row
            assert row["link_ms"] is not None and row["link_ms"] >= 0, row
        assert s["probes_received_board"] > 0 and s["probes_received_cn"] > 0
        assert s["lost_outside_interruptions"] == 0, s
        assert sorted(os.listdir(tmp_path / "roam" / "pcap")) == ["host-apA.pcap", "host-apB.pcap", "host-home0.pcap"]
        assert os.path.getsize(tmp_path / "roam" / "timeline.png") > 0
        assert host_snapshot(n) == before
        # udp4 (the esp32 profile's transport): IPv4 APs, DHCPv4 from the host's dnsmasq, NAT by its nft
        # table; a third AP, IPv4 only: the board roams B -> C through the host's HA over udp4
        v4 = str(tmp_path / "v4.toml")
        open(v4, "w").write(open(path).read() + '[[ap]]\ninterface = "apC"\nssid = "roam6-C"\npsk = "roam6-bench-C"\n'
                            'ipv4 = { subnet = "198.51.100.0/24", router = "198.51.100.1", '
                            'dhcp = ["198.51.100.100", "198.51.100.199"] }\n')
        r = in_host(n, ROAM6 + ["hil", "run", "roam", "--board", "serial", "--port", board.port, "--bench", v4,
                                "--transport", "udp4", "--roams", "1", "--dwell", "0.3", "--no-pcap",
                                "--report", str(tmp_path / "roam4")], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        rep = json.loads((tmp_path / "roam4" / "report.json").read_text())
        s = rep["summary"]
        assert rep["networks"] == ["roam6-B", "roam6-C"] and s["ok"] and s["transports"] == ["udp4"], s
        assert [(x["net"], x["coa"].rsplit(".", 1)[0]) for x in rep["rows"]] == [("roam6-C", "198.51.100")], rep["rows"]
        assert s["probes_received_board"] > 0 and s["completed_roams"] == 1, s
        assert host_snapshot(n) == before
        # bootstrap: knowing only NAI, key, HoA and domain, the board finds the HA on each AP from
        # the host's Kea (DHCPv6, RFC 6610) and registers
        r = in_host(n, ROAM6 + ["hil", "run", "bootstrap", "--board", "serial", "--port", board.port, "--bench", path,
                                "--transport", "udp6", "--timeout", "15", "--report", str(tmp_path / "boot")],
                    timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        rep = json.loads((tmp_path / "boot" / "report.json").read_text())
        assert [(x["net"], x["registered"], x["method"], x["ha"]) for x in rep["rows"]] == [
            ("roam6-A", True, "dhcpv6", "2001:db8:aa::1"), ("roam6-B", True, "dhcpv6", "2001:db8:aa::1")], rep
        # route optimisation (the unix board has the ip6 transport): `roam6 cn`, started by the bench
        # on the file's CN address, binds the board's CoA on A, then B; the probes go direct. The
        # APs are switched by the bench file's switch_to commands (the board's link moved under its
        # running MN, as a station reassociating would), not by a join over the REPL
        text = open(path).read()
        for x in "AB":
            move = ("ip netns exec {b} ip -6 addr flush dev wlan0 scope global; ip netns exec {b} ip -6 route flush "
                    "dev wlan0 proto ra; ip netns exec {b} ip -6 neigh flush dev wlan0; ip netns exec {a} ip link set "
                    "dev board master air{x} up").format(a=n.full("air"), b=n.full("board"), x=x)
            text = text.replace('psk = "roam6-bench-%s"' % x, 'psk = "roam6-bench-%s"\nswitch_to = "%s"' % (x, move))
        path = str(tmp_path / "switched.toml")
        open(path, "w").write(text)
        r = in_host(n, ROAM6 + ["hil", "run", "ro", "--board", "serial", "--port", board.port, "--bench", path,
                                "--window", "1", "--interval", "20", "--report", str(tmp_path / "ro")], timeout=120)
        rep = json.loads((tmp_path / "ro" / "report.json").read_text())
        assert r.returncode == 0 and rep["ok"], r.stdout + r.stderr
        assert len(rep["checks"]) == 14 and all(rep["checks"].values()), rep["checks"]
        w = rep["windows"]
        assert w["apA"]["privacy"]["tunnel_udp"] > 0 and w["apA"]["ro"]["direct_udp"] > 0, w
        assert w["apB"]["roam"]["coa_seen"][0].startswith("2001:db8:b1:"), w
        assert host_snapshot(n) == before
        # Ctrl-C during a run on the real bench (once the board is registered): the board, the
        # captures, the daemons, the HA and the CN stopped, the host as it was, no traceback
        import signal
        p = subprocess.Popen(["ip", "netns", "exec", n.full("host")] + ROAM6 + [
            "hil", "run", "roam", "--board", "serial", "--port", board.port, "--bench", path, "--transport", "udp6",
            "--roams", "50", "--report", str(tmp_path / "int")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True)
        try:
            for line in p.stdout:
                if line.startswith("board registered on"):
                    break
            os.killpg(p.pid, signal.SIGINT)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        assert p.returncode == 130 and "Traceback" not in err, err
        assert host_snapshot(n) == before
        assert ns_pids(n.full("host")) == []
        assert not os.path.exists("/run/roam6-hil/bench-%s.json" % name)
    finally:
        board.stop()
    assert host_snapshot(n) == before
    assert ns_pids(n.full("host")) == []


def test_interrupted_up_restores_the_host(host, tmp_path):
    """Ctrl-C while `hil up --bench` starts the daemons: what it did is undone, nothing is left."""
    import signal
    n = host
    name = n.prefix.strip("-")[-6:]
    path = write_bench(tmp_path, name)
    before = host_snapshot(n)
    state = "/run/roam6-hil/bench-%s.json" % name
    p = subprocess.Popen(["ip", "netns", "exec", n.full("host")] + ROAM6 + ["hil", "up", "--bench", path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        seen = []
        while time.monotonic() < deadline and p.poll() is None:
            try:
                seen = json.load(open(state))["undo"]
            except (OSError, ValueError):
                seen = []
            if any(step[0] == "proc" for step in seen):
                break
            time.sleep(0.01)
        assert any(step[0] == "proc" for step in seen), "no daemon started before the interrupt"
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode != 0 and "Traceback" not in err, err
    assert not os.path.exists(state)
    assert host_snapshot(n) == before
    assert ns_pids(n.full("host")) == []


def test_busy_serial_port_is_a_clear_error(tmp_path):
    import serial
    from roam6_hil.board_serial import SerialBoard
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    p = subprocess.Popen(["socat", "pty,raw,echo=0,link=" + a, "pty,raw,echo=0,link=" + b],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not os.path.exists(b) and time.monotonic() < deadline:
            time.sleep(0.02)
        holder = serial.Serial(b, exclusive=True)      # another program holds the port
        try:
            with pytest.raises(UserError, match="cannot open"):
                SerialBoard(port=b).connect(timeout=1)
        finally:
            holder.close()
    finally:
        p.terminate()
        p.wait(5)


def test_real_roam_refusals_leave_the_host_as_it_was(host, tmp_path):
    """`hil run roam --board serial`: a bench file naming an interface the host lacks, a serial port
    another program holds, a port where no board answers: each a clear error before the host is
    touched (nothing configured, nothing started)."""
    import serial
    n = host
    name = n.prefix.strip("-")[-6:]
    good, unknown = write_bench(tmp_path, name), write_bench(tmp_path, name, apb="eth9", file="unknown")
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    pty = subprocess.Popen(["socat", "pty,raw,echo=0,link=" + a, "pty,raw,echo=0,link=" + b],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not (os.path.exists(a) and os.path.exists(b)) and time.monotonic() < deadline:
            time.sleep(0.02)
        before = host_snapshot(n)
        holder = serial.Serial(b, exclusive=True)      # another program holds B; nothing answers on A
        try:
            for bench, port, msg in ((unknown, a, "unknown interface(s) eth9"), (good, b, "cannot open " + b),
                                     (good, a, "no MicroPython board answered on " + a)):
                r = in_host(n, ROAM6 + ["hil", "run", "roam", "--board", "serial", "--port", port, "--bench", bench,
                                        "--transport", "udp6", "--roams", "1", "--answer-timeout", "1",
                                        "--report", str(tmp_path / "rep")])
                assert r.returncode != 0 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr
                assert host_snapshot(n) == before
                assert ns_pids(n.full("host")) == []
        finally:
            holder.close()
    finally:
        pty.terminate()
        pty.wait(5)


def test_a_run_refused_by_a_bench_already_up_leaves_its_state(tmp_path):
    """`hil run ... --board serial` on a bench file another `hil up` holds: up() refuses, and the
    run's clean-up (down() in its finally) must not remove the other bench's record of what to undo."""
    from roam6_hil import hostbench
    import secrets
    bench = {"name": "t" + secrets.token_hex(3), "path": str(tmp_path / "b.toml")}
    os.makedirs(hostbench.STATE_DIR, exist_ok=True)
    state = hostbench.state_path(bench)
    with open(state, "w") as f:
        json.dump({"undo": [["addr", "lo", "2001:db8:ff::1/128"]]}, f)
    try:
        hb = hostbench.HostBench(bench, workdir=str(tmp_path / "work"))
        with pytest.raises(UserError, match="already up"):
            hb.up()
        assert hb.down() == [] and json.load(open(state))["undo"] == [["addr", "lo", "2001:db8:ff::1/128"]]
    finally:
        os.remove(state)
