"""ha/homelinkdad.py: the home link's addresses still in DAD, read from /proc/net/if_inet6."""
from roam6_host.ha.homelinkdad import tentative

LINES = """00000000000000000000000000000001 01 80 10 80       lo
fe800000000000002814 3d
fe8000000000000028143dfffeb9aa74 05 40 20 c0     h2
20010db800aa00000000000000000002 05 40 00 80     h2
20010db800aa00000000000000000009 05 40 00 zz     h2
fe8000000000000000fc00fffe000001 04 40 20 c0   home
"""


def test_tentative_lists_only_that_links_addresses_in_dad(tmp_path):
    p = tmp_path / "if_inet6"
    p.write_text(LINES)
    # flags 0xc0: tentative (0x40) + permanent; 0x80 alone: DAD over; a bad line is skipped
    assert tentative("h2", str(p)) == ["fe80::2814:3dff:feb9:aa74"]
    assert tentative("home", str(p)) == ["fe80::fc:ff:fe00:1"]
    assert tentative("lo", str(p)) == [] and tentative("nothere", str(p)) == []
    assert tentative("h2", str(tmp_path / "missing")) == []
