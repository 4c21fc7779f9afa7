"""The bench plan in namespaces (CONTRACTS §8): build, reach across, roam the board's link, tear down."""
import subprocess
import sys
import time

from roam6_hil.netns import list_namespaces, ns_pids
from roam6_hil.topology import Bench


def ping(bench, short, dst, count=1, timeout=2):
    """busybox ping from a namespace; True if a reply came back."""
    r = bench.run(short, ["busybox", "ping", "-c", str(count), "-W", str(timeout), dst], check=False,
                  timeout=timeout + 3)
    return r.returncode == 0


def test_plan_reachability_and_teardown(prefix):
    with Bench(prefix=prefix) as b:
        names = [n for n in list_namespaces() if n.startswith(prefix)]
        assert sorted(names) == sorted(prefix + s for s in Bench.SHORT)
        # IPv4-only network behind NAT: the board reaches the HA's IPv4 address
        b.attach("apB")
        assert ping(b, "board", "198.18.1.2")
        assert not ping(b, "board", "2001:db8:aa::1", timeout=1)   # no IPv6 on apB
        # IPv6-only network: the board reaches the HA's home address, not IPv4
        b.attach("apA")
        assert ping(b, "board", "2001:db8:aa::1")
        assert not ping(b, "board", "198.18.1.2", timeout=1)
        # dual stack
        b.attach("apC")
        assert ping(b, "board", "2001:db8:f3::2") and ping(b, "board", "198.18.3.2")
        # at home, with the HoA
        b.attach("home")
        assert ping(b, "board", "2001:db8:aa::1")
        addrs = b.run("board", ["ip", "-br", "addr", "show", "dev", "wlan0"]).stdout
        assert "2001:db8:aa::100/64" in addrs and "2001:db8:c1::50" not in addrs   # old network's address gone
        # a process in a namespace is killed at teardown
        p = b.popen("cn", ["sleep", "60"])
        # `ip netns exec` enters the namespace a moment after Popen returns: wait for it (bounded)
        deadline = time.monotonic() + 5
        while not ns_pids(b.full("cn")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ns_pids(b.full("cn"))
    assert p.poll() is not None
    assert not [n for n in list_namespaces() if n.startswith(prefix)]


RECV_ONE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9999)); s.settimeout(3)
print("ready", flush=True)
data, src = s.recvfrom(100); print(src[0], data.decode(), flush=True)
"""


def test_nat_hides_the_board(prefix):
    """The CN sees apB's uplink address as the source, never the board's private one."""
    with Bench(prefix=prefix) as b:
        b.attach("apB")
        srv = b.popen("cn", [sys.executable, "-c", RECV_ONE], stdout=subprocess.PIPE, text=True)
        assert srv.stdout.readline().strip() == "ready"
        b.run("board", [sys.executable, "-c", "import socket; socket.socket(2, 2).sendto(b'hi', ('198.18.3.2', 9999))"])
        assert srv.stdout.readline().split() == ["198.18.12.2", "hi"]
        srv.wait(3)


def test_leftovers_of_a_killed_run_are_removed(prefix, tmp_path):
    b = Bench(prefix=prefix, workdir=str(tmp_path / "killed-run"))   # its folder is never removed: not in /tmp
    b.up()
    b.popen("ha", ["sleep", "60"])
    # simulate a killed run: forget the object without down(); the next bench with the prefix cleans up
    with Bench(prefix=prefix) as b2:
        assert len([n for n in list_namespaces() if n.startswith(prefix)]) == len(Bench.SHORT)
        assert ns_pids(b2.full("ha")) == []
