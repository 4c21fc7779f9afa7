"""Bounded resources at the HA (ha/limits.py, ratelimit.py): rejections are rate-limited per
source and globally BEFORE the HMAC work, a bound MN's refreshes pass any flood, bindings are
capped per credential and in total (BA 130), and a keys file that is not a regular file is
refused without blocking."""
import os
import threading

import pytest

from roam6_codec import consts as C
from roam6_host.errors import UserError
from roam6_host.ha.cache import BindingCache
from roam6_host.ha.config import load_keys, parse_config
from roam6_host.ha.limits import REJECTIONS, HALimits
from roam6_host.ha.sa import SA
from roam6_host.ratelimit import SourceLimit, TokenBucket

from ha_helpers import (HA, HOA, HOA2, KEY, KEY2, NAI, NAI2, NAT_SRC, PREFIX, SPI, SPI2, T0, V4COA, a6, build_bu,
                        bu4, exchange, ntp_timestamp, parse_ba)


class CountingSA(SA):
    __slots__ = ("calls",)

    def __init__(self, *a):
        super().__init__(*a)
        self.calls = 0

    def mnha_auth(self, coa, hoa, mh_data):
        self.calls += 1
        return SA.mnha_auth(self, coa, hoa, mh_data)


def cache(**kw):
    sas = {SPI: CountingSA(NAI, SPI, KEY, HOA), SPI2: CountingSA(NAI2, SPI2, KEY2, None)}
    return BindingCache(HA, PREFIX, sas, **kw)


def wrong_key(seq, now):
    return build_bu(KEY, SPI, NAI, HOA, HA, seq, 150, "udp4", v4coa=V4COA,
                    timestamp=ntp_timestamp(now, seq), mac_key=bytes(16))


def test_token_bucket_and_source_limit():
    b = TokenBucket(10, 5)
    assert sum(b.take(0) for _ in range(100)) == 5
    assert sum(b.take(1000) for _ in range(100)) == 5       # refilled to the burst, not beyond
    lim = SourceLimit(1, 1, 10, 10, max_sources=4)
    assert sum(lim.take(("h", p), 0) for p in range(1000)) == 10    # rotating keys: the global bucket
    assert len(lim.sources) <= 4


def test_wrong_key_flood_from_one_source_costs_bounded_hmacs_and_answers():
    c = cache()
    sa = c.sas[SPI]
    n = 1000
    answers = sum(len(exchange(c, wrong_key(i, T0 + i), NAT_SRC, T0 + i)) for i in range(n))   # 1,000 in 1 s
    per_rate, per_burst, _g, _gb = REJECTIONS
    assert answers <= per_burst + per_rate + 1, answers
    assert sa.calls <= 2 * (per_burst + per_rate + 1), sa.calls     # verify + sign, only within budget
    assert c.ignored >= n - answers


