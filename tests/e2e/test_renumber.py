"""Renumbering the home network end to end (issue 14; RFC 6275 §10.6, §11.4.2-3), through the
`roam6 hil run renumber` scenario's steps: the real MicroPython MN registered in the old home
prefix, the operator puts the new prefix on the home link and in ha.json ("renumber") and sends
SIGHUP; the HA's unsolicited MPA prompts the MN's solicitation, whose answer names both prefixes;
the MN registers its new HoA (DAD, authenticated BA), traffic to the new HoA reaches it both ways,
and the HA releases the old HoA (binding, route; the old HoA no longer answers)."""
from roam6_hil.scenarios.renumber import NEW_HOA, NEW_PREFIX, renumber_once


def test_renumbered_home_prefix_end_to_end(bench):
    r = renumber_once(bench, "00112233445566778899aabbccddeeff")
    assert r["registered_old"] and r["first_mps"], r          # solicited at once: the old prefix only
    on = r["ha_renumbering"]
    assert on and on["state"] == "on" and on["new"] == NEW_PREFIX, r
    assert r["mn_hint"] == {"ev": "prefix_hint", "prefix": NEW_PREFIX}, r
    assert r["mn_adopted"] == {"ev": "home_prefix", "prefix": NEW_PREFIX, "hoa": NEW_HOA}, r
    assert r["old_released"] == "renumbered", r
    assert r["routes"] == {"new_hoa": True, "old_hoa": False}, r
    st = r["ha_status"]                                        # roam6 ha status: the one binding, both prefixes
    assert st["hoas"] == [NEW_HOA] and st["renumber"]["new"] == NEW_PREFIX and st["renumber"]["old_left_s"] > 590, r
    t = r["traffic_new_hoa"]
    assert t["echoed"] >= 9 and t["up_received"] >= 5, t      # both ways through the new HoA
    assert r["traffic_old_hoa"]["echoed"] == 0, r              # the old one is released
    assert r["ok"] and r["seconds_from_sighup"]["adopted_by_mn"] < 5, r
