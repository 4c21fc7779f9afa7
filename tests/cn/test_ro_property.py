"""Property test: the MN's rr core and the CN core under random schedules (moves, going home, IPv4-only
networks, traffic, time jumps) over a lossy, duplicating, reordering network. Invariants:
no exception on either side; after handle_timer(now) no deadline is <= now; never more than
MAX_UPDATE_RATE messages of one MH type to the CN in any second; whenever the MN sends data
direct, the CN holds a binding for exactly that CoA; with policy `never` the CN never sees a HoTI,
CoTI or BU."""
import random

from hypothesis import given, settings, strategies as st

from roam6.core import rr
from roam6.core.ro_policy import RoPolicy
from roam6_codec import mh as M
from roam6.wire.ipv6 import decode_ipv6
from roam6_host.cn.core import Correspondent

HOA = bytes.fromhex("20010db8000100000000000000000100")
CN = bytes.fromhex("20010db8000300000000000000000300")
COAS = [bytes.fromhex("20010db80002000000000000000002%02x" % i) for i in range(3)]
V4 = b"\xc0\x00\x02\x64"

step = st.one_of(
    st.tuples(st.just("move"), st.integers(0, 2)),
    st.tuples(st.just("home"), st.just(0)),
    st.tuples(st.just("v4"), st.just(0)),
    st.tuples(st.just("traffic"), st.integers(1, 8)),
    st.tuples(st.just("wait"), st.integers(1, 400000)),
    st.tuples(st.just("tick"), st.integers(1, 1500)),
)


class World:
    def __init__(self, mode, seed, loss, dup):
        self.rng = random.Random(seed)
        self.loss, self.dup = loss, dup
        self.mn = rr.RouteOptimizer(HOA, RoPolicy(mode),
                                    rand=lambda n: bytes(self.rng.getrandbits(8) for _ in range(n)))
        self.cn = Correspondent(CN, rand=lambda n: bytes(self.rng.getrandbits(8) for _ in range(n)))
        self.now = 0
        self.sent = []  # (time, MH type) of every MH the MN sent
        self.in_flight = []  # (deliver at, to, packet)
        self.mn.move(COAS[0], 0)
        self.coa = COAS[0]

    def net(self, to, pkt):
        if self.rng.random() < self.loss:
            return
        for _ in range(2 if self.rng.random() < self.dup else 1):
            self.in_flight.append((self.now + self.rng.randint(1, 80), to, pkt))

    def pump(self, until):
        """Run packets and timers up to time `until`."""
        while True:
            t_mn = self.mn.get_timer()
            t_net = min((x[0] for x in self.in_flight), default=None)
            nxt = min([t for t in (t_mn, t_net) if t is not None], default=None)
            if nxt is None or nxt > until:
                break
            self.now = max(self.now, nxt)
            self.mn.handle_timer(self.now)
            self.flush()
            t_after = self.mn.get_timer()
            assert t_after is None or t_after > self.now, "a deadline left in the past: a driver would spin"
            due = [x for x in self.in_flight if x[0] <= self.now]
            self.in_flight = [x for x in self.in_flight if x[0] > self.now]
            self.rng.shuffle(due)  # reordering
            for _, to, pkt in due:
                if to == "cn":
                    self.cn.receive(pkt, self.now)
                else:
                    p = decode_ipv6(pkt)
                    self.mn.receive(p.src, p.dst, bytes(p.payload), p.rh2, self.now)
            self.flush()
            self.check()
        self.now = max(self.now, until)
        self.mn.handle_timer(self.now)
        self.flush()
        self.check()

    def flush(self):
        for via, pkt in self.mn.datagrams_to_send(self.now):
            p = decode_ipv6(pkt)
            self.sent.append((self.now, type(M.decode_mh(bytes(p.payload))).__name__))
            if via == "direct" and self.coa is None:
                raise AssertionError("a direct packet with no IPv6 care-of address")
            self.net("cn", pkt)
        for pkt, _dst in self.cn.datagrams_to_send(self.now):
            self.net("mn", pkt)

    def check(self):
        coa = self.mn.route(CN, self.now)
        if coa is not None:
            assert coa == self.coa, "route() gave an old CoA"
            b = self.cn.binding(HOA, self.now)
            assert b is not None and b.coa == coa, "MN sends direct, CN holds %r" % (b and b.coa)

    def rate_ok(self):
        by = {}
        for t, k in self.sent:
            by.setdefault(k, []).append(t)
        for k, ts in by.items():
            for i in range(len(ts) - rr.MAX_UPDATE_RATE):
                assert ts[i + rr.MAX_UPDATE_RATE] - ts[i] >= 1000, (k, ts[i:i + 4])


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(["always", "auto", "never"]), st.integers(0, 2 ** 32), st.sampled_from([0.0, 0.1, 0.4]),
       st.sampled_from([0.0, 0.2]), st.lists(step, min_size=1, max_size=25))
def test_random_schedules_keep_the_invariants(mode, seed, loss, dup, steps):
    w = World(mode, seed, loss, dup)
    for kind, arg in steps:
        if kind == "move":
            w.coa = COAS[arg]
            w.mn.move(w.coa, w.now)
        elif kind == "home":
            w.coa = None
            w.mn.home(w.now)
        elif kind == "v4":
            w.coa = None
            w.mn.move(V4, w.now)
        elif kind == "traffic":
            for i in range(arg):
                w.mn.note_traffic(CN, w.now + i)
            w.flush()
        elif kind == "wait":
            w.pump(w.now + arg)
        else:
            w.pump(w.now + arg)
        w.flush()  # a driver sends what the core queued right after each call
        w.check()
    w.pump(w.now + 60000)
    w.rate_ok()
    if mode == "never":
        assert w.sent == [] and w.cn.stats["hot"] == w.cn.stats["cot"] == w.cn.stats["bu_ok"] == 0


def test_a_lossless_always_run_binds():
    """The property test's world itself works: without loss the MN ends up direct."""
    w = World("always", 1, 0.0, 0.0)
    w.mn.note_traffic(CN, 0)
    w.flush()
    w.pump(2000)
    assert w.mn.route(CN, w.now) == COAS[0]
