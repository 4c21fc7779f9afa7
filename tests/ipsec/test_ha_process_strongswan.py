"""The real `roam6 ha` process (ha.json security ["ipsec"], the keys file's IPsec device) as IKEv2
responder to strongSwan charon as INITIATOR (`swanctl --initiate`, PSK, IDi the device's NAI,
kernel-libipsec), in namespaces this test creates:

    mn (charon, 198.18.19.10) --- ha (`roam6 ha`, 198.18.19.2; home bridge 2001:db8:aa::1/64, TUN)
                                      home bridge --- hm (2001:db8:aa::50, a host on the home link)

strongSwan asks for its address through the configuration payload (vips = ::) and gets the keys
file's HoA; its ESP (AES-GCM, RFC 4106, ENCR_AES_GCM_16; rekeyed with PFS, X25519) comes as ESP in UDP 4500
(RFC 3948, kernel-libipsec always encapsulates), which the HA's IKE socket tells from IKE by the
missing non-ESP marker (ha/espudp.py). A ping
from the HoA to hm crosses the CHILD_SA to the HA, the home link, and hm's reply comes back
through the HA (proxy ND, the TUN) sealed into strongSwan's SA: both directions decrypted.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys

import pytest
from nshelp import Lines, TestNamespaces

from roam6_host.ipsec import swan

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (make test runs as root)")

NAI, PSK = "mn1@example.test", "5ec2e7" * 8
HA4, MN4 = "198.18.19.2", "198.18.19.10"
HA6, HOA, HM = "2001:db8:aa::1", "2001:db8:aa::100", "2001:db8:aa::50"


class HA:
    def __init__(self, ns, config):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "roam6_host", "ha", "--config", config],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out = Lines(self.proc)

    def wait_for(self, ev, timeout=5.0):
        try:
            return self.out.until(lambda e: e.get("ev") == ev, timeout)[0]
        except AssertionError as exc:
            err = self.proc.stderr.read() if self.proc.poll() is not None else "(running)"
            raise AssertionError("no %r from the HA: %s\nstderr: %s" % (ev, exc, err)) from None

    def events(self, ev):
        return [json.loads(x) for x in self.out.log if ('"%s"' % ev) in x]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def net(tmp_path):
    swan.require()
    n = TestNamespaces()
    ha_proc = None
    try:
        ha, mn, hm = n.add("ha"), n.add("mn"), n.add("hm")
        n.veth(ha, "up0", mn, "eth0")
        n.ip(ha, "addr", "add", HA4 + "/24", "dev", "up0")
        n.ip(mn, "addr", "add", MN4 + "/24", "dev", "eth0")
        n.ip(ha, "link", "add", "home", "type", "bridge")
        n.ip(ha, "link", "set", "home", "up")
        n.ip(ha, "addr", "add", HA6 + "/64", "dev", "home", "nodad")
        n.veth(ha, "hm0", hm, "eth0")
        n.ip(ha, "link", "set", "hm0", "master", "home")
        n.ip(hm, "addr", "add", HM + "/64", "dev", "eth0", "nodad")
        keys = tmp_path / "ha-keys.json"
        keys.write_text(json.dumps({"sas": [{"nai": NAI, "security": "ipsec", "psk": PSK, "hoa": HOA}]}))
        os.chmod(keys, 0o600)
        cfg = tmp_path / "ha.json"
        cfg.write_text(json.dumps({"home_prefix": "2001:db8:aa::/64", "address": HA6, "ipv4": HA4,
                                   "home_link": "home", "tun": "r6tun", "keys_file": "ha-keys.json",
                                   "transports": ["udp4"], "security": ["ipsec"], "dad_ms": 100}))
        ha_proc = HA(ha, str(cfg))
        ha_proc.wait_for("ready")
        yield n, ha_proc
    finally:
        if ha_proc is not None:
            ha_proc.stop()
        n.teardown()


def test_strongswan_initiates_to_the_roam6_ha_process_and_pings_the_home_link_through_it(net, tmp_path):
    n, ha = net
    sw = swan.Charon(n.full("mn"), str(tmp_path), dict(
        local_addrs=MN4, remote_addrs=HA4, local_id=NAI, remote_id="fqdn:" + HA6, psk="0x" + PSK,
        local_ts="dynamic", remote_ts="2001:db8:aa::/64", vips="::", remote_port=4500,
        esp="aes128gcm16-x25519")).start()
    try:
        out = sw.swanctl("--initiate", "--child", "mn", "--timeout", "10", timeout=15)
        assert "initiate completed successfully" in out, out + sw.log_text()[-3000:]
        assert "installing new virtual IP %s" % HOA in sw.log_text(), sw.log_text()[-3000:]
        up = ha.wait_for("ike_up")
        assert up["nai"] == NAI and up["peer"].startswith(MN4 + ":"), up
        assert ha.wait_for("ipsec_child_up")["nai"] == NAI
        ping = ["busybox", "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "-I", HOA, HM]
        p = n.run("mn", ping, check=False, timeout=10)
        assert p.returncode == 0 and " 0% packet loss" in p.stdout, \
            p.stdout + p.stderr + sw.list_sas() + "".join(ha.out.log[-20:])
        esp_up = ha.wait_for("udp_esp_up")
        assert esp_up["hoa"] == HOA and esp_up["peer"].split(":")[0] == MN4, esp_up
        # strongSwan's counters: it sealed the 3 requests (the HA opened them: hm answered) and
        # opened the HA's 3 replies, all in UDP-encapsulated tunnel mode
        sas = sw.list_sas()
        assert "TUNNEL-in-UDP, ESP:AES_GCM_16-128" in sas and "%s/128" % HOA in sas, sas
        assert re.search(r"\bin  [0-9a-f]{8}, +\d+ bytes, +3 packets", sas), sas
        assert re.search(r"\bout [0-9a-f]{8}, +\d+ bytes, +3 packets", sas), sas
        assert not ha.events("esp_dropped"), ha.out.log
        # a replayed / forged ESP-in-UDP datagram from elsewhere: dropped and counted, the HA lives
        s = n.socket("mn", socket.AF_INET, socket.SOCK_DGRAM, bind=(MN4, 0))
        s.sendto(b"\x01\x02\x03\x04" + bytes(60), (HA4, 4500))
        s.sendto(b"\xff", (HA4, 4500))           # a NAT keepalive: ignored, not a drop
        s.close()
        drop = ha.wait_for("esp_dropped")
        assert drop["reason"] == "esp_unknown_spi" and drop["source"].startswith("udp-esp:" + MN4), drop
        # strongSwan rekeys the CHILD_SA with PFS (x25519 in its ESP proposal: a KE in CREATE_CHILD_SA),
        # deletes the old one; the HA's UDP path follows the new SAs
        sw.swanctl("--rekey", "--child", "mn", timeout=10)
        assert ha.wait_for("ipsec_child_rekeyed")["nai"] == NAI
        ha.wait_for("ipsec_child_deleted")
        p = n.run("mn", ping[:4] + ["1"] + ping[7:], check=False, timeout=10)
        assert p.returncode == 0, p.stdout + p.stderr
        sas = sw.list_sas()
        assert "ESP:AES_GCM_16-128/CURVE_25519" in sas, sas
        assert re.search(r"\bin  [0-9a-f]{8}, +\d+ bytes, +1 packets", sas), sas
        # strongSwan deletes its IKE SA: the HA drops the HoA's route and proxy entry
        sw.swanctl("--terminate", "--ike", "mn", "--timeout", "5", timeout=10)
        down = ha.wait_for("udp_esp_down")
        assert down["hoa"] == HOA
        r = n.run("ha", ["ip", "-6", "route", "show", HOA + "/128"], check=False, timeout=5)
        assert "r6tun" not in r.stdout, r.stdout
    finally:
        sw.stop()
