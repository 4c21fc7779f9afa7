"""The home agent on a real FreeRADIUS (issue 18): two servers on one SQLite device store, the
real `roam6 ha` process, BUs sent by the test over UDP from an MN namespace.

    mn (198.18.1.10, 2001:db8:f1::10) --- ha (198.18.1.2, 2001:db8:f1::2 ; 2001:db8:f4::1) --- aaa
                                          home prefix 2001:db8:aa::/64         FreeRADIUS A 2001:db8:f4::2
                                                                               FreeRADIUS B 2001:db8:f4::3

Checks, in order on one topology (FreeRADIUS starts in ~0.1 s, the HA in ~0.5 s): the shipped
config passes `freeradius -CX`; a Reject carries no key (and would without the post-auth rule);
registration through AAA (BA signed with the key from the Accept, lifetime capped by the
server); wrong key -> 146; unknown NAI -> 129; accounting Start/Interim/Stop rows with the CoAs;
server A down -> failover to B; both down -> existing bindings refresh, a new device gets 130;
A back -> new devices register again; `roam6 provision --aaa` / --list / --revoke; RFC 5176
Disconnect-Request from radclient (ACK, binding gone, Stop; NAK 503 after; wrong secret and
unknown client ignored).
"""
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from pyrad import packet as rp
from pyrad.client import Client
from pyrad.dictionary import Dictionary

from roam6 import crypto
from roam6.wire.ipv6 import build_ipv6, decode_ipv6
from roam6_codec import mhopts as mo
from roam6_codec.mh import BindingRevocation, decode_mh
from roam6_codec.udp import build_udp

from ha_helpers import HA, V4MAPPED, a4, a6, build_bu, ntp_timestamp, parse_ba
from nshelp import Lines, TestNamespaces

from roam6_host.aaa import freeradius, provision_sql
from roam6_host.aaa.bench import start_freeradius
from roam6_host.cli import main as cli_main

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (make test runs as root)")

SECRET = "s3cret-for-tests"
MN4, MN6 = "198.18.1.10", "2001:db8:f1::10"
HA4, HA6 = ("198.18.1.2", 4191), ("2001:db8:f1::2", 4191)
V4COA = a4("192.0.2.100")
RAD_A, RAD_B = "2001:db8:f4::2", "2001:db8:f4::3"


def need_freeradius():
    if shutil.which("freeradius") is None or not os.path.exists(freeradius.SCHEMA):
        pytest.fail("FreeRADIUS is not installed: apt-get install freeradius freeradius-utils (deps/apt.txt)")


class Radius:
    """One FreeRADIUS in the aaa namespace, on its own address, config generated into a temp dir."""

    def __init__(self, n, ns, conf, db, addr, strip_reject=True):
        self.n, self.ns, self.conf, self.addr = n, ns, conf, addr
        freeradius.write_config(conf, db, SECRET, ["2001:db8:f4::/64", "::1", "127.0.0.1"], listen=(addr,),
                                strip_reject=strip_reject)
        self.proc = None

    def start(self):
        self.proc = start_freeradius(self.ns, self.conf)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class HAProcess:
    def __init__(self, ns, config):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "roam6_host", "ha", "--config", config],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out = Lines(self.proc)

    def wait_for(self, ev, timeout=10, **match):
        try:
            return self.out.until(lambda e: e.get("ev") == ev and all(e.get(k) == v for k, v in match.items()),
                                  timeout)[0]
        except AssertionError:
            raise AssertionError("no %r %r from the HA; output:\n%s"
                                 % (ev, match, "".join(self.out.log[-30:]))) from None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    need_freeradius()
    tmp = tmp_path_factory.mktemp("aaa")
    n = TestNamespaces()
    rads, hap = [], None
    try:
        ha, mn, aaa = n.add("ha"), n.add("mn"), n.add("aaa")
        n.veth(ha, "up0", mn, "wlan0")
        n.ip(ha, "addr", "add", "198.18.1.2/24", "dev", "up0")
        n.ip(ha, "addr", "add", "2001:db8:f1::2/64", "dev", "up0", "nodad")
        n.ip(mn, "addr", "add", MN4 + "/24", "dev", "wlan0")
        n.ip(mn, "addr", "add", MN6 + "/64", "dev", "wlan0", "nodad")
        n.ip(mn, "-6", "route", "add", "2001:db8:f4::/64", "via", "2001:db8:f1::2")   # (a stranger's DAE try)
        n.veth(ha, "r0", aaa, "eth0")
        n.ip(ha, "addr", "add", "2001:db8:f4::1/64", "dev", "r0", "nodad")
        for a in (RAD_A, RAD_B):
            n.ip(aaa, "addr", "add", a + "/64", "dev", "eth0", "nodad")
        n.ip(aaa, "link", "set", "lo", "up")
        db = str(tmp / "radius.sqlite")
        rads = [Radius(n, aaa, str(tmp / "rad-a"), db, RAD_A), Radius(n, aaa, str(tmp / "rad-b"), db, RAD_B)]
        for r in rads:
            r.start()
        secret = tmp / "radius-secret"
        secret.write_text(SECRET + "\n")
        os.chmod(secret, 0o600)
        cfg = tmp / "ha.json"
        cfg.write_text(json.dumps({
            "home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "ipv4": "198.18.1.2",
            "tun": "r6tun", "transports": ["udp4", "udp6"], "dad_ms": 0, "security": ["rfc4285", "ipsec"],
            "aaa": {"servers": [{"host": RAD_A}, {"host": RAD_B}], "secret_file": "radius-secret",
                    "timeout_ms": 200, "retries": 2, "nas_identifier": "ha-test", "reject_s": 2,
                    "dae_port": 3799}}))
        hap = HAProcess(ha, str(cfg))
        hap.wait_for("ready")
        yield {"n": n, "ns": (ha, mn, aaa), "db": db, "rads": rads, "ha": hap, "tmp": tmp}
    finally:
        if hap is not None:
            hap.stop()
        for r in rads:
            r.stop()
        n.teardown()


