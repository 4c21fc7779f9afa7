"""The binding cache's expiry heap holds one row per binding: refreshes and moves (a later
expiry) add none, the row is rescheduled when it comes up, so the HA's memory stays flat however
often its MNs refresh (`roam6 hil run soak`: HA RSS over time); expiry still comes on time."""
from ha_helpers import NAT_SRC, T0, bu4, exchange, parse_ba
from test_limits import cache


def test_refreshes_add_no_expiry_rows_and_the_binding_expires_after_the_last():
    c = cache()
    t = T0
    for i in range(300):                       # a refresh a second (each BU a new timestamp second)
        src = NAT_SRC if i % 2 else ("udp4", "198.18.12.3", 40002)      # moving between two peers
        [(ba, _)] = exchange(c, bu4(i + 1, now=t), src, t, wall=t)
        assert parse_ba(ba)[1].status == 0
        c.handle_timer(t)
        t += 1000
    assert len(c._expiry) == 1, len(c._expiry)
    b = next(iter(c.bindings.values()))
    last = t - 1000
    assert b.expires == last + b.lifetime * 1000
    assert c.get_timer() <= b.expires
    while c.get_timer() is not None and c.get_timer() < b.expires:
        c.handle_timer(c.get_timer())          # the row comes up early, moves on, once
        assert c.bindings and len(c._expiry) == 1
    c.handle_timer(b.expires - 1)
    assert c.bindings
    c.handle_timer(b.expires)
    assert not c.bindings and [e.kind for e in c.events()][-1] == "binding_removed"
