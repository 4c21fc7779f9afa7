"""IPsec devices whose IKEv2 PSK only the AAA server knows (issue 19, ha/ipsecaaa.py), against a
real FreeRADIUS on its SQLite store (in a namespace of the test's; the HA's RADIUS sockets are
made in that namespace). The HA side runs in this process, sans-IO (IpsecHA + BindingCache + the
AaaAgent's real RadiusClient); the MN is the firmware's IKEv2 Initiator on CPython (ipsec_mn.py).

Checks: `roam6 provision --aaa DB --security ipsec` writes Roam6-IKE-PSK + HoA (no SPI/key) and
config.json with the same PSK; the device's IKE_AUTH is held while FreeRADIUS answers, then gets
its CHILD_SA and the HoA from the store, and a BU inside ESP registers; a second IKE_AUTH of the
same NAI needs no request; the background refresh keeps it, and after a revoke in the store its Reject
drops the device, its SAs and binding; a wrong PSK gets AUTHENTICATION_FAILED after the Accept; an unknown NAI
gets AUTHENTICATION_FAILED at the Reject, and again from the reject memory without a request; an
unreachable server -> AUTHENTICATION_FAILED; the store holds no RFC 4285 key or SPI for it.
"""
import json
import os
import select
import shutil
import subprocess
import time
import types

import pytest

from roam6.ipsec import ikev2 as k

from ha_helpers import HA, PREFIX, a6
from ipsec_mn import EspMN
from nshelp import TestNamespaces

from roam6_host.aaa import freeradius, provision_sql
from roam6_host.aaa.agent import AaaAgent
from roam6_host.aaa.bench import start_freeradius
from roam6_host.aaa.config import parse_aaa
from roam6_host.cli import main as cli_main
from roam6_host.ha.cache import BindingCache
from roam6_host.ha.ipsecaaa import attach
from roam6_host.ha.ipsecconf import IpsecPeer
from roam6_host.ha.ipsecmh import IpsecHA

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (make test runs as root)")

SECRET = "s3cret-ipsec-aaa"
RAD = "2001:db8:f4::2"
NAI, HOA = "ikeaaa@example.test", "2001:db8:aa::340"
COA = ("2001:db8:a1::7", 4500)
MNLOCAL = (a6(COA[0]), 4500)


class Log:
    def __init__(self):
        self.lines = []

    def __call__(self, ev, **f):
        self.lines.append(dict(f, ev=ev))

    def once(self, key, ev, **f):
        self(ev, **f)


def need_freeradius():
    if shutil.which("freeradius") is None or not os.path.exists(freeradius.SCHEMA):
        pytest.fail("FreeRADIUS is not installed: apt-get install freeradius freeradius-utils (deps/apt.txt)")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    need_freeradius()
    tmp = tmp_path_factory.mktemp("ipsecaaa")
    n = TestNamespaces()
    proc = None
    try:
        aaa = n.add("aaa")
        n.ip(aaa, "link", "set", "lo", "up")
        n.ip(aaa, "addr", "add", RAD + "/64", "dev", "lo", "nodad")
        db = str(tmp / "radius.sqlite")
        conf = str(tmp / "rad")
        freeradius.write_config(conf, db, SECRET, ["2001:db8:f4::/64", "::1"], listen=(RAD,))
        proc = start_freeradius(aaa, conf)
        yield types.SimpleNamespace(n=n, aaa=aaa, db=db, tmp=tmp)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        n.teardown()


def make_ha(w, servers=None, reject_s=5):
    log = Log()
    cache = BindingCache(HA, PREFIX, {})
    ipsec = IpsecHA([], HA, "ha.test", 0, log=log)
    cache.esp_sas = ipsec.cache_sas
    secret = w.tmp / "secret"
    secret.write_text(SECRET + "\n")
    os.chmod(secret, 0o600)
    cfg = parse_aaa({"servers": servers or [{"host": RAD}], "secret_file": str(secret), "timeout_ms": 150,
                     "retries": 2, "reject_s": reject_s, "accounting": False}, str(w.tmp))
    import ipaddress
    agent = AaaAgent(cache, cfg, log, ipaddress.IPv6Network("2001:db8:aa::/64"), 600)
    with w.n.inside(w.aaa):             # the RADIUS sockets live where FreeRADIUS is
        agent.open()
    ha = types.SimpleNamespace(cache=cache, ipsec=ipsec, aaa=agent, log=log, ike=None, _flush=lambda now: None,
                               tun=None)
    ia = attach(ha)
    return ha, ia, log