class MN:
    """A device as the HA sees it: NAI, SPI, key, HoA; BUs over udp4 or udp6 from the mn namespace."""

    def __init__(self, t, nai, spi, key, hoa):
        self.nai, self.spi, self.key, self.hoa = nai.encode(), spi, key, a6(hoa)
        n, (_ha, mn, _aaa) = t["n"], t["ns"]
        self.s4 = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0), timeout=3)
        self.s6 = n.socket(mn, socket.AF_INET6, socket.SOCK_DGRAM, bind=(MN6, 0), timeout=3)
        self.seq = 0
        self.hap = t["ha"]

    def bu(self, lifetime=600, transport="udp4", key=None, extra_options=()):
        self.seq += 1
        now = time.time_ns() // 1_000_000
        sock, dest = (self.s4, HA4) if transport == "udp4" else (self.s6, HA6)
        pkt = build_bu(key or self.key, self.spi, self.nai, self.hoa, HA, self.seq, lifetime, transport,
                       v4coa=V4COA, coa=a6(MN6), timestamp=ntp_timestamp(now, self.seq),
                       extra_options=extra_options)
        t0 = time.monotonic()
        sock.sendto(pkt, dest)
        while True:             # (tunnelled data, e.g. an ICMPv6 error for our upstream test packet, is skipped)
            data, _src = sock.recvfrom(2048)
            if len(data) > 40 and data[6] == 135:
                break
        self.rtt_ms = (time.monotonic() - t0) * 1000
        return data

    def ba(self, transport="udp4", **kw):
        data = self.bu(transport=transport, **kw)
        mac = V4MAPPED + V4COA if transport == "udp4" else a6(MN6)
        try:
            return parse_ba(data, key=self.key, mac_coa=mac, hoa=self.hoa)[1]
        except AssertionError:
            raise AssertionError("BA %r; HA log:\n%s" % (parse_ba(data)[1], "".join(self.hap.out.log[-15:]))) from None

    def ba_unsigned(self, **kw):
        _pkt, ba = parse_ba(self.bu(**kw))
        return ba


def radius_client(addr=RAD_A, secret=SECRET):
    return Client(server=addr, secret=secret.encode(), dict=Dictionary(freeradius.CLIENT_DICTIONARY))


def acct_rows(db, nai):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT status, coa, transport, nat, homeaddress, terminatecause, inputpackets, "
                           "inputoctets FROM roam6_acct_log "
                           "WHERE username=? ORDER BY id", (nai,)).fetchall()
    finally:
        con.close()


def wait_rows(db, nai, count, timeout=10.0):
    """The accounting rows of `nai` once there are `count` (FreeRADIUS writes them after the HA's
    Accounting-Request, retransmitted if late: seconds on a loaded machine), or what is there."""
    end = time.monotonic() + timeout
    while True:
        rows = acct_rows(db, nai)
        if len(rows) >= count or time.monotonic() > end:
            return rows
        time.sleep(0.05)