def test_wrong_key_flood_from_rotating_sources_is_bounded_globally():
    c = cache()
    sa = c.sas[SPI]
    n = 10000
    answers = 0
    for i in range(n):                                   # 10,000 in 1 s, every one from a new host
        src = ("udp4", "10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255), 4000)
        answers += len(exchange(c, wrong_key(i, T0 + i // 10), src, T0 + i // 10))
    _p, _pb, g_rate, g_burst = REJECTIONS
    assert answers <= g_burst + g_rate + 1, answers
    assert sa.calls <= 2 * (g_burst + g_rate + 1), sa.calls


def test_a_bound_mn_refreshes_through_a_flood():
    c = cache()
    [(ba, _)] = exchange(c, bu4(1, now=T0), NAT_SRC, T0, wall=T0)
    assert parse_ba(ba)[1].status == 0
    answered = 0
    for i in range(3000):                                # exhaust every budget from everywhere
        src = ("udp4", "10.0.%d.%d" % (i >> 8, i & 255), 4000)
        answered += len(exchange(c, wrong_key(2 + i, T0 + 1), src, T0 + 1, wall=T0 + 1))
    assert not c.limits.rejections.glob.peek(T0 + 1)
    # the flood names the bound HoA's own SA: each costs one HMAC (the verify), never a signed answer
    # beyond the global budget
    _p, _pb, _g, g_burst = REJECTIONS
    assert answered <= g_burst and c.sas[SPI].calls <= 3000 + 2 * g_burst + 2
    t = T0 + 1000
    [(ba, _)] = exchange(c, bu4(5000, now=t), ("udp4", "198.18.99.1", 5), t, wall=t)   # moved meanwhile
    assert parse_ba(ba)[1].status == 0 and c.bindings[HOA].peer == ("198.18.99.1", 5)


def _sa2_bu(hoa, seq, now, lifetime=150):
    return build_bu(KEY2, SPI2, NAI2, hoa, HA, seq, lifetime, "udp4", v4coa=V4COA, timestamp=ntp_timestamp(now, seq))


def test_bindings_per_credential_capped_with_130():
    c = cache()
    hoa3 = a6("2001:db8:aa::300")
    [(ba, _)] = exchange(c, _sa2_bu(HOA2, 1, T0), NAT_SRC, T0, wall=T0)
    assert parse_ba(ba, key=KEY2, hoa=HOA2)[1].status == 0
    [(ba, _)] = exchange(c, _sa2_bu(hoa3, 2, T0 + 1), NAT_SRC, T0 + 1, wall=T0 + 1)
    assert parse_ba(ba, key=KEY2, hoa=hoa3)[1].status == C.BA_INSUFFICIENT
    assert hoa3 not in c.bindings and c.events()[-1].reason == "capacity"
    exchange(c, _sa2_bu(HOA2, 3, T0 + 2, lifetime=0), NAT_SRC, T0 + 2, wall=T0 + 2)    # dereg the first
    [(ba, _)] = exchange(c, _sa2_bu(hoa3, 4, T0 + 3), NAT_SRC, T0 + 3, wall=T0 + 3)
    assert parse_ba(ba, key=KEY2, hoa=hoa3)[1].status == 0


def test_bindings_in_total_capped_with_130_and_per_sa_cap_configurable():
    c = cache(limits=HALimits(max_bindings=1, max_bindings_per_sa=5))
    exchange(c, bu4(1, now=T0), NAT_SRC, T0, wall=T0)
    [(ba, _)] = exchange(c, _sa2_bu(HOA2, 1, T0), NAT_SRC, T0, wall=T0)
    assert parse_ba(ba, key=KEY2, hoa=HOA2)[1].status == C.BA_INSUFFICIENT
    [(ba, _)] = exchange(c, bu4(2, now=T0 + 1000), NAT_SRC, T0 + 1000, wall=T0 + 1000)   # a refresh passes
    assert parse_ba(ba)[1].status == 0
    c = cache(limits=HALimits(max_bindings_per_sa=2))
    for i, h in enumerate((HOA2, a6("2001:db8:aa::300"))):
        [(ba, _)] = exchange(c, _sa2_bu(h, i + 1, T0 + i), NAT_SRC, T0 + i, wall=T0 + i)
        assert parse_ba(ba, key=KEY2, hoa=h)[1].status == 0


def test_ha_json_caps_fields(tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text('{"sas": []}')
    keys.chmod(0o600)
    base = {"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "keys_file": str(keys)}
    cfg = parse_config(dict(base, max_bindings=7, max_bindings_per_sa=3))
    assert (cfg.max_bindings, cfg.max_bindings_per_sa) == (7, 3)
    assert parse_config(base).max_bindings_per_sa == 1
    with pytest.raises(UserError, match="max_bindings"):
        parse_config(dict(base, max_bindings=0))


def test_keys_file_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "keys.json"
    os.mkfifo(fifo, 0o600)
    res = []
    t = threading.Thread(target=lambda: res.append(_try_load(fifo)), daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "load_keys blocked on a FIFO"
    assert res and "not a regular file" in res[0]


def _try_load(path):
    try:
        load_keys(str(path))
    except UserError as exc:
        return str(exc)
    return "loaded"


def test_log_lines_once_per_source_are_bounded_in_all():
    import io
    import json as _json

    from roam6_host.ha.driver import Logger
    buf = io.StringIO()
    log = Logger(buf)
    for i in range(5000):                                # a spoofed flood: every source new
        log.once(("10.%d.%d.1" % (i >> 8, i & 255), "spi"), "bu_dropped", reason="spi: unknown SPI 7")
    lines = [_json.loads(x) for x in buf.getvalue().splitlines()]
    assert 150 <= len(lines) <= 300, len(lines)
    # every line left out is counted: in a later line's log_lines_suppressed, or still pending
    pending = log.suppressed
    assert pending > 0 and pending + sum(x.get("log_lines_suppressed", 0) for x in lines) == 5000 - len(lines)
    import time as _time
    _time.sleep(0.05)
    log.once(("192.0.2.1", "spi"), "bu_dropped", reason="spi: unknown SPI 7")
    last = _json.loads(buf.getvalue().splitlines()[-1])
    assert last["log_lines_suppressed"] == pending and log.suppressed == 0


def test_cn_binding_errors_for_data_are_bounded_in_all():
    from roam6.wire.ipv6 import build_ipv6
    from roam6_codec.udp import build_udp
    from roam6_host.cn.core import Correspondent
    cn_addr = a6("2001:db8:3::300")
    cn = Correspondent(cn_addr, kcn=bytes(20))
    n = 0
    for i in range(5000):                                # HAO data from 5,000 sources in 1 s
        src = a6("2001:db8:2::%x" % (i + 1))
        pkt = build_ipv6(src, cn_addr, 17, build_udp(5000, 7, b"x", src=HOA, dst=cn_addr), hao=HOA)
        cn.receive(pkt, i // 5)
        n += len(cn.datagrams_to_send(i // 5))
    assert n <= 100 + 100 + 1, n                          # was one per packet once 1,024 sources were known


def test_sighup_reload_with_a_fifo_as_keys_file_logs_and_keeps_the_sas(tmp_path):
    import io
    import json as _json

    from roam6_host.ha.driver import HomeAgent, Logger
    keys = tmp_path / "keys.json"
    keys.write_text(_json.dumps({"sas": [{"nai": NAI.decode(), "spi": SPI, "key": KEY.hex()}]}))
    keys.chmod(0o600)
    cfg = parse_config({"home_prefix": "2001:db8:aa::/64", "address": "2001:db8:aa::1", "keys_file": str(keys)})
    buf = io.StringIO()
    ha = HomeAgent(cfg, log=Logger(buf))
    keys.unlink()
    os.mkfifo(keys, 0o600)                               # replaced by a FIFO nobody writes to
    t = threading.Thread(target=ha.reload_keys, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "reload_keys blocked on a FIFO"
    [line] = [_json.loads(x) for x in buf.getvalue().splitlines()]
    assert line["ev"] == "error" and "not a regular file" in line["reason"] and str(keys) in line["reason"]
    assert SPI in ha.cache.sas                           # the SAs in use stay
