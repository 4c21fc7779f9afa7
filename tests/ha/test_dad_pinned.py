"""ha.json "dad_skip_pinned" (docs/PROTOCOL-NOTES.md §11.14): a HoA the keys file pins to the BU's own
SA is bound at once (the operator reserved it: the Home Agent Switch's target answers without the DAD
wait); any other HoA still waits for DAD, and the option is off unless set."""
import json

import pytest

from roam6_host.errors import UserError
from roam6_host.ha.cache import DadStarted
from roam6_host.ha.config import load_config

from ha_helpers import (HA, HOA, KEY2, NAI2, NAT_SRC, SPI2, T0, V4COA, V4MAPPED, a6, build_bu, bu4, exchange,
                        make_cache, parse_ba)

MAC4 = V4MAPPED + V4COA


def test_pinned_hoa_skips_dad_only_when_asked():
    c = make_cache(dad_ms=1000)
    assert exchange(c, bu4(1, now=T0), NAT_SRC, T0) == [] and c.dad_pending(HOA)     # the default: DAD
    c = make_cache(dad_ms=1000)
    c.dad_skip_pinned = True
    (out,) = exchange(c, bu4(1, now=T0), NAT_SRC, T0)                 # HOA is pinned to SPI: BA at once
    assert parse_ba(out[0], mac_coa=MAC4)[1].status == 0 and HOA in c.bindings and not c.dad_pending(HOA)
    assert not any(isinstance(e, DadStarted) for e in c.events())
    free = a6("2001:db8:aa::777")                                      # SPI2 pins nothing: DAD as before
    bu = build_bu(KEY2, SPI2, NAI2, free, HA, 1, 150, "udp4", v4coa=V4COA)
    assert exchange(c, bu, ("udp4", "203.0.113.9", 1), T0) == [] and c.dad_pending(free)


def test_config_field_is_a_boolean(tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"sas": []}))
    keys.chmod(0o600)
    base = {"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "keys_file": str(keys)}
    p = tmp_path / "ha.json"
    p.write_text(json.dumps(base))
    assert load_config(str(p)).dad_skip_pinned is False
    p.write_text(json.dumps(dict(base, dad_skip_pinned=True)))
    assert load_config(str(p)).dad_skip_pinned is True
    p.write_text(json.dumps(dict(base, dad_skip_pinned="yes")))
    with pytest.raises(UserError, match="dad_skip_pinned"):
        load_config(str(p))
