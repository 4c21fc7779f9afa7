"""An access point the host runs itself (`kind = "hostapd"` in the bench file, hil/roam6_hil/hostapd.py).

There is no Wi-Fi card here: the tests check the generated config, and that a bench naming a
hostapd that is not there, or an interface that is not wireless, is refused with a clear error
(`hil up` checks before it changes anything). hostapd itself never runs here.
"""
import re

import pytest

from roam6_host.errors import UserError
from roam6_hil import benchfile, hostapd
from test_hostbench import write_bench


def hostapd_bench(tmp_path, name, extra="", file=None):
    path = write_bench(tmp_path, name, file=file)
    text = open(path).read().replace('interface = "apA"\n', 'interface = "apA"\nkind = "hostapd"\n' + extra, 1)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_hostapd_config_per_ap(tmp_path):
    bench = benchfile.load(hostapd_bench(tmp_path, "t1", 'channel = 36\ncountry = "DE"\n'))
    ap = bench["aps"][0]
    assert ap["kind"] == "hostapd" and bench["aps"][1]["kind"] == "bridge"
    lines = hostapd.conf(ap, "/run/x/ctrl").splitlines()
    for want in ("interface=apA", "driver=nl80211", "ssid=roam6-A", "wpa=2", "wpa_key_mgmt=WPA-PSK",
                 "rsn_pairwise=CCMP", "wpa_passphrase=roam6-bench-A", "channel=36", "hw_mode=a",
                 "country_code=DE", "ctrl_interface=/run/x/ctrl"):
        assert want in lines, (want, lines)
    ap = benchfile.load(hostapd_bench(tmp_path, "t2"))["aps"][0]
    assert "channel=6" in hostapd.conf(ap, "c") and "hw_mode=g" in hostapd.conf(ap, "c")
    assert not any(x.startswith("country_code") for x in hostapd.conf(ap, "c").splitlines())
    for extra, msg in (("channel = 15\n", "channel must be"), ('psk = "short"\n', "psk of 8-63")):
        text = open(hostapd_bench(tmp_path, "t3", extra)).read()
        if "psk" in extra:           # the AP's own psk line comes after: drop it
            text = text.replace('psk = "roam6-bench-A"\n', "", 1)
        (tmp_path / "t3.toml").write_text(text)
        with pytest.raises(UserError, match=msg):
            benchfile.load(str(tmp_path / "t3.toml"))


def test_hostapd_missing_or_not_wireless_is_refused(tmp_path):
    """What `hil up --bench` checks (benchfile.check_host -> hostapd.check) before it changes
    anything: it only reads, so it runs here directly, on this host's loopback link (surely no
    Wi-Fi card)."""
    if not hostapd.find({}):
        pytest.fail("hostapd is not installed: apt-get install hostapd (deps/apt.txt)")
    for extra, msg in (('hostapd = "/nonexistent/hostapd"\n',
                        "/nonexistent/hostapd not found: [[ap]] roam6-A is an access point the host runs itself"),
                       ("", "lo is not a wireless interface")):
        bench = benchfile.load(hostapd_bench(tmp_path, "t4", extra))
        bench["aps"][0]["interface"] = "lo"
        with pytest.raises(UserError, match=re.escape(msg)):
            hostapd.check(bench)
    assert hostapd.is_wireless("lo") is False
