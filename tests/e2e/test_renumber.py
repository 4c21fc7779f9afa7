"""Renumbering the home network end to end (issue 14; RFC 6275 §10.6, §11.4.2-3): the real
MicroPython MN registered in the old home prefix, the operator puts the new prefix on the home
link and in ha.json ("renumber") and sends SIGHUP; the HA's unsolicited MPA prompts the MN's
solicitation, whose answer names both prefixes; the MN registers its new HoA (DAD, authenticated
BA), traffic to the new HoA reaches it both ways, and the HA releases the old HoA (binding, route)."""
import json
import os
import signal
import sys

from roam6_hil.cnprobe import CN_SCRIPT, PROBE_PORT
from roam6_hil.scenarios import register as R

NEW_PREFIX = "2001:db8:bb::/64"
NEW_HOA = "2001:db8:bb::100"


def test_renumbered_home_prefix_end_to_end(bench):
    key = "00112233445566778899aabbccddeeff"
    conf = R.write_ha_config(bench, key)
    ha = R.start_ha(bench, conf)
    _net, coa = R.attach_for(bench, "udp4")
    mn_conf = R.write_mn_config(bench, key, "udp4", sensor_interval_ms=50)
    with open(mn_conf) as f:
        cfg = json.load(f)
    cfg["prefix_solicit_s"] = 600        # solicits at its first registration; then only when prompted
    with open(mn_conf, "w") as f:
        json.dump(cfg, f)
    mn = R.start_mn(bench, mn_conf, heap="96K", extra=["--coa", coa, "--transport", "udp4"])
    try:
        ev = mn.wait_for(lambda e: e.get("ev") in ("registered", "error"), 10)
        assert ev is not None and ev["ev"] == "registered", mn.tail()
        assert mn.wait_for(lambda e: e.get("ev") == "mps", 3), mn.tail()      # answered: the old prefix only
        # the operator: the new prefix on the home link and routed to it, then ha.json + SIGHUP
        bench.ns.batch("ha", ["-6 addr add 2001:db8:bb::1/64 dev home nodad"])
        bench.ns.batch("core", ["-6 route add %s via 2001:db8:f1::2" % NEW_PREFIX])
        with open(conf) as f:
            hac = json.load(f)
        hac["renumber"] = {"new_prefix": NEW_PREFIX, "old_valid_s": 600}
        with open(conf, "w") as f:
            json.dump(hac, f)
        os.kill(ha.p.pid, signal.SIGHUP)
        on = ha.wait_for(lambda e: e.get("ev") == "renumbering", 5)
        assert on and on["state"] == "on" and on["new"] == NEW_PREFIX, ha.tail()
        hint = mn.wait_for(lambda e: e.get("ev") in ("prefix_hint", "prefix_refused"), 5)
        assert hint and hint["ev"] == "prefix_hint" and hint["prefix"] == NEW_PREFIX, mn.tail()
        adopted = mn.wait_for(lambda e: e.get("ev") in ("home_prefix", "prefix_refused"), 5)
        assert adopted and adopted["ev"] == "home_prefix" and adopted["hoa"] == NEW_HOA, mn.tail()
        added = ha.wait_for(lambda e: e.get("ev") == "binding_added" and e.get("hoa") == NEW_HOA, 3)
        gone = ha.wait_for(lambda e: e.get("ev") == "binding_removed" and e.get("hoa") == R.HOA, 3)
        assert added and gone and gone["reason"] == "renumbered", ha.tail()
        routes = bench.run("ha", ["ip", "-6", "route", "show", "dev", "r6tun"]).stdout
        assert NEW_HOA in routes and R.HOA not in routes, routes
        # traffic to the new HoA reaches the MN (its probe echoes it) and the MN's own datagrams arrive
        r = bench.run("cn", [sys.executable, "-c", CN_SCRIPT, NEW_HOA, str(PROBE_PORT), str(R.SENSOR_PORT),
                             "10", "0.02", "1.5"], check=False, timeout=15)
        t = json.loads(r.stdout.strip().splitlines()[-1])
        assert t["echoed"] >= 9 and t["up_received"] >= 5, (t, r.stderr)
    finally:
        mn.stop()
        ha.stop()
