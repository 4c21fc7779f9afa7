"""Every integer field the JSON codec encodes is checked against its wire width before packing:
one past the top (or below 0) raises FieldError naming the field and the message/option it sits
in, never a bare struct error; the top value itself encodes."""
import pytest

from roam6_codec import icmp6, mh
from roam6_codec import jsonform as wj

NEEDS = {"UnknownMH": {"mh_type": 200}, "UnknownOption": {"otype": 200}, "UnknownNDOption": {"otype": 200},
         "LinkLayerAddress": {"otype": 1}, "UnknownICMPv6": {"icmp_type": 200}}


def int_fields():
    for name, cls in sorted(wj.CLASSES.items()):
        base = NEEDS.get(name, {})
        obj = wj.from_dict(dict(base, type=name))
        ren = wj.RENAME.get(cls, {})
        for attr, default in sorted(obj.__dict__.items()):
            bits = wj._layout(cls).get(attr, wj._BITS.get(attr))
            if bits is None or bits < 0 or isinstance(default, bool) or not isinstance(default, int):
                continue
            yield name, ren.get(attr, attr), bits, base


FIELDS = list(int_fields())


def encode(d):
    """Bytes of a message, or of an option inside a Binding Update."""
    cls = wj.CLASSES[d["type"]]
    if issubclass(cls, mh.Message):
        return wj.mh_from_dict(d)
    if issubclass(cls, icmp6.ICMPv6Message) or hasattr(cls, "icmp_type"):
        return wj.from_dict(d).encode()
    return wj.mh_from_dict({"type": "BindingUpdate", "options": [d]})


def test_the_table_covers_what_was_reported():
    names = {(n, f) for n, f, _b, _x in FIELDS}
    assert {("BindingUpdate", "seq"), ("BindingUpdate", "lifetime"), ("BindingAck", "status"),
            ("NonceIndices", "home_nonce_index"), ("IPv4HomeAddress", "prefix_len"),
            ("NATDetection", "refresh_time"), ("BindingUpdate", "payload_proto")} <= names


@pytest.mark.parametrize("name,field,bits,base", FIELDS)
def test_out_of_range_names_the_field(name, field, bits, base):
    for bad in (1 << bits, -1):
        d = dict(base, type=name, **{field: bad})
        with pytest.raises(wj.FieldError) as e:
            encode(d)
        assert e.value.field == field and name in e.value.where, str(e.value)
        assert "%r" % field in str(e.value) and "out of range 0..%d" % ((1 << bits) - 1) in str(e.value)
    top = dict(base, type=name, **{field: (1 << bits) - 1})
    try:
        encode(top)
    except ValueError as e:  # only a rule of the message itself (an authenticator to compute, ...)
        assert not isinstance(e, wj.FieldError) and "format" not in str(e), str(e)


def test_option_errors_say_which_option_of_which_message():
    d = {"type": "BindingUpdate", "options": [{"type": "PadN", "length": 2},
                                              {"type": "MobilityAuth", "mobility_spi": 1 << 32}]}
    with pytest.raises(wj.FieldError) as e:
        wj.mh_from_dict(d)
    assert e.value.where == ["BindingUpdate", "options[1]", "MobilityAuth"] and e.value.field == "mobility_spi"


def test_wrong_types_and_sizes_name_the_field():
    with pytest.raises(wj.FieldError) as e:
        wj.mh_from_dict({"type": "BindingUpdate", "seq": True})
    assert e.value.field == "seq" and "want an integer" in str(e.value)
    with pytest.raises(wj.FieldError) as e:
        wj.mh_from_dict({"type": "BindingUpdate", "options": [{"type": "AlternateCoA", "address": "192.0.2.1"}]})
    assert e.value.field == "address" and "want 16 bytes, got 4" in str(e.value)
    with pytest.raises(wj.FieldError) as e:
        wj.packet_from_dict({"ipv6": {"src": "::1", "dst": "::2"}, "udp": {"sport": 1}})
    assert e.value.where == ["udp"] and e.value.field == "dport" and "missing" in str(e.value)
