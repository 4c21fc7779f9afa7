"""Read packets from pcap and pcapng files (no third-party library) and find the IP packet in each
frame for the link types roam6 meets: Ethernet (with VLAN tags), raw IP, IPv4, IPv6, BSD loopback,
Linux cooked capture v1/v2."""
import struct


class PcapError(ValueError):
    """The file is not a capture we can read, or a record in it is cut short."""


class Frame:
    def __init__(self, index, ts, linktype, data, orig_len):
        self.index = index  # 1-based, like tcpdump's -# numbering
        self.ts = ts
        self.linktype = linktype
        self.data = data
        self.orig_len = orig_len


def read_frames(path):
    """Yield Frame for every record; raise PcapError on a bad header or a truncated record."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 4:
        raise PcapError("%s: %d bytes, too short for a capture file" % (path, len(blob)))
    magic = blob[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        yield from _pcapng(path, blob)
        return
    for end in ("<", ">"):
        m = struct.unpack(end + "I", magic)[0]
        if m in (0xA1B2C3D4, 0xA1B23C4D):
            scale = 1e-6 if m == 0xA1B2C3D4 else 1e-9
            break
    else:
        raise PcapError("%s is not a pcap or pcapng file (magic %s)" % (path, magic.hex()))
    if len(blob) < 24:
        raise PcapError("%s: pcap file header cut short" % path)
    linktype = struct.unpack_from(end + "I", blob, 20)[0] & 0xFFFF  # upper bits: FCS info
    off = 24
    i = 0
    while off < len(blob):
        i += 1
        if off + 16 > len(blob):
            raise PcapError("frame %d: record header cut short (%d of 16 bytes)" % (i, len(blob) - off))
        sec, frac, caplen, orig = struct.unpack_from(end + "IIII", blob, off)
        off += 16
        if caplen > len(blob) - off:
            raise PcapError("frame %d: record says %d bytes, the file has %d left" % (i, caplen, len(blob) - off))
        yield Frame(i, sec + frac * scale, linktype, blob[off:off + caplen], orig)
        off += caplen


def _pcapng(path, blob):
    off = 0
    end = "<"
    links = []
    i = 0
    while off + 12 <= len(blob):
        btype = struct.unpack_from(end + "I", blob, off)[0]
        if btype == 0x0A0D0D0A:
            bom = blob[off + 8:off + 12]
            end = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        blen = struct.unpack_from(end + "I", blob, off + 4)[0]
        if blen < 12 or off + blen > len(blob):
            raise PcapError("%s: pcapng block at %d has length %d" % (path, off, blen))
        body = blob[off + 8:off + blen - 4]
        if btype == 1 and len(body) >= 2:
            links.append(struct.unpack_from(end + "H", body, 0)[0])
        elif btype == 6 and len(body) >= 20:
            iface, hi, lo, caplen, orig = struct.unpack_from(end + "IIIII", body, 0)
            i += 1
            if iface >= len(links) or caplen > len(body) - 20:
                raise PcapError("frame %d: bad enhanced packet block" % i)
            yield Frame(i, ((hi << 32) | lo) * 1e-6, links[iface], body[20:20 + caplen], orig)
        elif btype == 3 and len(body) >= 4 and links:
            i += 1
            orig = struct.unpack_from(end + "I", body, 0)[0]
            yield Frame(i, 0.0, links[0], body[4:4 + orig], orig)
        off += blen


ETH_IPV6, ETH_IPV4 = 0x86DD, 0x0800


def ip_packet(linktype, data):
    """(offset of the IP packet in the frame, IP version) or (None, why not) for a frame that
    carries no IP packet."""
    if linktype == 1:  # Ethernet
        off = 12
        while True:
            if off + 2 > len(data):
                return None, "Ethernet header cut short"
            et = (data[off] << 8) | data[off + 1]
            if et in (0x8100, 0x88A8):
                off += 4
                continue
            off += 2
            break
        if et == ETH_IPV6:
            return off, 6
        if et == ETH_IPV4:
            return off, 4
        return None, "ethertype 0x%04x" % et
    if linktype in (101, 12, 14, 228, 229):  # raw IP (101; 12/14 on some BSDs), IPv4, IPv6
        off = 0
    elif linktype in (0, 108):  # BSD loopback: 4-byte address family, host or network order
        if len(data) < 4:
            return None, "loopback header cut short"
        af = max(struct.unpack_from("<I", data, 0)[0], struct.unpack_from(">I", data, 0)[0])
        if af not in (2, 10, 24, 28, 30):
            return None, "address family %d" % af
        off = 4
    elif linktype == 113:  # Linux cooked v1
        off = 16
    elif linktype == 276:  # Linux cooked v2
        off = 20
    else:
        return None, "link type %d is not supported (Ethernet, raw IP, loopback, Linux cooked are)" % linktype
    if off >= len(data):
        return None, "no packet after the link header"
    v = data[off] >> 4
    if v not in (4, 6):
        return None, "IP version %d" % v
    return off, v
