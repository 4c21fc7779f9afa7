"""roam6_codec: the full Mobility Header codec the host tools speak (the HA, the CN, `roam6 mh`,
the tests). It never ships to a board; the MN's compact codec lives in firmware/roam6/wire and is
checked against this one byte for byte (tests/firmware/test_registration.py, test_rrmsg.py).

It builds on the firmware's wire primitives (roam6.wire.checksum, .addr, .binding, .ipv6,
.errors), so both sides share one checksum, one address form and one BU layout. Plain Python that
also runs on MicroPython: the firmware tests use it as the MN's peer on both runtimes.
"""
