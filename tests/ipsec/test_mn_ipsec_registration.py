"""The real MN (MicroPython unix port, firmware from the tree, boards/unix/main.py) with config
`"security": "ipsec"` registers through the HA's own sans-IO IKEv2 Responder: IKE_SA_INIT +
IKE_AUTH over UDP 4500 (the MN's initiator against the HA's responder: two implementations), the
BU in the CHILD_SA's ESP opened with the responder's keys, the BA sealed back (the footprint's HA
stand-in, roam6_host.footprint_ipsec), and the IKE code out of the heap once the SA is idle.
Loopback only, on a random 127.x address of its own.
The full `roam6 ha` end to end is tests/e2e (after the HA side lands)."""
import json
import os
import random
import sys

from roam6_host.footprint_ipsec import IpsecFootprintHA
from roam6_host.footprint_run import registered, run_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAI = "mn-ipsec@example.test"
HOA, HA6 = "2001:db8:aa::100", "2001:db8:aa::1"


def test_real_mn_registers_over_esp_with_the_responder(tmp_path):
    ha_v4 = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(1, 254), random.randint(2, 254))
    psk = os.urandom(16)
    cfg = {"nai": NAI, "security": "ipsec", "psk": psk.hex(), "hoa": HOA, "home_prefix": "2001:db8:aa::/64",
           "ha": HA6, "ha_ipv4": ha_v4, "transports": ["udp4"], "state_file": str(tmp_path / "mn.state")}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    ha = IpsecFootprintHA(psk, NAI, ha_v4, HA6, HOA)
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    path = [".frozen", os.path.join(ROOT, "firmware"), os.path.join(ROOT, "boards", "unix")]
    env = dict(os.environ, MICROPYPATH=":".join(path))
    try:
        ev, lines = run_until([exe, "-X", "heapsize=256K", os.path.join(ROOT, "boards", "unix", "main.py"),
                               str(tmp_path / "config.json"), "--coa", "127.0.0.1"], str(tmp_path), 20,
                              registered, env=env)
    finally:
        ha.close()
    kinds = [e["ev"] for e in ev]
    out = "".join(lines[-15:])
    assert "registered" in kinds, out
    ike = [e for e in ev if e["ev"] == "ike"]
    assert [e["state"] for e in ike][:2] == ["up", "child_up"] and ike[1]["transport"] is True, out
    assert 0 < ike[0]["handshake_ms"] < 10000
    ba = [e for e in ev if e["ev"] == "ba"]
    assert ba and ba[0]["status"] == 0 and ha.bas >= 1
    # the HA's view: one IKE SA up with this NAI, its CHILD_SA opened the BU
    assert ha.sa is not None and ha.sa[0].opened >= 1 and ha.sa[1].sealed >= 1
    assert kinds.index("ike") < kinds.index("ba")
    assert not [e for e in ev if e["ev"] == "error"], out
    # the heap the MN logs after registration, once the IKE SA sleeps and ikev2/x25519 are dropped
    # (node/ipsecglue.py Dormant; firmware from source on the 64-bit port): 80,384 B now, 96,864 B
    # with the IKE code kept (e.g. a module-level import of ikev2 in the glue pins it)
    after = [e for e in ev[kinds.index("registered"):] if e["ev"] == "heap"]
    assert after and after[0]["alloc"] < 88 * 1024, after


def test_real_mn_takes_the_home_address_the_ha_assigns(tmp_path):
    """RFC 4877 §4.4 with the real MN: the HA's configuration payload assigns a HoA other than the
    config's (its keys file changed); the MN adopts it (node/ipsechoa.py) and registers it."""
    import socket
    ha_v4 = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(1, 254), random.randint(2, 254))
    psk = os.urandom(16)
    assigned = "2001:db8:aa::399"
    cfg = {"nai": NAI, "security": "ipsec", "psk": psk.hex(), "hoa": HOA, "home_prefix": "2001:db8:aa::/64",
           "ha": HA6, "ha_ipv4": ha_v4, "transports": ["udp4"], "state_file": str(tmp_path / "mn.state")}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    ha = IpsecFootprintHA(psk, NAI, ha_v4, HA6, assigned)       # its CP and BAs: the assigned HoA
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    path = [".frozen", os.path.join(ROOT, "firmware"), os.path.join(ROOT, "boards", "unix")]
    env = dict(os.environ, MICROPYPATH=":".join(path))
    try:
        ev, lines = run_until([exe, "-X", "heapsize=256K", os.path.join(ROOT, "boards", "unix", "main.py"),
                               str(tmp_path / "config.json"), "--coa", "127.0.0.1"], str(tmp_path), 20,
                              registered, env=env)
    finally:
        ha.close()
    out = "".join(lines[-15:])
    kinds = [e["ev"] for e in ev]
    assert "registered" in kinds, out
    hoa = [e for e in ev if e["ev"] == "ike" and e["state"] == "hoa"]
    assert hoa and hoa[0]["hoa"] == assigned and hoa[0]["was"] == HOA, out
    assert ha.bu_hoas and set(ha.bu_hoas) == {socket.inet_pton(socket.AF_INET6, assigned)}, out
    assert not [e for e in ev if e["ev"] == "error"], out
