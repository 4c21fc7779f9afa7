"""Movement detection (roam6.core.movement): link events in, "send a BU now" decisions out."""
from support import unhex
from roam6.core.movement import Movement, usable, in_prefix

TENTATIVE, DEPRECATED, DADFAILED, OPTIMISTIC = 0x40, 0x20, 0x08, 0x04  # the kernel's IFA_F_* (movement's consts)

A6 = unhex("20010db800a100000000000000000050")  # apA
C6 = unhex("20010db800c100000000000000000050")  # apC
C4 = unhex("c6336432")  # 198.51.100.50
B4 = unhex("c0000232")  # 192.0.2.50
HOA = unhex("20010db800aa00000000000000000100")
LL = unhex("fe800000000000000000000000000001")
HOME = (unhex("20010db800aa00000000000000000000"), 64)


def add(addr, flags=0, plen=64):
    return ("addr", 4 if len(addr) == 4 else 6, addr, plen, True, flags)


def rm(addr):
    return ("addr", 4 if len(addr) == 4 else 6, addr, 64, False, 0)


def test_usable_addresses():
    assert usable(6, A6, 0) and usable(6, A6, TENTATIVE | OPTIMISTIC)
    assert not usable(6, A6, TENTATIVE) and not usable(6, A6, DADFAILED)
    assert not usable(6, LL, 0) and not usable(6, unhex("ff02" + "00" * 13 + "01"), 0)
    assert not usable(6, bytes(15) + b"\x01", 0)
    assert usable(4, B4, 0) and not usable(4, unhex("a9fe0101"), 0) and not usable(4, unhex("7f000001"), 0)
    assert in_prefix(HOA, HOME[0], 64) and not in_prefix(A6, HOME[0], 64)
    assert in_prefix(unhex("20010db800ab" + "00" * 10), HOME[0], 44)
    assert not in_prefix(unhex("20010db800bb" + "00" * 10), HOME[0], 44)


def test_nothing_before_link_up_then_moved_at_once():
    m = Movement()
    assert m.feed(add(A6), 1) is None  # link state not known yet: no decision
    assert m.feed(("link", True), 2) == ("moved", A6, "udp6")
    assert (m.coa, m.transport, m.since) == (A6, "udp6", 2)
    assert m.feed(add(LL), 3) is None
    assert m.feed(("link", False), 4) == ("detached", None, None)
    assert m.coa is None
    assert m.feed(("link", False), 5) is None


def test_link_back_with_same_address_announces_again():
    m = Movement()
    m.feed(("link", True), 0)
    assert m.feed(add(A6), 1) == ("moved", A6, "udp6")
    assert m.feed(("link", True), 2) is None  # already up: nothing new
    m.feed(("link", False), 3)
    assert m.feed(("link", True), 4) == ("moved", A6, "udp6")


def test_tentative_waits_for_dad_and_optimistic_does_not():
    m = Movement()
    m.feed(("link", True), 0)
    assert m.feed(add(A6, TENTATIVE), 1) is None
    assert m.feed(add(A6, 0), 2) == ("moved", A6, "udp6")  # DAD done
    m2 = Movement()
    m2.feed(("link", True), 0)
    assert m2.feed(add(A6, TENTATIVE | OPTIMISTIC), 1) == ("moved", A6, "udp6")


def test_new_network_address_wins_over_lingering_old_one():
    m = Movement()
    m.feed(("link", True), 0)
    m.feed(add(A6), 1)
    m.feed(("link", False), 2)
    assert m.feed(("link", True), 3) == ("moved", A6, "udp6")  # back: announce at once
    assert m.feed(add(C6, TENTATIVE), 4) is None
    assert m.feed(add(C6), 5) == ("moved", C6, "udp6")
    assert m.feed(add(A6), 6) is None  # a lifetime refresh of the old one changes nothing
    assert m.feed(add(A6, DEPRECATED), 7) is None
    assert m.feed(rm(C6), 8) == ("moved", A6, "udp6")  # the old one is all that is left
    assert m.feed(rm(A6), 9) == ("detached", None, None)


def test_deprecated_only_when_nothing_else():
    m = Movement()
    m.feed(("link", True), 0)
    m.feed(add(A6), 1)
    m.feed(add(C6), 2)
    assert m.coa == C6
    assert m.feed(add(C6, DEPRECATED), 3) == ("moved", A6, "udp6")