def run(ha, mn, until, timeout=3.0):
    """Drive MN <-> HA (IKE) and the HA's RADIUS sockets until `until(events)` or timeout."""
    evs = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        now = ha.aaa.clock()
        for data, _dst in mn.ike.datagrams_to_send(now):
            ha.ipsec.ike_receive(data, COA, 4500, now)
        for data, _peer, _port in ha.ipsec.ike_datagrams(now):
            mn.ike.receive(data, now)
        evs += mn.events()
        if until(evs):
            return evs
        fds = ha.aaa.fds()
        t = ha.aaa.get_timer()
        wait = 0.05 if t is None else max(0, min(0.05, (t - now) / 1000))
        ready, _, _ = select.select(list(fds), [], [], wait)
        for fd in ready:
            fds[fd]()
        now = ha.aaa.clock()
        ha.aaa.handle_timer(now)
        t = mn.ike.get_timer()
        if t is not None and t <= now:
            mn.ike.handle_timer(now)        # the MN retransmits its IKE_AUTH while the HA waits
    return evs


def pump(ha, done, timeout=3.0):
    """Serve the HA's RADIUS sockets until done()."""
    end = time.monotonic() + timeout
    while not done() and time.monotonic() < end:
        fds = ha.aaa.fds()
        for fd in select.select(list(fds), [], [], 0.05)[0]:
            fds[fd]()
        ha.aaa.handle_timer(ha.aaa.clock())
    return done()


def kinds(evs):
    return [e[0] for e in evs]


def failed_auth(evs):
    return any(e[0] == "failed" for e in evs)


