"""A classic BPF filter on the HA's shared UDP 4191 listeners: what can never be roam6 traffic is
dropped in the kernel, before it costs the HA a wakeup, a recvfrom and a Python round.

roam6 carries IPv6 in UDP (RFC 5555; with RFC 5555 IPv4 home addresses also IPv4, ha/ipv4home.py),
so the driver's first test on every datagram is the payload's version nibble and, for IPv6, a
whole 40-byte header (ha/driver.py `_on_udp`). The filter makes that same test in the kernel: on
a UDP socket the program sees the datagram from its UDP header on, the payload at offset 8.

    ldb [8]; and #0xf0            version nibble of the payload (a datagram of < 9 bytes: drop)
    jeq #0x60 -> ld len; jge #48  IPv6 with a whole header: keep
    jeq #0x40                     IPv4 (only with IPv4 home addresses): keep
    ldb [8]; jeq #1               a TLV header (RFC 5555 §4.1, Type 1; only with IPv4 home
                                  addresses: roam6_codec/udptlv.py): keep
    else drop

Random datagrams (one of the floods of `roam6 bench attack`) mostly die here: the kernel counts
them as the socket's drops (`/proc/net/udp` drops, Udp InErrors), not the HA's log. The per-MN
sockets (ha/peersocks.py) carry no filter: only a bound MN's peer address reaches them, and they
keep the driver's own test.

Under a flood of BUs naming SPIs the HA does not know (each costs ~25 us of Python before
ha/bugate.py drops it), `Shield` swaps in a stricter program for a while: it also drops, in the
kernel, a BU the HA would drop for its unknown SPI - plain IPv6 + MH to the HA's address, Payload
Proto 59, type BU, Header Len >= 1, IPv6 payload length = the datagram's, the MN-HA option last
([9][17][1] at 19 bytes from the end, ha/bugate.py) and its SPI in no keys-file entry - and a
BRR, BA or BE sent to the HA (types only an MN takes, which ha/bugate.py drops; Payload Proto 59
and Header Len at the type's minimum or more, so RFC 6275 §9.2 asks for no answer either), except
a random 1 in SAMPLE, so the HA still sees (and logs, once per source) that the flood goes on.
Switched on when the HA dropped THRESHOLD such messages within a second, off HOLD_MS after the
estimated rate fell below it. Not with an AAA server (an unknown SPI may be a device the server
knows) nor with more than MAX_SPIS entries. While on, those BUs no longer spend the source's
rejection budget (ha/limits.py): they cost the HA nothing.

SHIELDED_DROPS: the starts of the cache's drop reasons (`bu_dropped`) the shield counts.
"""
from ..pktsock import attach_filter

_NEVER = 0x100        # a version byte & 0xf0 never equals this: IPv4 refused
_KEEP, _DROP = (0x06, 0, 0, 0xFFFFFFFF), (0x06, 0, 0, 0)
SKF_AD_RANDOM = (-0x1000 + 56) & 0xFFFFFFFF      # ld [SKF_AD_OFF + SKF_AD_RANDOM]: A = a random u32
THRESHOLD = 500        # unknown-SPI BUs per second that switch the shield on
HOLD_MS = 10000
SAMPLE = 64            # one in SAMPLE of the shielded BUs still reaches the HA
MAX_SPIS = 3000        # (the program's 4096-instruction limit)
SHIELDED_DROPS = ("spi:", "parse: MH type")


def listener_program(ipv4=False):
    """The filter as [(op, jt, jf, k)]; `ipv4` keeps IPv4 payloads (RFC 5555 IPv4 home addresses)
    and TLV frames (Type 1)."""
    if ipv4:
        return [(0x30, 0, 0, 8), (0x54, 0, 0, 0xF0),
                (0x15, 0, 2, 0x60),            # IPv6? -> next, else -> the IPv4 test
                (0x80, 0, 0, 0), (0x35, 3, 4, 8 + 40),     # a whole IPv6 header -> keep, else drop
                (0x15, 2, 0, 0x40),            # IPv4 -> keep
                (0x30, 0, 0, 8), (0x15, 0, 1, 1),          # TLV Type 1 -> keep, else drop
                (0x06, 0, 0, 0xFFFFFFFF),
                (0x06, 0, 0, 0)]
    return [(0x30, 0, 0, 8),                   # A = payload[0]
            (0x54, 0, 0, 0xF0),                # A &= 0xf0
            (0x15, 0, 2, 0x60),                # IPv6? -> next, else -> the IPv4 test
            (0x80, 0, 0, 0),                   # A = datagram length (UDP header included)
            (0x35, 1, 2, 8 + 40),              # a whole IPv6 header -> keep, else drop
            (0x15, 0, 1, 0x40 if ipv4 else _NEVER),
            (0x06, 0, 0, 0xFFFFFFFF),          # keep, whole
            (0x06, 0, 0, 0)]                   # drop


