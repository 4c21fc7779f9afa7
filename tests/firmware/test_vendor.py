"""Vendor data on the MN's BUs (roam6.core.vendor, RFC 5094 type 19 / RFC 5096 type 18): laid out
by the alignment rules, covered by the MN-HA authenticator, capped, and gone after clear()."""
from roam6.core import registration, vendor
from roam6.crypto import mnha_auth_data
from roam6.wire.binding import encode_bu as plain
from roam6_codec import mhopts as mo
from roam6_codec.mh import decode_mh
from support import raises
from test_registration import HA, HOA, KEY, V4COA, V6COA, make, one_bu


def bu_of(r, coa, transport):
    r.move(coa, transport, 0)
    pkt, _req = one_bu(r)
    return decode_mh(pkt[40:] if transport != "ip6" else pkt[64:])


def test_vendor_and_experimental_options_in_the_bu_under_the_mac():
    r = make()
    try:
        vendor.attach(r, 32473, 1, b"fw 1.4.2")
        vendor.attach(r, 99999, 7, b"\x00\x01")
        vendor.experimental(r, b"\xab")
        vendor.attach(r, 32473, 1, b"fw 1.4.3")          # replaces, keeps the order of the others
        bu = bu_of(r, V4COA, "udp4")
        vs = [o for o in bu.options if isinstance(o, mo.VendorSpecific)]
        assert [(o.vendor_id, o.subtype, bytes(o.data)) for o in vs] == [(99999, 7, b"\x00\x01"),
                                                                         (32473, 1, b"fw 1.4.3")]
        ex = bu.find(mo.ExperimentalOption)
        assert ex is not None and bytes(ex.data) == b"\xab"
        raw = bytearray(bu.raw)
        for i in range(12, len(raw)):                     # type 19 at 4n+2 (RFC 5094)
            if raw[i] == 19 and raw[i + 1] >= 5 and raw[i + 2:i + 6] == b"\x00\x01\x86\x9f":
                assert i % 4 == 2
        auth = bu.options[-1]
        assert isinstance(auth, mo.MobilityAuth)
        raw[4] = raw[5] = 0
        want = mnha_auth_data(KEY, b"\0" * 10 + b"\xff\xff" + V4COA, HOA, bytes(raw[:-12]))
        assert bytes(auth.auth_data) == want
        kinds = [type(o).__name__ for o in bu.options if not isinstance(o, (mo.Pad1, mo.PadN))]
        assert kinds == ["MNIdentifier", "IPv4CareofAddress", "ReplayProtection", "VendorSpecific",
                         "ExperimentalOption", "VendorSpecific", "MobilityAuth"], kinds
        # ip6 too
        bu6 = bu_of(make(), V6COA, "ip6")
        assert len([o for o in bu6.options if isinstance(o, mo.VendorSpecific)]) == 2
    finally:
        vendor.clear(r)


def test_cap_and_clear():
    r = make()
    try:
        vendor.attach(r, 1, 1, bytes(60))
        raises(ValueError, vendor.attach, r, 1, 2, bytes(5))   # 65 in all: refused, nothing changed
        raises(ValueError, vendor.attach, r, 1 << 32, 0, b"")
        assert vendor.options() == [(1, 1, bytes(60))]
        vendor.attach(r, 1, 1, bytes(64))                 # replacing the 60 fits
    finally:
        vendor.clear(r)
    assert registration.encode_bu is plain and vendor.options() == []
    bu = bu_of(make(), V4COA, "udp4")
    assert bu.find(mo.VendorSpecific) is None and HA
