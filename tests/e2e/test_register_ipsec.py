"""The MN with `"security": "ipsec"` against the real `roam6 ha` (ha.json security [rfc4285, ipsec],
the board an IPsec device of its keys file), on the bench namespaces, one roam (issue 19):

  MicroPython MN (unix bundle, netlink link adapter) on apB over udp4 -> IKE_SA_INIT + IKE_AUTH on
  UDP 4500 from the CoA -> BU in ESP -> BA in ESP -> registered; "ipsec_data": the payload tunnel
  (a second, tunnel-mode CHILD_SA) -> CN <-> HoA traffic both ways inside it (the HA: no
  esp_dropped); the
  board roams to apC -> the BU from the new CoA under the same CHILD_SA -> BA -> the MN's
  INFORMATIONAL from there: the HA's IKE SA follows (ike_moved) -> traffic both ways again.

`roam6 hil run roam --security ipsec` is the same with probes and many roams (README Performance).
"""
import json
import os
import signal

from roam6_hil.board_unix import start_mn
from roam6_hil.homeagent import board_config, start_ha, write_ha_config
from roam6_hil.scenarios import register as R
from roam6_hil.topology import CN_ADDR6

HEAP = "192K"   # the 64-bit unix port with the link adapter and IPsec (the 32-bit figure: README)


def test_ipsec_registration_and_one_roam_with_the_real_ha(bench):
    conf = write_ha_config(bench, security="ipsec")
    with open(conf) as f:
        hacfg = json.load(f)
    hacfg["journal"] = bench.path("ha.journal")          # IPsec with a journal (ha/ipsecmh.py, record SPI 0)
    with open(conf, "w") as f:
        json.dump(hacfg, f)
    ha = start_ha(bench, conf)
    bench.attach("apB", addressing="static")
    path = bench.path("mn-ipsec.json")
    with open(path, "w") as f:
        json.dump(board_config(security="ipsec", ipsec_data=True, transports=["udp4"],
                               state_file=bench.path("mn.state"),
                               probe={"port": R.PROBE_PORT,
                                      "sensor": {"dst": CN_ADDR6, "port": R.SENSOR_PORT, "interval_ms": 20}}), f)
    mn = start_mn(bench, path, HEAP, logpath=bench.path("mn.log"))
    try:
        ev = mn.wait_for(lambda e: e.get("ev") in ("registered", "error"), 15)
        assert ev is not None and ev["ev"] == "registered", (ev, mn.tail())
        ike = [e for e in mn.events if e["ev"] == "ike"]
        assert [e["state"] for e in ike][:2] == ["up", "child_up"] and ike[1]["transport"] is True, mn.tail()
        assert ha.wait_for(lambda e: e.get("ev") == "binding_added", 3), ha.tail()
        up = ha.wait_for(lambda e: e.get("ev") == "ike_up", 1)
        assert up and up["nai"] == "board1@example.test", ha.tail()
        # from data_up on, the MN seals every HoA packet in the tunnel SA and the HA seals what it sends
        # to a HoA with a tunnel SA: the traffic below flows only if both open each other's ESP
        assert mn.wait_for(lambda e: e.get("ev") == "ike" and e.get("state") == "data_up", 3), mn.tail()
        t = R.cn_traffic(bench, n=10, listen_s=2.5)
        assert t["echoed"] >= 9 and t["up_received"] >= 5, t
        # one roam: a new care-of address on another network, the same IKE SA and CHILD_SA
        mn.mark()
        bench.detach()
        bench.attach("apC", addressing="static")
        ev = mn.wait_for(lambda e: e.get("ev") == "ike" and e.get("state") == "moved", 10)
        assert ev is not None, mn.tail()
        moved = ha.wait_for(lambda e: e.get("ev") == "ike_moved", 3)
        # (behind the access networks' NAT: the peer is the mapped address, another one per network)
        assert moved and moved["peer"] != up["peer"], ha.tail()
        bm = ha.wait_for(lambda e: e.get("ev") == "binding_moved", 1)
        assert bm and moved["peer"].split(":")[0] == bm["peer"].split(":")[0], ha.tail()
        ba = [e for e in mn.events if e["ev"] == "ba"]
        assert ba[-1]["status"] == 0 and ba[-1]["coa"].startswith("198.51.100."), mn.tail()
        assert not [e for e in mn.events if e["ev"] == "error"], mn.tail()
        assert not [e for e in mn.events if e["ev"] == "ike" and e["state"] == "up"]    # no new handshake
        t = R.cn_traffic(bench, n=10, listen_s=2.5)
        assert t["echoed"] >= 9 and t["up_received"] >= 5, t
        assert not [e for e in ha.events if e.get("ev") == "esp_dropped"], ha.tail()
        # the HA killed and restarted: its journal brings the binding back, not the SAs; the MN's next
        # BU (a roam back to apB) goes unanswered under the old CHILD_SA, its first retransmission
        # starts a new IKE SA ("recheck") and the BU goes again under it: registered again
        ha.p.send_signal(signal.SIGKILL)
        ha.p.wait(5)
        ha.stop()
        ha = start_ha(bench, conf)
        restored = ha.wait_for(lambda e: e.get("ev") == "journal_restored", 1)
        assert restored and restored["bindings"] == 1, ha.tail()
        mn.mark()
        bench.detach()
        bench.attach("apB", addressing="static")
        ev = mn.wait_for(lambda e: e.get("ev") == "ba" and e.get("coa", "").startswith("192.0.2."), 8)
        assert ev is not None and ev["status"] == 0, mn.tail()
        assert mn.wait_for(lambda e: e.get("ev") == "ike" and e.get("state") == "recheck", 0.1), mn.tail()
        assert ha.wait_for(lambda e: e.get("ev") == "binding_moved", 1), ha.tail()
    finally:
        mn.stop()
        ha.stop()
    assert os.path.exists(bench.path("mn.log"))
