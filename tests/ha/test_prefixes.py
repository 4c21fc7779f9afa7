"""Renumbering at the HA (ha/prefixes.py), sans-IO on the binding cache: both prefixes served,
the old one deprecated then refused, a pinned HoA's twin allowed, the old binding released when
the device's new HoA is bound, MPAs naming both."""
import ipaddress

import pytest

from roam6_host.errors import UserError
from roam6_host.ha.config import parse_config
from roam6_host.ha.prefixes import Renumbering, parse_renumber

from ha_helpers import HA, HOA, NAT_SRC, T0, a6, bu4, exchange, make_cache, parse_ba

OLD, NEW = ipaddress.IPv6Network("2001:db8:aa::/64"), ipaddress.IPv6Network("2001:db8:bb::/64")
NEW_HOA = a6("2001:db8:bb::100")


def renumbered(now=0, old_valid_s=60):
    cache = make_cache()
    r = Renumbering(OLD, NEW, old_valid_s)
    r.start(now)
    cache.renum = r
    return cache, r


def status(cache, seq, hoa, now):
    wall = T0 + seq * 1000
    outs = exchange(cache, bu4(seq, now=wall, hoa=hoa), NAT_SRC, now, wall=wall)
    return parse_ba(outs[0][0], hoa=hoa)[1]


def test_new_hoa_of_a_pinned_sa_replaces_the_old_binding():
    cache, _r = renumbered()
    assert status(cache, 1, HOA, 10).status == 0                  # the old prefix, still valid
    cache.events()
    ba = status(cache, 2, NEW_HOA, 20)                            # pinned to HOA: its twin is allowed,
    assert ba.status == 0                                         # max_bindings_per_sa 1 notwithstanding
    evs = [(e.kind, getattr(e, "reason", None), e.binding.hoa) for e in cache.events()]
    assert evs == [("binding_added", None, NEW_HOA), ("binding_removed", "renumbered", HOA)]
    assert list(cache.bindings) == [NEW_HOA]


def test_old_prefix_deprecated_then_refused_and_lifetime_capped():
    cache, r = renumbered(old_valid_s=60)
    ba = status(cache, 1, HOA, 10)
    assert ba.status == 0 and ba.lifetime * 4 <= 60               # no longer than the prefix stays valid
    assert status(cache, 2, HOA, 60_000).status == 132            # past old_valid_s: not a home subnet
    assert status(cache, 3, a6("2001:db8:cc::100"), 10).status == 132
    assert r.serves(NEW_HOA, 10 ** 9) and not r.serves(HOA, 60_000)


def test_other_sa_cannot_take_a_pinned_hoas_twin():
    from ha_helpers import KEY2, NAI2, SPI2, build_bu, ntp_timestamp, V4COA
    cache, _r = renumbered()
    bu = build_bu(KEY2, SPI2, NAI2, NEW_HOA, HA, 1, 150, "udp4", v4coa=V4COA, timestamp=ntp_timestamp(T0, 1))
    outs = exchange(cache, bu, NAT_SRC, 10, wall=T0)
    assert parse_ba(outs[0][0], key=KEY2, hoa=NEW_HOA)[1].status == 129


def test_mpa_names_the_new_prefix_first_then_the_old_deprecated():
    _cache, r = renumbered(old_valid_s=100)
    p = r.pios(HA, 40_000)
    assert len(p) == 64
    assert p[2] == 64 and p[3] == 0x40 and p[16:32] == NEW.network_address.packed
    assert p[32 + 3] == 0x60 and int.from_bytes(p[36:40], "big") == 60 and p[40:44] == bytes(4) and p[48:64] == HA
    assert len(r.pios(HA, 100_000)) == 32                          # the old one no longer valid: not named


def test_config_errors(tmp_path):
    keys = tmp_path / "k.json"
    keys.write_text('{"sas": []}')
    keys.chmod(0o600)
    base = {"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "keys_file": str(keys)}
    c = parse_config(dict(base, renumber={"new_prefix": "2001:db8:bb::/64"}))
    assert c.renumber.new == NEW and c.renumber.old_valid_ms == 3600_000
    for bad, msg in (({"new_prefix": "2001:db8:bb::/56"}, "length of home_prefix"),
                     ({"new_prefix": "2001:db8:aa::/64"}, "is home_prefix"),
                     ({"new_prefix": "2001:db8:bb::1/64"}, "host bits zero"),
                     ({"new_prefix": "2001:db8:bb::/64", "old_valid_s": 5}, "from 10"),
                     ({"new_prefix": "2001:db8:bb::/64", "x": 1}, "renumber.x"),
                     ("2001:db8:bb::/64", "must be an object")):
        with pytest.raises(UserError, match=msg):
            parse_config(dict(base, renumber=bad))
    assert parse_renumber(None, c, "x") is None


def test_replicated_and_journaled_records_of_either_prefix():
    cache, _r = renumbered()
    assert status(cache, 1, NEW_HOA, 10).status == 0
    rec = cache.record(cache.bindings[NEW_HOA], 10, T0)
    plain = make_cache()                                      # an HA without the section: refused
    assert plain.apply(rec, 20, T0) is False and NEW_HOA not in plain.bindings
    other, _ = renumbered()
    assert other.apply(rec, 20, T0) is True and NEW_HOA in other.bindings


def test_sighup_reads_the_section_again_and_a_bad_one_changes_nothing(tmp_path):
    import json
    import types
    from roam6_host.ha import prefixes
    conf = tmp_path / "ha.json"
    base = {"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "keys_file": "k.json"}
    conf.write_text(json.dumps(base))
    logs, sent = [], []
    cache = make_cache()
    cfg = types.SimpleNamespace(path=str(conf), source="HA config %s" % conf, home_prefix=OLD, renumber=None,
                                address=HA)
    ha = types.SimpleNamespace(cfg=cfg, cache=cache, log=lambda ev, **f: logs.append((ev, f)), _send=sent.extend)
    assert status(cache, 1, HOA, 10).status == 0
    conf.write_text(json.dumps(dict(base, renumber={"new_prefix": "2001:db8:bb::/56"})))
    prefixes.reload(ha, 100)
    assert logs[-1][0] == "error" and "length of home_prefix" in logs[-1][1]["reason"] and cache.renum is None
    conf.write_text("{not json")
    prefixes.reload(ha, 100)
    assert logs[-1][0] == "error" and cache.renum is None
    conf.write_text(json.dumps(dict(base, renumber={"new_prefix": str(NEW), "old_valid_s": 60})))
    prefixes.reload(ha, 100)
    assert logs[-1] == ("renumbering", {"state": "on", "old": str(OLD), "new": str(NEW), "old_valid_s": 60})
    assert cache.renum is cfg.renumber and cfg.renumber.started == 100
    (pkt, dest), = sent                                       # the unsolicited MPA, through the binding's tunnel
    assert dest == NAT_SRC and pkt[6] == 58 and pkt[40] == 147 and pkt[24:40] == HOA
    assert pkt[48 + 16:48 + 32] == NEW.network_address.packed  # the new prefix first
    prefixes.reload(ha, 5000)                                 # the same section: its clock runs on
    assert cfg.renumber.started == 100 and len(sent) == 1
    conf.write_text(json.dumps(base))
    prefixes.reload(ha, 6000)
    assert logs[-1][1]["state"] == "off" and cache.renum is None
    assert status(cache, 2, NEW_HOA, 6010).status == 132
