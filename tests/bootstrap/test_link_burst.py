"""The unix link adapter on MicroPython loses no state in a burst: with more changes waiting than
its 4 KB read buffer holds (MicroPython's readinto runs datagrams together and cuts the last),
it notices the cut message, dumps the state again and reports the difference."""
import json
import socket
import subprocess

from bootnet import netns  # noqa: F401  (pytest fixture)
from bootnet import micropython


def test_burst_of_changes_is_recovered_by_a_redump(netns):
    ns = netns.add("b")
    netns.ip(ns, "link", "add", "wlan0", "type", "veth", "peer", "name", "peer0")
    netns.ip(ns, "link", "set", "peer0", "up")
    netns.ip(ns, "link", "set", "wlan0", "up")
    netns.ip(ns, "addr", "add", "192.0.2.200/24", "dev", "wlan0")
    out = micropython(netns, ns, "mp_link_burst.py", "wlan0", stdin=True)
    assert out.next(10) == {"ready": True}
    batch = ["link set peer0 down", "link set peer0 up", "link set peer0 down", "link set peer0 up"]
    batch += ["addr add 2001:db8:b::%x/64 dev wlan0 nodad" % i for i in range(1, 61)]
    batch += ["addr del 2001:db8:b::%x/64 dev wlan0" % i for i in range(1, 21)]
    batch += ["addr del 192.0.2.200/24 dev wlan0", "addr add 192.0.2.201/24 dev wlan0"]
    subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(batch) + "\n", text=True, check=True, timeout=10)
    out.send("go\n")
    final = out.next(10)
    truth = json.loads(subprocess.run(["ip", "-n", ns, "-j", "addr", "show", "dev", "wlan0"], capture_output=True,
                                      text=True, check=True).stdout)[0]["addr_info"]
    want = sorted(bytes(socket.inet_pton(10 if ":" in a["local"] else 2, a["local"])).hex() for a in truth)
    print(json.dumps({"benchmark": "netlink_burst", "changes": len(batch), "heap": "64K", "reads": final["reads"],
                      "resyncs": final["resyncs"], "mem_free_after": final["mem_free"]}))
    assert final["addrs"] == want, final
    assert final["up"] is True
    assert final["resyncs"] >= 1, final  # the burst did overflow the buffer: the re-dump was needed