def test_ipv4_with_udp_when_no_ipv6_and_profile_order():
    m = Movement(["udp6", "udp4"])
    m.feed(("link", True), 0)
    assert m.feed(add(B4, plen=24), 1) == ("moved", B4, "udp4")
    assert m.feed(add(C6), 2) == ("moved", C6, "udp6")  # IPv6 preferred by the order given
    assert m.feed(rm(C6), 3) == ("moved", B4, "udp4")
    esp = Movement(["udp4"])  # esp32 profile: IPv4 only
    esp.feed(("link", True), 0)
    assert esp.feed(add(C6), 1) is None
    assert esp.feed(add(C4, plen=24), 2) == ("moved", C4, "udp4")
    ip6 = Movement(["ip6", "udp4"])
    ip6.feed(("link", True), 0)
    assert ip6.feed(add(A6), 1) == ("moved", A6, "ip6")
    v4first = Movement(["udp4", "udp6"])
    v4first.feed(("link", True), 0)
    v4first.feed(add(C6), 1)
    assert v4first.feed(add(C4), 2) == ("moved", C4, "udp4")


def test_new_default_router_reannounces_same_address():
    m = Movement(["udp4"])
    m.feed(("link", True), 0)
    m.feed(add(B4), 1)
    r1, r2 = unhex("c0000201"), unhex("c0000202")
    assert m.feed(("router", 4, r1), 2) is None  # first router seen: nothing moved
    assert m.feed(("router", 4, r1), 3) is None  # the same one again
    assert m.feed(("router", 6, LL), 5) is None  # other family than the CoA
    assert m.feed(("router", 4, r2), 6) == ("moved", B4, "udp4")  # replaced: another network
    assert m.feed(("router", 6, LL[:15] + b"\x02"), 7) is None
    assert m.feed(("router", 4, None), 8) is None
    assert m.feed(("router", 4, r1), 9) is None  # arrived after the old one went: no replacement


def test_roam_with_flush_gives_one_decision_per_roam():
    # what the bench and a Wi-Fi stack do: carrier down, old addresses and routes flushed,
    # carrier up, default route, then the new address (static) or address then route (DHCPv4)
    m = Movement(["udp4"])
    got = []
    evs = [("link", True), add(B4), ("router", 4, unhex("c0000201")),
           ("link", False), rm(B4), ("router", 4, None), ("link", True), ("router", 4, unhex("c6336401")), add(C4),
           ("link", False), rm(C4), ("router", 4, None), ("link", True), add(B4), ("router", 4, unhex("c0000201"))]
    for t, e in enumerate(evs):
        d = m.feed(e, t)
        if d:
            got.append((t, d))
    assert got == [(1, ("moved", B4, "udp4")), (3, ("detached", None, None)), (8, ("moved", C4, "udp4")),
                   (9, ("detached", None, None)), (13, ("moved", B4, "udp4"))]


def test_home_link_detected():
    m = Movement(["udp6", "udp4"], HOME)
    m.feed(("link", True), 0)
    m.feed(add(A6), 1)
    assert m.feed(add(HOA), 2) == ("home", HOA, None)
    assert m.kind == "home"
    slaac = HOA[:8] + unhex("000000fffe00b001")
    assert m.feed(add(slaac), 3) is None  # another home address (SLAAC beside the HoA): still home
    m.feed(rm(slaac), 3)
    assert m.feed(rm(HOA), 3) == ("moved", A6, "udp6")
    assert m.feed(("other",), 4) is None and m.ignored == 1
    v4first = Movement(["udp4", "udp6"], HOME)  # home wins over the transport order
    v4first.feed(("link", True), 0)
    v4first.feed(add(B4), 1)
    assert v4first.feed(add(HOA), 2) == ("home", HOA, None)
    assert v4first.feed(add(A6), 3) == ("moved", B4, "udp4")  # left home: an old home address lingers
    esp = Movement(["udp4"], HOME)  # no IPv6 transport: never "home"
    esp.feed(("link", True), 0)
    esp.feed(add(B4), 1)
    assert esp.feed(add(HOA), 2) is None
