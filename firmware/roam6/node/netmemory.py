"""What the board knew about the networks it has used (Detecting Network Attachment, RFC 4436 /
RFC 6059; docs/ARCHITECTURE.md "Addressing by the board"): per network, the address, prefix
length, router (its IP and link-layer address), DNS servers and when the lease or lifetime ends.

Sans-IO apart from `load`/`save` (a small JSON file beside the MN's state file, written atomically
the same way as node/state.py). Loaded only by a link adapter that does its own addressing: a board
that leaves addressing to its network stack never imports it (the base MN's heap does not grow).

    mem = NetMemory(path, cap=4)
    mem.load(wall_s)                         # entries past their expiry are dropped at once
    for e in mem.candidates(4, wall_s):      # still-valid IPv4 entries, newest use first
        ...probe e["r"] at e["m"]...         # RFC 4436: unicast ARP to the remembered router
    mem.remember(4, addr, plen, router, router_mac, dns, expires_s, server)
    mem.forget(key)                          # a NAK, or the router answered from another MAC

An entry is keyed by what identifies the network on this board: on the unix board (and any
Ethernet-like link) the router's link-layer address and the prefix (`key(fam, addr, plen, mac)`);
a Wi-Fi board may add the BSSID. A router that changed behind the same SSID answers the probe from
another link-layer address (or not at all): the entry does not match and the network is new.
Times are wall-clock seconds (`time.time()`): a lease outlives a reboot, and an entry is never
returned at or after its expiry.
"""
import json
import os
from binascii import hexlify, unhexlify

from roam6.compat import const

_VERSION = const(1)
CAP = const(4)


def _hex(b):
    return hexlify(b).decode() if b else ""


def _raw(s):
    return unhexlify(s) if s else b""


def _prefix(addr, plen):
    out = bytearray(addr)
    for i in range(len(out)):
        bits = plen - 8 * i
        if bits <= 0:
            out[i] = 0
        elif bits < 8:
            out[i] &= (0xFF << (8 - bits)) & 0xFF
    return bytes(out)


def key(fam, addr, plen, mac):
    """The network's key: family, prefix and the router's link-layer address, as text."""
    return "%d/%s/%d/%s" % (fam, _hex(_prefix(addr, plen)), plen, _hex(mac))


class NetMemory:
    def __init__(self, path=None, cap=CAP):
        self.path = path
        self.cap = cap
        self.entries = []   # dicts, most recently used first (fields: see remember)
        self.dropped = 0    # entries dropped because they had expired

    def load(self, wall):
        """Read the file (a missing or damaged one is an empty memory); drop what has expired."""
        self.entries = []
        if not self.path:
            return self
        for p in (self.path, self.path + ".tmp"):
            try:
                with open(p) as f:
                    d = json.loads(f.read())
            except (OSError, ValueError):
                continue
            if not isinstance(d, dict) or d.get("v") != _VERSION or not isinstance(d.get("nets"), list):
                continue
            for e in d["nets"][:self.cap]:
                try:
                    self.entries.append(self._decode(e))
                except (KeyError, TypeError, ValueError):
                    pass    # one damaged entry does not cost the others
            break
        self.expire(wall)
        return self

    @staticmethod
    def _decode(e):
        fam = e["f"]
        if fam not in (4, 6) or not isinstance(e["x"], int) or not isinstance(e["p"], int):
            raise ValueError("bad entry")
        addr = _raw(e["a"])
        if len(addr) != (4 if fam == 4 else 16):
            raise ValueError("bad address")
        return {"k": e["k"], "f": fam, "a": addr, "p": e["p"], "r": _raw(e["r"]), "m": _raw(e["m"]),
                "d": [_raw(x) for x in e["d"]], "x": e["x"], "s": _raw(e.get("s", ""))}

    def save(self):
        if not self.path:
            return
        nets = [{"k": e["k"], "f": e["f"], "a": _hex(e["a"]), "p": e["p"], "r": _hex(e["r"]), "m": _hex(e["m"]),
                 "d": [_hex(x) for x in e["d"]], "x": e["x"], "s": _hex(e["s"])} for e in self.entries]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps({"v": _VERSION, "nets": nets}))
        try:
            os.rename(tmp, self.path)
        except OSError:     # FAT: rename does not replace (load falls back to .tmp)
            try:
                os.remove(self.path)
            except OSError:
                pass
            os.rename(tmp, self.path)

    def expire(self, wall):
        """Drop the entries whose lease or lifetime has ended; True if any went."""
        keep = [e for e in self.entries if e["x"] > wall]
        gone = len(self.entries) - len(keep)
        self.dropped += gone
        self.entries = keep
        return gone > 0

    def candidates(self, fam, wall):
        """Entries of `fam` still valid at `wall` (never one past its expiry), newest use first."""
        return [e for e in self.entries if e["f"] == fam and e["x"] > wall]

    def remember(self, fam, addr, plen, router, mac, dns, expires, server=b""):
        """Note (or renew) a network; the least recently used entry goes beyond `cap`. -> its key."""
        k = key(fam, addr, plen, mac)
        self.forget(k)
        self.entries.insert(0, {"k": k, "f": fam, "a": bytes(addr), "p": plen, "r": bytes(router), "m": bytes(mac),
                                "d": [bytes(x) for x in dns], "x": int(expires), "s": bytes(server)})
        del self.entries[self.cap:]
        return k

    def forget(self, k):
        n = len(self.entries)
        self.entries = [e for e in self.entries if e["k"] != k]
        return len(self.entries) != n

    def used(self, k):
        """Move an entry to the front (most recently used)."""
        for i, e in enumerate(self.entries):
            if e["k"] == k:
                self.entries.insert(0, self.entries.pop(i))
                return e
        return None
