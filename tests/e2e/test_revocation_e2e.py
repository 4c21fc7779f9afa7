"""An operator cuts a device off (issue 18): FreeRADIUS's Disconnect-Request -> the HA's Binding
Revocation Indication -> the real MicroPython MN's Acknowledgement; the binding is gone, the MN
stops using the HA (no re-registration loop), and a forged BRI before it changed nothing.

Real parts: FreeRADIUS on SQLite in the `ha` namespace (hil/roam6_hil/aaa.py), `roam6 ha` with an
`aaa` section and a DAE port, the MN on the MicroPython unix port over udp4 behind apB's NAT,
`radclient` as the operator's RADIUS server sending RFC 5176 Disconnect-Request. The forged BRI
comes from a raw socket in the HA's namespace with the HA's address and port (as an on-path
attacker would send it), signed with a wrong key.
"""
import json
import shutil
import sys
import time

import pytest

from roam6_hil import aaa as A
from roam6_hil.scenarios import register as R

NO_BU_S = 6             # after "revoked": no BU at all for this long (the old behaviour: one at once)

FORGE = r"""
import socket, struct, sys, time
from roam6.crypto import mnha_auth_data
from roam6.wire.addr import ip6_from_text
from roam6.wire.ipv6 import build_ipv6
from roam6_codec import mhopts as mo
from roam6_codec.mh import BindingRevocation
host, port, coa = sys.argv[1], int(sys.argv[2]), socket.inet_aton(sys.argv[3])
ha, hoa = ip6_from_text("%(ha)s"), ip6_from_text("%(hoa)s")
ms = time.time_ns() // 1000000
ts = ((ms // 1000 + 2208988800) << 32) | (((ms %% 1000) << 32) // 1000)
mc = b"\0" * 10 + b"\xff\xff" + coa
opts = [mo.MNIdentifier(1, b"%(nai)s"), mo.ReplayProtection(ts), mo.MobilityAuth(1, %(spi)d, None)]
mh = BindingRevocation(1, 1, 77, 0, opts).encode(src=ha, dst=hoa, mac=lambda p: mnha_auth_data(bytes(16), mc, hoa, p))
inner = bytes(build_ipv6(ha, hoa, 135, mh))
udp = struct.pack(">HHHH", 4191, port, 8 + len(inner), 0)
ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp) + len(inner), 0, 0x4000, 64, 17, 0,
                 socket.inet_aton("%(ha4)s"), socket.inet_aton(host))
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
raw.sendto(ip + udp + inner, (host, 0))
"""


def ha_status(bench):
    p = bench.run("ha", [sys.executable, "-m", "roam6_host", "ha", "status", "--json"], timeout=30)
    return json.loads(p.stdout)


def test_disconnect_request_revokes_the_real_mn_which_acknowledges_and_stays_away(bench):
    if shutil.which("freeradius") is None or shutil.which("radclient") is None:
        pytest.fail("FreeRADIUS is not installed: apt-get install freeradius freeradius-utils (deps/apt.txt)")
    from roam6_hil.topology import HA_ADDR, HA_IPV4, HOA
    cfg_path = A.start_aaa(bench)
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["aaa"]["dae_port"] = 3799
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    with open(cfg["aaa"]["secret_file"]) as f:
        secret = f.read().strip()
    ha = R.start_ha(bench, cfg_path)
    _net, coa = R.attach_for(bench, "udp4")
    mn = R.start_mn(bench, R.write_mn_config(bench, R.BOARD_SA["key"], "udp4"), heap="64K",
                    extra=["--coa", coa, "--transport", "udp4"])
    try:
        assert mn.wait_for(lambda e: e.get("ev") == "registered", 15) is not None, mn.tail()
        row, = [r for r in ha_status(bench)["bindings"] if r["hoa"] == HOA]
        host, port = row["peer"] if isinstance(row["peer"], list) else row["peer"].rsplit(":", 1)
        # a forged BRI (wrong key) from the HA's address and port: ignored, counted, still bound
        bench.run("ha", [sys.executable, "-c", FORGE % {"ha": HA_ADDR, "hoa": HOA, "nai": R.NAI, "spi": R.SPI,
                                                        "ha4": HA_IPV4},
                         host, str(port), coa])
        ev = mn.wait_for(lambda e: e.get("ev") == "bri_ignored", 5)
        assert ev is not None and ev["count"] == 1, mn.tail()
        assert not [e for e in mn.events if e["ev"] == "revoked"]
        assert [r for r in ha_status(bench)["bindings"] if r["hoa"] == HOA]
        # the operator disconnects the device
        p = bench.run("ha", ["radclient", "-x", "-t", "2", "-r", "2", "[::1]:3799", "disconnect", secret],
                      input='User-Name = "%s"\n' % R.NAI, check=False, timeout=30)
        assert p.returncode == 0 and "Disconnect-ACK" in p.stdout, p.stdout + p.stderr
        ev = mn.wait_for(lambda e: e.get("ev") == "revoked", 5)
        assert ev is not None and ev["reason"] == "administrative" and ev["hold_s"] >= 3600, mn.tail()
        got = ha.wait_for(lambda e: e.get("ev") == "bra_received", 5)
        assert got is not None and got["nai"] == R.NAI and got["status"] == 0, ha.tail()
        assert ha.wait_for(lambda e: e.get("ev") == "binding_removed" and e.get("reason") == "disconnect", 1)
        assert not [r for r in ha_status(bench)["bindings"] if r["hoa"] == HOA]
        # the MN stays away: not one BU (before issue 18 it re-registered at once, and again on
        # each 129), the HA hears nothing more from it, and the MN is alive
        revoked_at = time.monotonic()
        time.sleep(NO_BU_S)
        late = [e for e in mn.events if e["ev"] == "bu" and e["t_rx"] >= revoked_at - 0.5]
        assert not late, late
        assert not [e for e in ha.events if e.get("ev") in ("aaa_accept", "aaa_reject", "bu_rejected")
                    and e.get("t_rx", 0) >= revoked_at - 0.5], ha.tail()
        assert not [e for e in ha.events if e.get("ev") == "bri_unanswered"]
        assert mn.alive() and ha.alive()
    finally:
        mn.stop()
        ha.stop()

