"""The takeover's pacing (ha/continuity.py announce(with_chunk), ha/replica.py _proxies): the first
NA_CHUNK HoAs get their unsolicited NAs and then their proxy entries at once, the rest one chunk per
pass of the HA's loop (its timer says "now" meanwhile), so the loop serves the TUN between chunks;
a failed NA send still proxies every HoA; going standby drops what is queued. The raw socket of the
NAs is replaced by a recorder here (its packets are checked in tests/ha/test_ha_standby_netns.py)."""
from roam6_host.ha import continuity as C


class _Cfg:
    journal = None
    replica = None
    home_link = "h0"


class _Cache:
    def __init__(self, n):
        self.bindings = {bytes(14) + i.to_bytes(2, "big"): object() for i in range(n)}


class _HA:
    def __init__(self, n):
        self.cfg, self.cache, self.lines = _Cfg(), _Cache(n), []

    def log(self, ev, **f):
        self.lines.append((ev, f))


def _keep(monkeypatch, n, fail=False):
    sent = []

    def na(ifname, hoas):
        if fail:
            raise OSError(100, "Network is down")
        sent.append(list(hoas))
        return len(hoas)
    monkeypatch.setattr(C, "unsolicited_na", na)
    return C.Continuity(_HA(n)), sent


def test_proxies_follow_the_nas_chunk_by_chunk(monkeypatch):
    keep, sent = _keep(monkeypatch, 2 * C.NA_CHUNK + 5)
    proxied = []
    keep.announce(with_chunk=proxied.append)
    assert [len(c) for c in sent] == [C.NA_CHUNK] and proxied == sent and keep.get_timer() == 0
    keep.handle_timer(0)
    keep.handle_timer(0)
    assert [len(c) for c in proxied] == [C.NA_CHUNK, C.NA_CHUNK, 5] and proxied == sent
    assert sorted(h for c in proxied for h in c) == sorted(keep.ha.cache.bindings)
    assert keep.get_timer() is None and ("unsolicited_na", {"hoas": 2 * C.NA_CHUNK + 5}) in keep.ha.lines
    keep.announce()                                     # a journal restore: NAs only, as before
    assert proxied[-1] is not None and len(proxied) == 3


def test_failed_nas_still_proxy_everything_and_standby_drops_the_queue(monkeypatch):
    keep, _sent = _keep(monkeypatch, C.NA_CHUNK + 1, fail=True)
    proxied = []
    keep.announce(with_chunk=proxied.append)
    assert len(proxied) == 1 and len(proxied[0]) == C.NA_CHUNK + 1 and keep.get_timer() is None
    keep, sent = _keep(monkeypatch, C.NA_CHUNK + 1)
    proxied = []
    keep.announce(with_chunk=proxied.append)
    keep.drop_announcements()
    assert keep.get_timer() is None and len(proxied) == 1
