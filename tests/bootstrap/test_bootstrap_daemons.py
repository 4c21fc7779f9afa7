"""The MN's bootstrap clients ON MicroPython against the real Kea DHCPv6 (RFC 6610 options) and the
real dnsmasq (RFC 5026 SRV + A/AAAA), in namespaces made here. Configs come from the bench's own
generators (hil/roam6_hil/daemons.py), so the MN and the bench are checked against each other."""
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from bootnet import HERE, micropython
from nshelp import TestNamespaces, sh
from roam6_hil import daemons

HA6 = "20010db800aa00000000000000000001"
HA4 = "c6120102"
PREFIX = ["20010db800aa00000000000000000000", 64]
CFG = {"nai": "board1@example.test", "domain": "example.test", "ha": "bootstrap", "hoa": "bootstrap",
       "home_prefix": "bootstrap", "bootstrap": ["dhcpv6", "dns", "static"]}


def listening(pid, table, port_hex):
    try:
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            return any(line.split()[1].endswith(":" + port_hex) for line in list(f)[1:])
    except OSError:
        return False


def wait_listening(proc, table, port_hex, what, timeout=5.0):
    end = time.monotonic() + timeout
    while not listening(proc.pid, table, port_hex):
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s" % (what, proc.returncode))
        if time.monotonic() > end:
            raise AssertionError("%s not listening after %.0f s" % (what, timeout))
        time.sleep(0.01)


def make_lan(n, workdir, v4=True):
    """Namespaces `ap` (srv0: 2001:db8:a1::1/64, 192.0.2.1/24) and `b` (the board, wlan0)."""
    ap, board = n.add("ap"), n.add("b")
    for ns in (ap, board):
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
           "net.ipv6.conf.default.accept_dad=0")
    n.ip(ap, "link", "add", "srv0", "address", "02:00:00:00:a0:01", "type", "veth", "peer", "name", "wlan0",
         "address", "02:00:00:00:b0:01", "netns", board)
    n.ip(ap, "addr", "add", "2001:db8:a1::1/64", "dev", "srv0", "nodad")
    n.ip(board, "addr", "add", "2001:db8:a1::50/64", "dev", "wlan0", "nodad")
    if v4:
        n.ip(ap, "addr", "add", "192.0.2.1/24", "dev", "srv0")
        n.ip(board, "addr", "add", "192.0.2.50/24", "dev", "wlan0")
    n.ip(ap, "link", "set", "srv0", "up")
    n.ip(board, "link", "set", "wlan0", "up")
    etc = "/etc/netns/" + board  # what `ip netns exec` shows as the board's /etc/resolv.conf
    os.makedirs(etc, exist_ok=True)
    n.etc_dirs = getattr(n, "etc_dirs", []) + [etc]
    with open(os.path.join(etc, "resolv.conf"), "w") as f:
        f.write("nameserver 2001:db8:a1::1\nnameserver 192.0.2.1\n" if v4 else "")
    deadline = time.monotonic() + 5
    while "tentative" in n.ip(ap, "-6", "addr", "show", "dev", "srv0").stdout and time.monotonic() < deadline:
        time.sleep(0.01)
    return ap, board


