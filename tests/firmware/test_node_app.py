"""The MN program's command line (roam6.node.app): mistakes are ValueErrors that say what is wrong."""
import json
import os
import sys

from support import raises

from roam6.node.app import parse_args, static_coa
from roam6.node.config import parse_config


def cfg(transports):
    return parse_config({"nai": "b@example.test", "spi": 4096, "key": "00" * 16, "hoa": "2001:db8:aa::100",
                         "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1", "ha_ipv4": "198.18.1.2",
                         "transports": transports})


def test_parse_args():
    o = parse_args(["c.json", "--coa", "192.0.2.50", "--iface", "eth1"])
    assert o["config"] == "c.json" and o["coa"] == "192.0.2.50" and o["iface"] == "eth1" and not o["home"]
    assert parse_args(["c.json", "--home"])["home"]
    assert "usage" in str(raises(ValueError, parse_args, []))
    assert "--coa needs a value" in str(raises(ValueError, parse_args, ["c.json", "--coa"]))
    assert "unknown option --x" in str(raises(ValueError, parse_args, ["c.json", "--x"]))
    assert "one config file" in str(raises(ValueError, parse_args, ["a.json", "b.json"]))


def test_static_coa_picks_and_checks_the_transport():
    c = cfg(["udp6", "udp4", "ip6"])
    assert static_coa("192.0.2.50", None, c) == (bytes([192, 0, 2, 50]), "udp4")
    coa, t = static_coa("2001:db8:a1::50", None, c)
    assert len(coa) == 16 and t == "udp6"
    assert static_coa("2001:db8:a1::50", "ip6", c)[1] == "ip6"
    assert "does not go with" in str(raises(ValueError, static_coa, "2001:db8:a1::50", "udp4", c))
    assert "does not go with" in str(raises(ValueError, static_coa, "192.0.2.50", "udp6", c))
    assert "not an IPv4 or IPv6" in str(raises(ValueError, static_coa, "nonsense", None, c))
    assert "not allowed" in str(raises(ValueError, static_coa, "192.0.2.50", None, cfg(["udp6"])))


def test_a_link_adapter_that_reads_into_a_buffer_shares_the_nodes_packet_buffer():
    from roam6 import node
    from roam6.node import app

    class Reading:                # the unix adapter's shape: buffer_size, Link(ifname, buf)
        buffer_size = 4096

        def __init__(self, ifname, buf=None):
            self.ifname, self.buf = ifname, buf

    class Polling:                # the MCU boards' shape: no buffer
        def __init__(self, ifname):
            self.ifname = ifname

    class LinkModule:             # stands in for the board's link.py
        pass

    path = "/tmp/roam6-test-node-app-%d.json" % (os.getpid() if hasattr(os, "getpid") else 0)
    with open(path, "w") as f:
        f.write(json.dumps({"nai": "b@example.test", "spi": 4096, "key": "00" * 16, "hoa": "2001:db8:aa::100",
                            "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1", "transports": ["udp6"]}))
    old, old_link = node.RX, sys.modules.get("link")
    try:
        sys.modules["link"] = LinkModule
        LinkModule.Link = Reading
        rc, cfg, plan = app.setup([path, "--iface", "eth1"])
        assert rc == 0 and cfg.iface == "eth1" and plan[0] == "link" and plan[3] == "eth1"
        lk = plan[1]
        assert lk.ifname == "eth1" and lk.buf is node.RX and node.TX is node.RX and len(node.RX) == 4096
        before = node.RX
        LinkModule.Link = Polling
        rc, cfg, plan = app.setup([path])
        assert rc == 0 and plan[1].ifname == "wlan0" and node.RX is before
    finally:
        node.RX = node.TX = old
        if old_link is None:
            sys.modules.pop("link", None)
        else:
            sys.modules["link"] = old_link
        os.remove(path)


def test_addressing_by_the_link_adapter():
    """config "addressing": "dna" hands the adapter the memory file beside the state file and the
    families of the transports; "dhcp" no file; an adapter that cannot address itself (the Wi-Fi
    boards': their stack owns DHCP) is refused with a message, not a traceback."""
    from roam6.node import app

    class Addressing:
        def __init__(self, ifname):
            self.ifname, self.asked = ifname, None

        def self_addressing(self, path, fams):
            self.asked = (path, fams)

    class Stack:
        def __init__(self, ifname):
            self.ifname = ifname

    class LinkModule:
        pass

    path = "/tmp/roam6-test-node-app-dna-%d.json" % (os.getpid() if hasattr(os, "getpid") else 0)
    base = {"nai": "b@example.test", "spi": 4096, "key": "00" * 16, "hoa": "2001:db8:aa::100",
            "home_prefix": "2001:db8:aa::/64", "ha": "2001:db8:aa::1", "ha_ipv4": "198.18.1.2",
            "transports": ["udp4"], "state_file": "/tmp/b.state"}
    old_link = sys.modules.get("link")
    try:
        sys.modules["link"] = LinkModule
        for mode, link_cls, want in (("dna", Addressing, ("/tmp/b.state.nets", [4])),
                                     ("dhcp", Addressing, (None, [4])), ("stack", Addressing, None)):
            LinkModule.Link = link_cls
            with open(path, "w") as f:
                f.write(json.dumps(dict(base, addressing=mode)))
            rc, _cfg, plan = app.setup([path])
            assert rc == 0 and plan[1].asked == want, (mode, plan[1].asked)
        LinkModule.Link = Stack
        with open(path, "w") as f:
            f.write(json.dumps(dict(base, addressing="dna")))
        rc, _cfg, _plan = app.setup([path])
        assert rc == 2
        with open(path, "w") as f:
            f.write(json.dumps(dict(base, addressing="yes")))
        assert app.setup([path])[0] == 2
    finally:
        if old_link is None:
            sys.modules.pop("link", None)
        else:
            sys.modules["link"] = old_link
        os.remove(path)