def _asm(code):
    """[(op, jt, jf, k) | "label"]: jt/jf may name a label (forward, at most 255 ahead), as may
    the k of a `ja` (0x05); returns the program as [(op, jt, jf, k)]."""
    pos, out = {}, []
    for item in code:
        if isinstance(item, str):
            pos[item] = len(out)
        else:
            out.append(item)
    prog = []
    for i, (op, jt, jf, k) in enumerate(out):
        def rel(t, limit=255):
            if not isinstance(t, str):
                return t
            d = pos[t] - i - 1
            if not 0 <= d <= limit:
                raise ValueError("BPF jump to %s out of range (%d)" % (t, d))
            return d
        prog.append((op, rel(jt), rel(jf), rel(k, 1 << 31) if op == 0x05 else k))
    return prog


def shield_program(ha, spis, ipv4=False, sample=SAMPLE):
    """listener_program plus, for a plain IPv6 + MH packet to `ha` (16 bytes) with Payload Proto
    59 and its IPv6 payload length = the datagram's: drop a BU whose SPI is not in `spis`, and a
    BRR, BA or BE (types only an MN takes, Header Len at the type's minimum or more), keeping a
    random 1 in `sample` (see the module's docstring)."""
    spis = sorted(set(spis))
    code = [(0x30, 0, 0, 8), (0x54, 0, 0, 0xF0), (0x15, "v6", 0, 0x60),
            (0x15, "keep", "tlv", 0x40 if ipv4 else _NEVER),
            "tlv", (0x30, 0, 0, 8), (0x15, "keep", "drop", 1 if ipv4 else _NEVER),     # TLV Type 1
            "v6",
            (0x80, 0, 0, 0), (0x35, 0, "drop", 8 + 40),              # a whole IPv6 header
            (0x30, 0, 0, 8 + 6), (0x15, 0, "keep", 135),             # next header MH, no extension header
            (0x80, 0, 0, 0), (0x14, 0, 0, 48), (0x07, 0, 0, 0),      # X = datagram - UDP - IPv6 header
            (0x28, 0, 0, 8 + 4), (0x1D, 0, "keep", 0),               # = the IPv6 payload length
            (0x30, 0, 0, 8 + 40), (0x15, 0, "keep", 59)]             # Payload Proto
    for i in range(4):                                               # destination: the HA's address
        code += [(0x20, 0, 0, 8 + 24 + 4 * i), (0x15, 0, "keep", int.from_bytes(ha[4 * i:4 * i + 4], "big"))]
    code += [(0x30, 0, 0, 8 + 41), (0x07, 0, 0, 0),                  # X = Header Len
             (0x30, 0, 0, 8 + 42),                                   # A = MH type
             (0x15, "bu", 0, 5), (0x15, "sample", 0, 0), (0x15, "ba", 0, 6), (0x15, "be", "keep", 7),
             "ba", (0x87, 0, 0, 0), (0x35, "sample", "keep", 1),      # (txa) BA: Header Len >= 1
             "be", (0x87, 0, 0, 0), (0x35, "sample", "keep", 2),      # BE: >= 2
             "sample", (0x20, 0, 0, SKF_AD_RANDOM), (0x54, 0, 0, sample - 1), (0x15, "keep", "drop", 0),
             "keep", _KEEP, "drop", _DROP,
             "bu", (0x87, 0, 0, 0), (0x35, 0, "keep_bu", 1),          # BU: Header Len >= 1
             (0x80, 0, 0, 0), (0x35, 0, "keep_bu", 8 + 40 + 31),     # room for its MN-HA option
             (0x80, 0, 0, 0), (0x14, 0, 0, 19), (0x07, 0, 0, 0),     # X = offset of the MN-HA option
             (0x50, 0, 0, 0), (0x15, 0, "keep_bu", 9), (0x50, 0, 0, 1), (0x15, 0, "keep_bu", 17),
             (0x50, 0, 0, 2), (0x15, 0, "keep_bu", 1),
             (0x40, 0, 0, 3),                                        # A = its SPI
             (0x05, 0, 0, "spis"), "keep_bu", _KEEP, "spis"]
    # a known SPI -> keep: blocks of at most 200 compares, each followed by its own "keep"
    for n, b in enumerate(range(0, len(spis), 200)):
        block = spis[b:b + 200]
        code += [(0x15, "k%d" % n, 0, spi) for spi in block] + [(0x05, 0, 0, "n%d" % n), "k%d" % n, _KEEP, "n%d" % n]
    code += [(0x20, 0, 0, SKF_AD_RANDOM), (0x54, 0, 0, sample - 1), (0x15, 0, 1, 0), _KEEP, _DROP]
    return _asm(code)


