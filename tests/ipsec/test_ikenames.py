"""ikev2 keeps RFC 7296's numbers as `_X = const(N)` (no name interned on the MN); the public
names are roam6.ipsec.ikenames'. Both must agree, and ikev2.X must still reach them."""
import os
import re

from roam6.ipsec import ikenames, ikev2

SRC = os.path.join(os.path.dirname(ikev2.__file__), "ikev2.py")


def test_each_folded_constant_has_its_public_name_with_the_same_value():
    consts = dict(re.findall(r"^_([A-Z][A-Z0-9_]*) = const\((\w+)\)", open(SRC).read(), re.M))
    public = {n: v for n, v in vars(ikenames).items() if n.isupper() and isinstance(v, int)}
    assert set(public) <= set(consts), set(public) - set(consts)
    for name, value in public.items():
        assert int(consts[name], 0) == value, name
        assert getattr(ikev2, name) == value == getattr(ikev2, "_" + name)


def test_known_payload_types_agree():
    assert ikev2.KNOWN == ikev2._KNOWN == tuple(range(33, 49))


def test_an_unknown_name_is_still_an_attribute_error():
    try:
        ikev2.NO_SUCH_NAME
    except AttributeError:
        return
    raise AssertionError("ikev2.NO_SUCH_NAME did not raise AttributeError")