@pytest.fixture(scope="module")
def lan(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("these tests build network namespaces: run them as root (make test does)")
    n = TestNamespaces()
    work = str(tmp_path_factory.mktemp("bootstrap"))
    try:
        ap, board = make_lan(n, work)
        conf = os.path.join(work, "kea.json")
        with open(conf, "w") as f:
            json.dump(daemons.kea_conf("srv0", work, "2001:db8:a1::1"), f)
        env = dict(os.environ, KEA_PIDFILE_DIR=work, KEA_LOCKFILE_DIR=work, KEA_LOG_FILE_DIR=work)

        def start_kea():
            p = n.popen(ap, ["kea-dhcp6", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            wait_listening(p, "udp6", "0223", "kea-dhcp6")
            return p

        n.start_kea = start_kea
        kea = start_kea()
        dconf = os.path.join(work, "dnsmasq.conf")
        with open(dconf, "w") as f:
            f.write(daemons.dnsmasq_conf("srv0", "192.0.2.1", None, None, work))
        dm = n.popen(ap, ["dnsmasq", "-k", "-C", dconf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(dm, "udp", "0035", "dnsmasq")
        wait_listening(dm, "udp6", "0035", "dnsmasq")  # bind-interfaces: every address of srv0
        n.resolv = os.path.join("/etc/netns", board, "resolv.conf")
        n.kea = kea
        yield n, ap, board
    finally:
        n.teardown()
        for d in getattr(n, "etc_dirs", []):
            sh("rm", "-rf", d)


def bootstrap(n, board, cfg, **opts):
    out = micropython(n, board, "mp_bootstrap.py", json.dumps(cfg), json.dumps(opts))
    res = out.next(30)
    print(json.dumps({"benchmark": "bootstrap", "opts": opts, "order": cfg["bootstrap"], **res}))
    return res


def test_dhcpv6_from_kea_gives_ha_prefix_and_name(lan):
    n, ap, board = lan
    r = bootstrap(n, board, dict(CFG, bootstrap=["dhcpv6"]))
    assert r["have_ip6"] and r["result"] == {"method": "dhcpv6", "ha": [HA6], "ha_ipv4": [],
                                             "ha_fqdn": "ha.example.test",
                                               "refresh_s": 600, "home_prefix": PREFIX, "container": 69}, r
    assert r["ms"] < 1000, r  # one exchange, no retransmission
    # without an NAI there is no realm to identify: the Unrestricted information is used
    cfg = dict(CFG, bootstrap=["dhcpv6"])
    del cfg["nai"]
    r = bootstrap(n, board, cfg)
    assert r["result"]["container"] == 70 and r["result"]["ha"] == [HA6], r


def test_dns_srv_from_dnsmasq_gives_both_addresses(lan):
    n, ap, board = lan
    r = bootstrap(n, board, dict(CFG, bootstrap=["dns"]))  # asked over IPv6 (first in resolv.conf)
    assert r["dns_servers"] == ["20010db800a100000000000000000001", "c0000201"]
    assert r["result"] == {"method": "dns", "ha": [HA6], "ha_ipv4": [HA4], "ha_fqdn": "ha.example.test",
                           "refresh_s": None, "home_prefix": None, "container": None}, r


def test_dns_tries_the_next_server_when_the_first_is_silent(lan):
    n, ap, board = lan
    with open(n.resolv) as f:
        saved = f.read()
    try:
        with open(n.resolv, "w") as f:
            f.write("nameserver 192.0.2.99\nnameserver 192.0.2.1\n")  # nobody at .99
        r = bootstrap(n, board, dict(CFG, bootstrap=["dns"]))
    finally:
        with open(n.resolv, "w") as f:
            f.write(saved)
    assert r["result"]["method"] == "dns" and r["result"]["ha_ipv4"] == [HA4], r
    assert 1000 <= r["ms"] < 2000, r  # one timeout on the first server, then the second answers


def test_sequence_falls_back_when_the_dhcpv6_server_is_gone(lan):
    n, ap, board = lan
    n.kea.kill()
    n.kea.wait(5)
    try:
        r = bootstrap(n, board, dict(CFG, home_prefix="2001:db8:aa::/64"), budget_ms=1200)
    finally:
        n.kea = n.start_kea()  # the module's other tests need the server: whatever order they run in
    assert r["result"]["method"] == "dns" and r["result"]["ha"] == [HA6] and r["result"]["home_prefix"] == PREFIX, r
    assert r["notes"] == ["dhcpv6: no answer within 1200 ms"], r
    assert 1200 <= r["ms"] < 3000, r


HOSTILE = textwrap.dedent(r'''
    # A hostile DHCPv6 "server": answers every Information-request with garbage, a foreign xid,
    # an endless name-compression loop, bad lengths: never a valid Reply.
    import socket, struct, sys
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::", 547))
    mreq = socket.inet_pton(socket.AF_INET6, "ff02::1:2") + struct.pack("@I", socket.if_nametoindex("srv0"))
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    print("ready", flush=True)
    n = 0
    while True:
        data, peer = s.recvfrom(2000)
        xid = data[1:4]
        cid = data[4:4 + 4 + struct.unpack(">H", data[6:8])[0]]
        sid = struct.pack(">HH", 2, 10) + bytes(10)
        haa = struct.pack(">HH", 72, 16) + bytes(15) + b"\x01"
        for bad in (b"\x07", b"\x07" + xid + b"\x00\x02\xff\xff",
                    b"\x07" + bytes([xid[0] ^ 1]) + xid[1:] + cid + sid + struct.pack(">HH", 70, 20) + haa,
                    b"\x07" + xid + cid + sid + struct.pack(">HH", 70, 6) + struct.pack(">HH", 73, 2) + b"\xc0\x00",
                    b"\x07" + xid + cid + sid + struct.pack(">HH", 70, 4) + struct.pack(">HH", 71, 40)):
            s.sendto(bad, peer)
            n += 1
        print("sent", n, flush=True)
''')


def test_hostile_dhcpv6_replies_are_survived(tmp_path):
    n = TestNamespaces()
    try:
        ap, board = make_lan(n, str(tmp_path), v4=False)
        p = n.popen(ap, [sys.executable, "-c", HOSTILE], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        r = bootstrap(n, board, dict(CFG, ha="2001:db8:aa::1", home_prefix="2001:db8:aa::/64"), budget_ms=1500)
        # the MN ignored every bad reply, kept retransmitting, then used its static config
        assert r["notes"] == ["dhcpv6: no answer within 1500 ms", "dns: no DNS server on this link"], r
        assert r["result"]["method"] == "static" and r["result"]["ha"] == [HA6], r
        p.kill()
        sent = [line for line in p.stdout.read().split("\n") if line.startswith("sent")]
        assert len(sent) >= 2, sent  # at least two Information-requests were answered with garbage
    finally:
        n.teardown()
        for d in getattr(n, "etc_dirs", []):
            sh("rm", "-rf", d)


CPYTHON_CLIENT = textwrap.dedent(r'''
    # The same adapter and driver on CPython (the firmware runs on both).
    import asyncio, json, sys
    import link
    from roam6.node.boot import run_bootstrap
    lk = link.Link("wlan0")
    have6 = any(e[0] == "addr" and e[1] == 6 for e in lk.start())
    b = asyncio.run(run_bootstrap(json.loads(sys.argv[1]), lk.mac, have6, lk.dns_servers(), lk.ifname, dhcp_delay_ms=0))
    r = b.result
    print(json.dumps({"method": r["method"], "ha": [a.hex() for a in r["ha"]],
                      "ha_ipv4": [a.hex() for a in r["ha_ipv4"]]}))
''')


def test_same_driver_on_cpython(lan):
    n, ap, board = lan
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(os.path.dirname(os.path.dirname(HERE)), "firmware"),
                                                       os.path.join(os.path.dirname(os.path.dirname(HERE)), "boards",
                                                                    "unix")]))
    p = subprocess.run(["ip", "netns", "exec", board, sys.executable, "-c", CPYTHON_CLIENT,
                        json.dumps(dict(CFG, bootstrap=["dns"]))], capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"method": "dns", "ha": [HA6], "ha_ipv4": [HA4]}


HOSTILE_DNS = textwrap.dedent(r'''
    # A DNS "server" that answers each query first with junk (cut header, wrong id, a compression
    # loop, an answer from another port: the last two name an evil HA), then with a correct SRV
    # answer (A/AAAA in the additional section).
    import socket, struct
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("192.0.2.1", 53))
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("192.0.2.1", 5353))
    print("ready", flush=True)
    while True:
        q, peer = s.recvfrom(600)
        qid, question = q[:2], q[12:]
        hdr = lambda an, ar: qid + struct.pack(">HHHHH", 0x8180, 1, an, 0, ar)
        loop = hdr(1, 0) + question + b"\xc0\x2a" + struct.pack(">HHIH", 33, 1, 60, 8) + b"\0\0\0\0\0\0\xc0\x2a"
        rr = lambda t, d: b"\x02ha\xc0\x18" + struct.pack(">HHIH", t, 1, 60, len(d)) + d
        answer = lambda ha6: (hdr(1, 2) + question + b"\xc0\x0c" + struct.pack(">HHIH", 33, 1, 60, 11)
                              + struct.pack(">HHH", 0, 0, 4191) + b"\x02ha\xc0\x18"
                              + rr(28, bytes.fromhex(ha6)) + rr(1, bytes([198, 18, 1, 2])))
        evil = answer("20010db8666600000000000000000666")  # taken only if a check failed
        for bad in (q[:5], b"\xff\xff" + evil[2:], loop):
            s.sendto(bad, peer)
        other.sendto(evil, peer)
        s.sendto(answer("20010db800aa00000000000000000001"), peer)
        print("answered", flush=True)
''')


def test_hostile_dns_answers_are_ignored_and_the_good_one_taken(tmp_path):
    n = TestNamespaces()
    try:
        ap, board = make_lan(n, str(tmp_path))
        with open(os.path.join("/etc/netns", board, "resolv.conf"), "w") as f:
            f.write("nameserver 192.0.2.1\n")
        p = n.popen(ap, [sys.executable, "-c", HOSTILE_DNS], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        r = bootstrap(n, board, dict(CFG, bootstrap=["dns"]))
        assert r["result"] == {"method": "dns", "ha": [HA6], "ha_ipv4": [HA4], "ha_fqdn": "ha.example.test",
                               "refresh_s": None, "home_prefix": None, "container": None}, r
        assert r["ms"] < 500, r  # no timeout: the junk did not stop it waiting for the real answer
        p.kill()
        assert p.stdout.read().count("answered") == 1
    finally:
        n.teardown()
        for d in getattr(n, "etc_dirs", []):
            sh("rm", "-rf", d)
