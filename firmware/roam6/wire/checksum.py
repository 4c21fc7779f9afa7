"""Internet checksum (RFC 1071) with the IPv6 pseudo-header (RFC 8200 §8.1).

`inet_sum`, `finish` and `checksum6` are hot paths `roam6.accel` may replace with native (or viper)
versions: keep them plain and importable by name.
"""
import struct


def inet_sum(data, s=0):
    """Running sum of the big-endian 16-bit words of data (odd tail zero-padded), added to s
    (a running sum). (One unpack: fast on CPython; on MicroPython accel's viper/native version
    takes over.)"""
    n = len(data)
    h = n >> 1
    if h:
        s += sum(struct.unpack_from(">%dH" % h, data, 0))
    if n & 1:
        s += data[n - 1] << 8
    return s


def finish(s):
    """Fold a running sum s and complement it: the 16-bit value for the checksum field."""
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def pseudo_sum(src, dst, length, nh):
    """Sum of the IPv6 pseudo-header: src, dst, 32-bit upper-layer length, next header."""
    return inet_sum(dst, inet_sum(src)) + (length >> 16) + (length & 0xFFFF) + nh


def checksum6(src, dst, nh, payload):
    """Checksum of an upper-layer payload (with its checksum field zeroed, or as received to verify:
    a correct one then gives 0)."""
    return finish(inet_sum(payload, pseudo_sum(src, dst, len(payload), nh)))

# (IPv4's pseudo-header sum is the same sum with 4-byte addresses and a 16-bit length:
# roam6_codec.udp.pseudo_sum4; no name here, so none on the MN's heap)


# The fastest implementation that loads (native module -> viper -> the Python above): roam6.accel.
# (Its module is dropped on the MN once picked: nothing here keeps a reference to it.)
from roam6 import accel  # noqa: E402

inet_sum = accel.pick("inet_sum", inet_sum)
finish = accel.pick("finish", finish)
checksum6 = accel.pick("checksum6", checksum6)
del accel
