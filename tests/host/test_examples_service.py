"""examples/roam6-ha.service: the options a daemon owning a TUN and raw sockets needs, no more,
and a unit systemd itself accepts (systemd-analyze verify; its security rating)."""
import os
import re
import shutil
import subprocess
import sys

import pytest

UNIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "roam6-ha.service")


def _options():
    opts = {}
    for line in open(UNIT):
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            k, v = line.split("=", 1)
            opts.setdefault(k, []).append(v)
    return opts


def test_only_the_two_capabilities_and_the_tun_device():
    o = _options()
    assert o["CapabilityBoundingSet"] == o["AmbientCapabilities"] == ["CAP_NET_ADMIN CAP_NET_RAW"]
    assert o["User"] == ["roam6"] and o["NoNewPrivileges"] == ["yes"]
    assert o["DevicePolicy"] == ["closed"] and o["DeviceAllow"] == ["/dev/net/tun rw"]
    assert "PrivateDevices" not in o                      # it would hide /dev/net/tun
    assert o["ProtectSystem"] == ["strict"] and o["ReadWritePaths"] == ["/var/lib/roam6"]
    assert o["StateDirectory"] == ["roam6"] and o["ProtectHome"] == ["yes"] and o["PrivateTmp"] == ["yes"]
    assert "ProtectKernelTunables" not in o               # the HA writes net.ipv6 sysctls
    assert o["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_NETLINK AF_PACKET AF_UNIX"]
    assert o["ExecStart"] == ["/opt/roam6/venv/bin/roam6 ha --config /etc/roam6/ha.json"]
    assert o["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # the HA reloads its keys file on SIGHUP


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze missing")
def test_systemd_accepts_the_unit_and_rates_it_ok(tmp_path):
    roam6 = os.path.join(os.path.dirname(sys.executable), "roam6")
    text = open(UNIT).read().replace("/opt/roam6/venv/bin/roam6", roam6)
    unit = tmp_path / "roam6-ha.service"
    unit.write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # (verify also loads the machine's other units: their complaints are not this unit's)
    ours = [ln for ln in (r.stdout + r.stderr).splitlines() if "roam6-ha" in ln]
    assert r.returncode == 0 and ours == [], r.stdout + r.stderr
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True, text=True,
                       timeout=60)
    m = re.search(r"Overall exposure level for roam6-ha.service: ([0-9.]+)", r.stdout)
    assert m, r.stdout[-500:] + r.stderr
    assert float(m.group(1)) <= 3.0