SKF_NET_OFF = -0x100000            # ld [SKF_NET_OFF + k]: the network header (the outer IP source)
BPF_MAXINSNS = 4096
REBUILD_MS = 100                   # the blocked hosts' filter is rebuilt at most this often


def block_prefix(bad, noisy, family, room=BPF_MAXINSNS, sample=None):
    """Code to put before a listener program (as `_asm` items; it ends by jumping to the label
    "main", where that program goes): a datagram from a host in `bad` (address bytes: 4 for an
    IPv4 listener, 16 for IPv6) is dropped, and from a host in `noisy` unless it is a BU (IPv6
    header, next header MH, Payload Proto 59, type 5), except a random 1 in `sample`
    (ha/sourceblock.py). Hosts
    beyond what fits `room` instructions are left out (the HA drops their BUs itself)."""
    from .sourceblock import KERNEL_SAMPLE
    sample = sample or KERNEL_SAMPLE
    v6 = family != 4
    per = 9 if v6 else 1
    fit = max(0, (room - 24) // (per + 1))
    bad, noisy = list(bad)[:fit], list(noisy)[:max(0, fit - len(bad))]
    code = []
    n = [0]

    def compares(hosts, target):
        if v6:
            for h in hosts:
                w = [int.from_bytes(h[4 * i:4 * i + 4], "big") for i in range(4)]
                code.extend([(0x20, 0, 0, (SKF_NET_OFF + 8) & 0xFFFFFFFF), (0x15, 0, 7, w[0]),   # (past the ja)
                             (0x20, 0, 0, (SKF_NET_OFF + 12) & 0xFFFFFFFF), (0x15, 0, 5, w[1]),
                             (0x20, 0, 0, (SKF_NET_OFF + 16) & 0xFFFFFFFF), (0x15, 0, 3, w[2]),
                             (0x20, 0, 0, (SKF_NET_OFF + 20) & 0xFFFFFFFF), (0x15, 0, 1, w[3]),
                             (0x05, 0, 0, target)])
            return
        for b in range(0, len(hosts), 200):
            n[0] += 1
            hit, miss = "h%d" % n[0], "m%d" % n[0]
            code.extend((0x15, hit, 0, int.from_bytes(h, "big")) for h in hosts[b:b + 200])
            code.extend([(0x05, 0, 0, miss), hit, (0x05, 0, 0, target), miss])

    if not v6 and (bad or noisy):
        code.append((0x20, 0, 0, (SKF_NET_OFF + 12) & 0xFFFFFFFF))      # A = the IPv4 source
    compares(bad, "b_sample")
    compares(noisy, "b_noisy")
    code += [(0x05, 0, 0, "main"),
             "b_noisy", (0x30, 0, 0, 8), (0x54, 0, 0, 0xF0), (0x15, 0, "b_sample", 0x60),
             (0x30, 0, 0, 8 + 6), (0x15, 0, "b_sample", 135),
             (0x30, 0, 0, 8 + 40), (0x15, 0, "b_sample", 59),          # Payload Proto 59, as every BU's
             (0x30, 0, 0, 8 + 42), (0x15, "b_go", "b_sample", 5),
             "b_sample", (0x20, 0, 0, SKF_AD_RANDOM), (0x54, 0, 0, sample - 1), (0x15, "b_go", 0, 0), _DROP,
             "b_go", (0x05, 0, 0, "main")]
    return code


def with_blocks(program, bad, noisy, family):
    """`program` ([(op, jt, jf, k)]) behind block_prefix: one program for the listener."""
    if not bad and not noisy:
        return program
    return _asm(block_prefix(bad, noisy, family, BPF_MAXINSNS - len(program)) + ["main"] + list(program))


def filter_listener(sock, ipv4=False, program=None):
    """Attach listener_program(ipv4) (or `program`) to a UDP socket; returns None, or why it could not be."""
    try:
        attach_filter(sock, program or listener_program(ipv4))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


class Shield:
    """Swaps the listeners' program for shield_program while unknown-SPI BUs flood in (see the
    module's docstring). The driver calls `unknown_spi(now)` for each BU the cache dropped for its
    SPI, `get_timer`/`handle_timer` as for its other machines, `set_spis` after a keys reload."""

    def __init__(self, socks, ha, spis, ipv4, log):
        self.socks = socks              # the shared listeners (a list)
        self.ha, self.spis, self.ipv4, self.log = ha, list(spis), ipv4, log
        self.on = False
        self.until = None
        self._start = None
        self._count = 0
        self.switched = 0               # times it came on
        self.block = None               # sourceblock.SourceBlock: blocked hosts in the filter too
        self._rebuild_at = None         # no filter rebuild for blocked hosts before this (ms)
        self.kernel_blocks = 0          # rebuilds for blocked hosts
        self._block_warned = False

    def _attach(self, on, now):
        prog = shield_program(self.ha, self.spis, self.ipv4) if on else listener_program(self.ipv4)
        why = [w for w in (filter_listener(s, self.ipv4, self._with_blocks(prog, s)) for s in self.socks) if w]
        if why:
            self.log("warning", reason="flood shield not %s: %s" % ("attached" if on else "removed", why[0]))
            if on:
                return
        self.on = on
        self.until = now + HOLD_MS if on else None
        self.switched += on
        self.log("flood_shield", on=on, spis=len(self.spis), threshold_per_s=THRESHOLD, sample=SAMPLE)

    def _with_blocks(self, prog, sock):
        if self.block is None or not self.block.blocked:
            return prog
        import socket
        fam = 4 if sock.family == socket.AF_INET else 6
        conv = self._addr4 if fam == 4 else self._addr6
        from .sourceblock import BAD, NOISY
        lists = [[a for a in (conv(h) for h in self.block.hosts(lvl)) if a] for lvl in (BAD, NOISY)]
        return with_blocks(prog, lists[0], lists[1], fam)

    @staticmethod
    def _addr4(host):
        import socket
        try:
            return socket.inet_aton(host) if ":" not in host else None
        except OSError:
            return None

    @staticmethod
    def _addr6(host):
        import socket
        try:
            return socket.inet_pton(socket.AF_INET6, host.split("%")[0]) if ":" in host else None
        except OSError:
            return None

    def blocks_changed(self, now):
        """The blocked hosts (ha/sourceblock.py) changed: the filter follows, at most every REBUILD_MS."""
        if self._rebuild_at is not None and now < self._rebuild_at:
            return
        self.block.changed = False
        self._rebuild_at = now + REBUILD_MS
        prog = shield_program(self.ha, self.spis, self.ipv4) if self.on else listener_program(self.ipv4)
        for s in self.socks:
            why = filter_listener(s, self.ipv4, self._with_blocks(prog, s))
            if why and not self._block_warned:
                self._block_warned = True
                self.log("warning", reason="blocked hosts not in the kernel filter: %s" % why)
        self.kernel_blocks += 1

    def unknown_spi(self, now):
        if self._start is None or now - self._start >= 1000:
            self._start, self._count = now, 0
        self._count += SAMPLE if self.on else 1      # while on, 1 in SAMPLE reaches the HA
        if self._count >= THRESHOLD:           # (also BRR/BA/BE sent to the HA: driver)
            if not self.on:
                self._attach(True, now)
            else:
                self.until = now + HOLD_MS

    def get_timer(self):
        t = self.until if self.on else None
        if self.block is not None and self.block.changed and self._rebuild_at is not None:
            t = self._rebuild_at if t is None else min(t, self._rebuild_at)     # a rebuild held back
        return t

    def handle_timer(self, now):
        if self.on and now >= self.until:
            self._attach(False, now)
        if self.block is not None and self.block.changed:
            self.blocks_changed(now)

    def set_spis(self, spis, now):
        self.spis = list(spis)
        if len(self.spis) > MAX_SPIS:
            if self.on:
                self._attach(False, now)
            return
        if self.on:
            self._attach(True, now)


def shield_for(ha_agent):
    """The driver's Shield, or None where it cannot work (AAA, too many SPIs, no UDP listener)."""
    cache = ha_agent.cache
    if ha_agent.cfg.aaa is not None or len(cache.sas) > MAX_SPIS or not ha_agent.socks:
        return None
    sh = Shield(list(ha_agent.socks.values()), ha_agent.ha, cache.sas, cache.v4homes is not None, ha_agent.log)
    sh.block = cache.limits.block
    return sh