def test_psk_from_freeradius_gives_the_child_sa_and_refuses_the_rest(world, tmp_path, capsys):
    out = tmp_path / "dev.json"
    rc = cli_main(["provision", "--aaa", world.db, "--security", "ipsec", "--nai", NAI, "--hoa", HOA,
                   "--ha", "2001:db8:aa::1", "--transports", "udp6", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and "IPsec" in printed
    cfg = json.loads(out.read_text())
    dev = {e["nai"]: e for e in provision_sql.devices(world.db)}[NAI]
    assert cfg["security"] == "ipsec" and "key" not in cfg and "spi" not in cfg
    assert dev["psk"] == cfg["psk"] and dev["hoa"] == HOA and "key" not in dev and "spi" not in dev
    psk = bytes.fromhex(cfg["psk"])

    ha, ia, log = make_ha(world)
    hoa = a6(HOA)
    assert ha.ipsec.responder.psks == {}            # the HA holds no PSK: only the store knows it
    mn = EspMN(psk, NAI, hoa, HA, MNLOCAL, (HA, 4500), ha.aaa.clock())
    evs = run(ha, mn, lambda e: "child_up" in kinds(e) or failed_auth(e))
    assert "child_up" in kinds(evs) and not failed_auth(evs), (evs, log.lines)
    assert ("hoa", hoa, 128) in evs                 # the HoA the server gave, through the CP
    assert ia.stats["requests"] == 1 and ia.stats["accepts"] == 1 and len(ia.latency_ms) == 1
    assert ha.ipsec.peers[NAI.encode()].psk == psk and ha.ipsec.mh_out.get(hoa) is not None
    sa = ha.ipsec.cache_sas[NAI.encode()]
    assert ha.cache.sas[sa.spi] is sa
    # a BU inside ESP registers through the binding cache (the pseudo SA the Accept made)
    pkt = mn.bu(1)
    took = ha.ipsec.on_signal(ha, pkt, ("udp6", "2001:db8:a1::7", 4191), ha.aaa.clock())
    assert took and hoa in ha.cache.bindings, log.lines
    # the same device again (re-authentication): the PSK is known now, no new request
    mn2 = EspMN(psk, NAI, hoa, HA, MNLOCAL, (HA, 4500), ha.aaa.clock())
    assert "child_up" in kinds(run(ha, mn2, lambda e: "child_up" in kinds(e) or failed_auth(e)))
    assert ia.stats["requests"] == 1
    # aaa.cache_s later it is asked again in the background: Accept, same PSK -> binding and SAs stay
    due = ha.aaa.get_timer()
    assert due is not None and due >= ha.aaa.clock() + 3000 * 1000 - 5000      # the default cache_s, 3600 s
    ha.aaa.handle_timer(due)
    assert pump(ha, lambda: any(x["ev"] == "aaa_refreshed" for x in log.lines)), log.lines
    assert hoa in ha.cache.bindings and ha.ipsec.mh_out.get(hoa) is not None
    # revoked in the store: the next refresh's Reject drops the device, its SAs and its binding
    provision_sql.revoke(world.db, NAI)
    ha.aaa.handle_timer(ha.aaa.get_timer())
    assert pump(ha, lambda: any(x["ev"] == "aaa_revoked" for x in log.lines)), log.lines
    assert hoa not in ha.cache.bindings and NAI.encode() not in ha.ipsec.peers and not ha.ipsec.mh_out
    assert NAI.encode() not in ha.ipsec.responder.psks
    provision_sql.add_device(world.db, NAI, 0, b"", HOA, psk=psk)       # back for the next checks

    # a wrong PSK for a NAI the store knows (a fresh HA: nothing cached) -> Accept, then AUTH_FAILED
    ha, ia, log = make_ha(world)
    bad = EspMN(bytes(32), NAI, hoa, HA, MNLOCAL, (HA, 4500), ha.aaa.clock())
    evs = run(ha, bad, lambda e: failed_auth(e) or "child_up" in kinds(e))
    assert ("failed", "auth", k.N_AUTH_FAILED) in evs and "child_up" not in kinds(evs), evs
    assert ia.stats["accepts"] == 1 and not ha.cache.bindings

    # an unknown NAI -> Reject -> AUTH_FAILED; at once again (reject memory) without a request
    who = "nobody@example.test"
    stranger = EspMN(psk, who, a6("2001:db8:aa::341"), HA, MNLOCAL, (HA, 4500), ha.aaa.clock())
    evs = run(ha, stranger, failed_auth)
    assert ("failed", "auth", k.N_AUTH_FAILED) in evs, (evs, log.lines)
    assert ia.stats["rejects"] == 1 and ia.stats["requests"] == 2
    again = EspMN(psk, who, a6("2001:db8:aa::341"), HA, MNLOCAL, (HA, 4500), ha.aaa.clock())
    assert ("failed", "auth", k.N_AUTH_FAILED) in run(ha, again, failed_auth)
    assert ia.stats["requests"] == 2 and who.encode() not in ha.ipsec.peers


def test_accepts_the_ha_cannot_use_are_refused(world):
    """An Accept whose PSK is too short, or whose HoA is another device's, gives AUTHENTICATION_FAILED
    (logged aaa_bad_attributes); the device is not added."""
    provision_sql.add_device(world.db, "short@example.test", 0, b"", "2001:db8:aa::350", psk=b"12345")
    provision_sql.add_device(world.db, "twin@example.test", 0, b"", "2001:db8:aa::351", psk=bytes(32))
    ha, ia, log = make_ha(world)
    ia.grant(IpsecPeer(b"owner@example.test", bytes(range(32)), a6("2001:db8:aa::351")), ha.aaa.clock())
    for nai, hoa, psk in (("short@example.test", "2001:db8:aa::350", b"12345" * 4),
                          ("twin@example.test", "2001:db8:aa::351", bytes(32))):
        mn = EspMN(psk, nai, a6(hoa), HA, MNLOCAL, (HA, 4500), ha.aaa.clock())
        evs = run(ha, mn, failed_auth)
        assert ("failed", "auth", k.N_AUTH_FAILED) in evs, (evs, log.lines)
        assert nai.encode() not in ha.ipsec.peers
    assert ia.stats["bad_attributes"] == 2 and ia.stats["accepts"] == 0
    assert [x["reason"] for x in log.lines if x["ev"] == "aaa_bad_attributes"] == [
        "Roam6-IKE-PSK missing or not 16 to 128 bytes (an IPsec device needs it)",
        "Roam6-Home-Address 2001:db8:aa::351 belongs to another device here"]


def test_retransmitted_ike_auth_while_held_asks_once(world):
    """The MN's IKE_AUTH retransmissions while the server is asked: no answer, no second request; the
    answer serves the held request (one response, the CHILD_SA)."""
    provision_sql.add_device(world.db, "retx@example.test", 0, b"", "2001:db8:aa::352", psk=bytes(range(32)))
    ha, ia, log = make_ha(world)
    now = ha.aaa.clock()
    mn = EspMN(bytes(range(32)), "retx@example.test", a6("2001:db8:aa::352"), HA, MNLOCAL, (HA, 4500), now)
    for data, _dst in mn.ike.datagrams_to_send(now):
        ha.ipsec.ike_receive(data, COA, 4500, now)
    for data, _peer, _port in ha.ipsec.ike_datagrams(now):
        mn.ike.receive(data, now)
    auth = mn.ike.datagrams_to_send(now)
    assert len(auth) == 1
    for _ in range(3):
        ha.ipsec.ike_receive(auth[0][0], COA, 4500, now)
    assert ha.ipsec.ike_datagrams(now) == [] and ia.stats["requests"] == 1 and len(ia.held) == 1
    assert pump(ha, lambda: not ia.held)
    out = ha.ipsec.ike_datagrams(ha.aaa.clock())
    assert len(out) == 1
    mn.ike.receive(out[0][0], ha.aaa.clock())
    assert "child_up" in kinds(mn.events()) and ia.stats["requests"] == 1
    # busy (aaa.max_pending reached): dropped without a request or an answer; the MN retransmits
    ha.aaa.cfg.max_pending = 0
    mn = EspMN(bytes(32), "busy@example.test", a6("2001:db8:aa::353"), HA, MNLOCAL, (HA, 4500), now)
    for data, _dst in mn.ike.datagrams_to_send(now):
        ha.ipsec.ike_receive(data, COA, 4500, now)
    for data, _peer, _port in ha.ipsec.ike_datagrams(now):
        mn.ike.receive(data, now)
    for data, _dst in mn.ike.datagrams_to_send(now):
        ha.ipsec.ike_receive(data, COA, 4500, now)
    assert ha.ipsec.ike_datagrams(now) == [] and ia.stats["busy"] == 1 and ia.stats["requests"] == 1
    assert not ia.held and any(x["ev"] == "aaa_busy" for x in log.lines)


def test_no_server_answers_refuses_with_authentication_failed(world):
    ha, ia, log = make_ha(world, servers=[{"host": RAD, "auth_port": 1912}])     # nobody listens there
    mn = EspMN(bytes(32), NAI, a6(HOA), HA, MNLOCAL, (HA, 4500), ha.aaa.clock())
    evs = run(ha, mn, failed_auth)
    assert ("failed", "auth", k.N_AUTH_FAILED) in evs, (evs, log.lines)
    assert ia.stats["unavailable"] == 1 and not ha.ipsec.peers


def test_bench_aaa_ipsec_tiny():
    """`roam6 bench ha --aaa-ipsec N` (aaa/ipsecbench.py), run tiny: every device gets its CHILD_SA, first
    through FreeRADIUS, then with the PSK cached (one request per device)."""
    need_freeradius()
    import secrets

    from roam6_host.aaa.ipsecbench import run_ipsec_aaa
    r = run_ipsec_aaa(3, prefix="r6t%s-" % secrets.token_hex(2))
    assert r["aaa_ipsec_child_sas_first"] == 3 and r["aaa_ipsec_child_sas_again"] == 3, r
    assert r["aaa_ipsec_requests"] == 3 and r["aaa_ipsec_accepts"] == 3
    assert r["aaa_ipsec_first_ike_auth_ms_p50"] > 0 and r["aaa_ipsec_psk_known_ike_auth_ms_p50"] > 0