def test_shipped_config_is_accepted_by_freeradius_and_pyrad(tmp_path):
    need_freeradius()
    conf = tmp_path / "conf"
    freeradius.write_config(str(conf), str(tmp_path / "db.sqlite"), SECRET, ["2001:db8:f4::1"])
    p = subprocess.run(["freeradius", "-CX", "-d", str(conf)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "Configuration appears to be OK" in p.stdout + p.stderr, p.stdout[-2000:]
    d = Dictionary(freeradius.CLIENT_DICTIONARY)
    key = d.attributes["Roam6-MN-HA-Key"]
    assert key.vendor == "Roam6" and key.code == 1 and key.encrypt == 2 and key.type == "octets"
    assert d.vendors["Roam6"] == 32473
    assert d.attributes["Roam6-Home-Address"].type == "ipv6addr"
    assert oct(os.stat(conf / "clients.conf").st_mode & 0o777) == "0o600"   # it holds the shared secret


def test_reject_carries_no_key(topo, tmp_path):
    """A disabled device (Auth-Type := Reject) still has its radreply rows; FreeRADIUS adds them in
    authorize, so only the shipped post-auth rule keeps the key out of the Reject."""
    db = topo["db"]
    provision_sql.add_device(db, "disabled@example.test", 9001, bytes(range(16)), "2001:db8:aa::901")
    con = sqlite3.connect(db)
    con.execute("UPDATE radcheck SET value='Reject' WHERE username='disabled@example.test'")
    con.commit()
    con.close()
    c = radius_client()
    req = c.CreateAuthPacket(code=rp.AccessRequest, User_Name="disabled@example.test")
    req.add_message_authenticator()
    with topo["n"].inside(topo["ns"][2]):
        rep = c.SendPacket(req)
    assert rep.code == rp.AccessReject
    assert not [k for k in rep.keys() if str(k).startswith("Roam6")]
    assert b"\x00\x00\x7e\xd9" not in rep.raw_packet           # no Vendor-Specific of 32473 at all
    # the same request to a server without the rule: the key leaks (why the rule is shipped)
    leaky = Radius(topo["n"], topo["ns"][2], str(tmp_path / "leaky"), db, "2001:db8:f4::9", strip_reject=False)
    topo["n"].ip(topo["ns"][2], "addr", "add", "2001:db8:f4::9/64", "dev", "eth0", "nodad")
    leaky.start()
    try:
        c9 = radius_client("2001:db8:f4::9")
        with topo["n"].inside(topo["ns"][2]):
            rep = c9.SendPacket(c9.CreateAuthPacket(code=rp.AccessRequest, User_Name="disabled@example.test"))
        assert rep.code == rp.AccessReject and rep["Roam6-MN-HA-Key"] == [bytes(range(16))]
    finally:
        leaky.stop()
        topo["n"].ip(topo["ns"][2], "addr", "del", "2001:db8:f4::9/64", "dev", "eth0")


def test_registration_accounting_and_rejections_through_freeradius(topo):
    db, hap = topo["db"], topo["ha"]
    key = bytes(range(100, 116))
    provision_sql.add_device(db, "b1@example.test", 7001, key, "2001:db8:aa::101", max_lifetime=120)
    m = MN(topo, "b1@example.test", 7001, key, "2001:db8:aa::101")

    # first BU: held while the HA asks FreeRADIUS; BA signed with the key from the Accept
    ba = m.ba(lifetime=600)
    assert ba.status == 0 and ba.seq == m.seq
    assert ba.lifetime * 4 == 120            # Roam6-Max-Lifetime caps the 600 s asked for
    ev = hap.wait_for("aaa_accept", nai="b1@example.test")
    assert ev["spi"] == 7001 and ev["hoa"] == "2001:db8:aa::101"
    hap.wait_for("binding_added", hoa="2001:db8:aa::101")
    # a refresh: served from the cached SA
    assert m.ba().status == 0
    # move to udp6 (new CoA and transport): Interim-Update; then deregister: Stop
    assert m.ba(transport="udp6").status == 0
    hap.wait_for("binding_moved", hoa="2001:db8:aa::101")
    # two packets up the tunnel: counted into the Stop record
    up = build_ipv6(m.hoa, a6("2001:db8:f3::2"), 17, build_udp(5000, 7000, b"up", src=m.hoa, dst=a6("2001:db8:f3::2")))
    m.s6.sendto(up, HA6)
    m.s6.sendto(up, HA6)
    time.sleep(0.1)
    assert m.ba(transport="udp6", lifetime=0).status == 0
    hap.wait_for("binding_removed", hoa="2001:db8:aa::101")
    rows = wait_rows(db, "b1@example.test", 3)
    assert [r[0] for r in rows] == ["Start", "Interim-Update", "Stop"], rows
    assert rows[0][1].startswith("192.0.2.100 via 198.18.1.10 port ") and rows[0][2] == "udp4" and rows[0][3] == 1
    assert rows[1][1].startswith(MN6 + " via " + MN6 + " port ") and rows[1][2] == "udp6" and rows[1][3] == 0
    assert rows[2][5] == "User-Request" and all(r[4] == "2001:db8:aa::101" for r in rows)
    assert rows[2][6] == 2 and rows[2][7] == 2 * len(up) and rows[0][6] == 0, rows
    con = sqlite3.connect(db)
    radacct = con.execute("SELECT username, acctstoptime, acctterminatecause, framedipv6address FROM radacct "
                          "WHERE username='b1@example.test'").fetchall()
    con.close()
    assert len(radacct) == 1 and radacct[0][1] and radacct[0][2] == "User-Request"

    # the wrong key: the Accept gives the HA the real one, the BU's MAC fails -> 146 (signed)
    provision_sql.add_device(db, "b2@example.test", 7002, bytes(16), "2001:db8:aa::102")
    m2 = MN(topo, "b2@example.test", 7002, bytes(range(16)), "2001:db8:aa::102")
    _pkt, ba = parse_ba(m2.bu())
    assert ba.status == 146

    # an NAI the server does not know: Access-Reject -> BA 129 (unsigned: the HA has no key)
    m3 = MN(topo, "stranger@example.test", 7003, bytes(16), "2001:db8:aa::103")
    assert m3.ba_unsigned().status == 129
    hap.wait_for("aaa_reject", nai="stranger@example.test")
    assert m3.ba_unsigned().status == 129           # remembered reject_s: no second request
    assert not [r for r in acct_rows(db, "stranger@example.test")]


def test_failover_server_down_and_back(topo):
    db, hap, (rad_a, rad_b) = topo["db"], topo["ha"], topo["rads"]
    keys = {i: bytes([i] * 16) for i in range(1, 5)}
    for i in keys:
        provision_sql.add_device(db, "f%d@example.test" % i, 7100 + i, keys[i], "2001:db8:aa::11%d" % i)
    m1 = MN(topo, "f1@example.test", 7101, keys[1], "2001:db8:aa::111")
    assert m1.ba().status == 0

    rad_a.stop()                 # A down: retransmit (2 x 200 ms), then B answers
    m2 = MN(topo, "f2@example.test", 7102, keys[2], "2001:db8:aa::112")
    assert m2.ba().status == 0
    assert 300 <= m2.rtt_ms < 2000, m2.rtt_ms
    hap.wait_for("aaa_server_down", server="[%s]:1812" % RAD_A)

    rad_b.stop()                 # both down: existing bindings go on, a new device is told "later"
    assert m1.ba().status == 0 and m2.ba().status == 0
    m3 = MN(topo, "f3@example.test", 7103, keys[3], "2001:db8:aa::113")
    assert m3.ba_unsigned().status == 130
    hap.wait_for("aaa_unavailable", nai="f3@example.test")

    rad_a.start()                # A back: the next first registration goes through
    assert m3.ba().status == 0
    hap.wait_for("aaa_server_up")
    rad_b.start()
    assert hap.proc.poll() is None


class _Ran:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def test_provision_cli_against_the_sql_store(topo, tmp_path, capsys):
    db = topo["db"]

    def run(*a):            # `roam6 provision --aaa DB ...` in this process (the CLI's own main)
        rc = cli_main(["provision", "--aaa", db] + list(a))
        out = capsys.readouterr()
        return _Ran(rc, out.out, out.err)

    p = run("--nai", "cli@example.test", "--hoa", "2001:db8:aa::150", "--ha", "2001:db8:aa::1",
            "--transports", "udp6", "--out", str(tmp_path / "cli.json"), "--ipv4-hoa", "198.18.50.20")
    assert p.returncode == 0, p.stderr
    cfg = json.loads((tmp_path / "cli.json").read_text())
    dev = {e["nai"]: e for e in provision_sql.devices(db)}["cli@example.test"]
    assert dev["spi"] == cfg["spi"] and dev["key"] == cfg["key"] and dev["hoa"] == "2001:db8:aa::150"
    # RFC 5555: the IPv4 HoA in config.json and as Framed-IP-Address in the device's Access-Accept
    assert cfg["ipv4_hoa"] == "198.18.50.20" and dev["ipv4_hoa"] == "198.18.50.20"
    c = radius_client()
    with topo["n"].inside(topo["ns"][2]):
        rep = c.SendPacket(c.CreateAuthPacket(code=rp.AccessRequest, User_Name="cli@example.test"))
    assert rep.code == rp.AccessAccept and rep["Framed-IP-Address"] == ["198.18.50.20"]
    p = run("--nai", "twin@example.test", "--hoa", "2001:db8:aa::151", "--ha", "2001:db8:aa::1",
            "--transports", "udp6", "--out", str(tmp_path / "twin.json"), "--ipv4-hoa", "198.18.50.20")
    assert p.returncode != 0 and "already belongs to cli@example.test" in p.stderr and "Traceback" not in p.stderr
    assert oct(os.stat(db).st_mode & 0o777) == "0o600"
    # the device registers through FreeRADIUS with what provision wrote
    m = MN(topo, "cli@example.test", cfg["spi"], bytes.fromhex(cfg["key"]), "2001:db8:aa::150")
    assert m.ba(transport="udp6").status == 0
    p = run("--list")
    assert p.returncode == 0 and "cli@example.test" in p.stdout and cfg["key"] not in p.stdout
    p = run("--nai", "cli@example.test", "--hoa", "2001:db8:aa::150", "--ha", "2001:db8:aa::1",
            "--transports", "udp6", "--out", str(tmp_path / "again.json"))
    assert p.returncode != 0 and "already provisioned" in p.stderr and "Traceback" not in p.stderr
    p = run("--revoke", "cli@example.test")
    assert p.returncode == 0, p.stderr
    assert "cli@example.test" not in {e["nai"] for e in provision_sql.devices(db)}
    c = radius_client()
    with topo["n"].inside(topo["ns"][2]):
        rep = c.SendPacket(c.CreateAuthPacket(code=rp.AccessRequest, User_Name="cli@example.test"))
    assert rep.code == rp.AccessReject
    p = run("--revoke", "cli@example.test")
    assert p.returncode != 0 and "is not in" in p.stderr and "Traceback" not in p.stderr


def radclient(n, ns, secret, nai, timeout=3, retries=3):
    # an answer that is due may come late on a loaded machine: wait up to 3 s, send it up to 3 times
    # (the HA answers a retransmission with its first reply, aaa/dae.py); a request that must get no
    # answer is sent once with a short wait
    p = subprocess.run(["ip", "netns", "exec", ns, "radclient", "-x", "-t", str(timeout), "-r", str(retries),
                        "[2001:db8:f4::1]:3799", "disconnect", secret], input='User-Name = "%s"\n' % nai,
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def test_disconnect_request_ends_the_binding(topo):
    if shutil.which("radclient") is None:
        pytest.fail("radclient is not installed: apt-get install freeradius-utils (deps/apt.txt)")
    n, (_ha, mn, aaa), db, hap = topo["n"], topo["ns"], topo["db"], topo["ha"]
    key = bytes(range(200, 216))
    provision_sql.add_device(db, "dis@example.test", 7201, key, "2001:db8:aa::121")
    m = MN(topo, "dis@example.test", 7201, key, "2001:db8:aa::121")
    assert m.ba().status == 0
    hap.wait_for("binding_added", hoa="2001:db8:aa::121")
    # the wrong shared secret, then a client that is not an AAA server: nothing happens
    rc, out = radclient(n, aaa, "not-the-secret", "dis@example.test", timeout=0.3, retries=1)
    assert rc != 0, out
    assert "Authenticator" in hap.wait_for("dae_refused")["reason"]
    rc, out = radclient(n, mn, SECRET, "dis@example.test", timeout=0.3, retries=1)
    assert rc != 0, out
    hap.wait_for("dae_refused", client="2001:db8:f1::10")
    assert m.ba().status == 0               # still bound: a refresh is accepted
    # the real thing: ACK, binding gone, accounting Stop (Admin-Reset)
    rc, out = radclient(n, aaa, SECRET, "dis@example.test")
    assert rc == 0 and "Disconnect-ACK" in out, out
    hap.wait_for("binding_removed", hoa="2001:db8:aa::121", reason="disconnect")
    # the MN is told: a Binding Revocation Indication (RFC 5846), signed with its MN-HA key
    data, _src = m.s4.recvfrom(2048)
    pkt = decode_ipv6(data)
    bri = decode_mh(pkt.payload)
    assert isinstance(bri, BindingRevocation) and bri.br_type == 1 and bri.trigger == 1 and pkt.dst == m.hoa
    auth = bri.options[-1]
    raw = bri.raw
    assert auth.spi == 7201 and auth.auth_data == crypto.mnha_auth_data(
        key, V4MAPPED + V4COA, m.hoa, raw[:4] + b"\0\0" + raw[6:len(raw) - 12])
    rows = wait_rows(db, "dis@example.test", 2)
    assert [r[0] for r in rows] == ["Start", "Stop"] and rows[-1][5] == "Admin-Reset", rows
    rc, out = radclient(n, aaa, SECRET, "dis@example.test")
    assert rc != 0 and "Disconnect-NAK" in out and "Session-Context-Not-Found" in out, out
    assert hap.proc.poll() is None


def test_ha_status_over_the_root_only_control_socket(topo):
    (ha, mn, _aaa), db = topo["ns"], topo["db"]
    key = bytes(range(50, 66))
    provision_sql.add_device(db, "st@example.test", 7301, key, "2001:db8:aa::131")
    m = MN(topo, "st@example.test", 7301, key, "2001:db8:aa::131")
    assert m.ba(transport="udp6").status == 0
    t_ba = time.monotonic()
    p = subprocess.run(["ip", "netns", "exec", ha, sys.executable, "-m", "roam6_host", "ha", "status", "--json"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    since = time.monotonic() - t_ba      # (the status process may take seconds to start on a loaded machine)
    doc = json.loads(p.stdout)
    row, = [r for r in doc["bindings"] if r["nai"] == "st@example.test"]
    assert row["hoa"] == "2001:db8:aa::131" and row["coa"] == MN6 and row["transport"] == "udp6"
    assert 0 < row["lifetime_left_s"] <= row["lifetime"] and row["last_bu_s_ago"] <= since + 1, (row, since)
    assert doc["aaa"]["accepts"] >= 1
    p = subprocess.run(["ip", "netns", "exec", ha, sys.executable, "-m", "roam6_host", "ha", "status"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "st@example.test" in p.stdout and "AAA:" in p.stdout, p.stdout + p.stderr
    # anyone but root is refused, and learns nothing
    probe = ("import socket; s = socket.socket(socket.AF_UNIX); s.connect('\\0roam6-ha-r6tun'); "
             "s.sendall(b'status\\n'); print(s.recv(4096).decode())")
    p = subprocess.run(["ip", "netns", "exec", ha, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "/usr/bin/python3", "-c", probe], capture_output=True, text=True, timeout=30)
    assert "refused" in p.stdout and "st@example.test" not in p.stdout, p.stdout + p.stderr
    # another namespace sees no HA at all
    p = subprocess.run(["ip", "netns", "exec", mn, sys.executable, "-m", "roam6_host", "ha", "status"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "no home agent" in p.stderr and "Traceback" not in p.stderr


def vendor_rows(db, nai):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT status, vendor FROM roam6_acct_log WHERE username=? ORDER BY id", (nai,)).fetchall()
    finally:
        con.close()


def ha_status(ha):
    p = subprocess.run(["ip", "netns", "exec", ha, sys.executable, "-m", "roam6_host", "ha", "status", "--json"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_vendor_options_kept_per_binding_shown_and_accounted(topo):
    """RFC 5094 / 5096 options from the device: any vendor ID carried (never fatal), kept per
    binding, in `roam6 ha status` and in the accounting rows FreeRADIUS writes; over the 64-byte
    cap the BU is still accepted and its vendor data not kept."""
    (ha, _mn, _aaa), db = topo["ns"], topo["db"]
    key = bytes(range(90, 106))
    provision_sql.add_device(db, "vso@example.test", 7401, key, "2001:db8:aa::141")
    m = MN(topo, "vso@example.test", 7401, key, "2001:db8:aa::141")
    vso = [mo.VendorSpecific(32473, 1, b"fw 1.4"), mo.VendorSpecific(4294967295, 255, b"\x00\x01"),
           mo.ExperimentalOption(b"\xab")]
    assert m.ba(extra_options=vso).status == 0
    row, = [r for r in ha_status(ha)["bindings"] if r["nai"] == "vso@example.test"]
    assert row["vendor"] == [{"vendor_id": 32473, "subtype": 1, "data": b"fw 1.4".hex()},
                             {"vendor_id": 4294967295, "subtype": 255, "data": "0001"},
                             {"experimental": True, "data": "ab"}], row
    p = subprocess.run(["ip", "netns", "exec", ha, sys.executable, "-m", "roam6_host", "ha", "status"],
                       capture_output=True, text=True, timeout=30)
    assert "vendor 32473/1: %s" % b"fw 1.4".hex() in p.stdout, p.stdout
    # over the cap: accepted, vendor data kept as it was, counted
    before = ha_status(ha).get("vendor_oversize", 0)
    assert m.ba(extra_options=[mo.VendorSpecific(32473, 2, bytes(65))]).status == 0
    doc = ha_status(ha)
    row, = [r for r in doc["bindings"] if r["nai"] == "vso@example.test"]
    assert doc["vendor_oversize"] == before + 1 and len(row["vendor"]) == 3
    # a move: Interim-Update with the new vendor data
    assert m.ba(transport="udp6", extra_options=[mo.VendorSpecific(32473, 1, b"fw 1.5")]).status == 0
    wait_rows(db, "vso@example.test", 2)
    rows = vendor_rows(db, "vso@example.test")
    assert rows[0] == ("Start", "32473:1:%s 4294967295:255:0001 exp:ab" % b"fw 1.4".hex()), rows
    assert rows[1] == ("Interim-Update", "32473:1:%s" % b"fw 1.5".hex()), rows
    assert topo["ha"].proc.poll() is None



def test_ipsec_device_whose_psk_only_the_store_knows_through_the_real_ha(topo):
    """Issue 19 through the real `roam6 ha` (its driver hooks, ha/ipsecaaa.py): the firmware's IKEv2
    Initiator on UDP 4500 from the mn namespace gets its CHILD_SA and HoA with a PSK that is only in
    FreeRADIUS's store; an NAI the store does not know gets AUTHENTICATION_FAILED."""
    from roam6.ipsec import ikev2 as k
    from ipsec_mn import EspMN
    psk = os.urandom(32)
    provision_sql.add_device(topo["db"], "ike@example.test", 0, b"", "2001:db8:aa::160", psk=psk)
    n, (_ha, mn, _aaa) = topo["n"], topo["ns"]
    s = n.socket(mn, socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 4500), timeout=0.05)

    def handshake(nai, hoa):
        dev = EspMN(psk, nai, a6(hoa), HA, (socket.inet_aton(MN4), 4500), (socket.inet_aton(HA4[0]), 4500),
                    time.monotonic_ns() // 1_000_000)
        evs, end = [], time.monotonic() + 5
        while time.monotonic() < end and not any(e[0] in ("child_up", "failed") for e in evs):
            now = time.monotonic_ns() // 1_000_000
            for data, _dst in dev.ike.datagrams_to_send(now):
                s.sendto(data, (HA4[0], 4500))
            try:
                dev.ike.receive(s.recv(4096), time.monotonic_ns() // 1_000_000)
            except socket.timeout:
                pass
            t = dev.ike.get_timer()
            if t is not None and t <= time.monotonic_ns() // 1_000_000:
                dev.ike.handle_timer(time.monotonic_ns() // 1_000_000)
            evs += dev.events()
        return evs

    try:
        evs = handshake("ike@example.test", "2001:db8:aa::160")
        assert "child_up" in [e[0] for e in evs], (evs, "".join(topo["ha"].out.log[-15:]))
        assert ("hoa", a6("2001:db8:aa::160"), 128) in evs
        topo["ha"].wait_for("aaa_accept", nai="ike@example.test", security="ipsec")
        evs = handshake("stranger@example.test", "2001:db8:aa::161")
        assert ("failed", "auth", k.N_AUTH_FAILED) in evs, evs
    finally:
        s.close()
        provision_sql.revoke(topo["db"], "ike@example.test")
