"""The running HA's control socket: `roam6 ha status` (its binding cache) and `roam6 ha switch`
(handed to ha/switch.py) (CONTRACTS.md §6).

The socket is an abstract Unix socket named "roam6-ha-<tun>": it lives in the HA's network
namespace (`ip netns exec NS roam6 ha status` finds the HA of that namespace; two HAs in two
namespaces never meet) and has no file to chmod, so the HA checks the peer's credentials
(SO_PEERCRED): root, or the HA's own user; anyone else gets one line "refused" and nothing else.

Protocol: the client writes "status\\n", or "switch " and a JSON request (`roam6 ha switch`:
start one, or ask its progress); the HA answers one JSON document and closes. The HA
accepts in its epoll loop; the answer is written with a 1 s timeout (a client that does not read
cannot hold the HA longer than that).
"""
import json
import os
import socket
import struct
import time

from roam6.wire.addr import ip6_to_text

from .vendor import as_json
from .loopsock import LoopSocket

_CRED = struct.Struct("3i")


def socket_name(tun):
    return "\0roam6-ha-%s" % tun


class ControlServer(LoopSocket):
    def __init__(self, ha):
        self.ha = ha
        self.sock = None
        self.refused = 0

    def open(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(socket_name(self.ha.cfg.tun))
        except OSError as exc:
            s.close()
            self.ha.log("warning", reason="no control socket (roam6 ha status): %s" % exc.strerror)
            return
        s.listen(8)
        s.setblocking(False)
        self.sock = s
        # ha/switch.py loaded now, not at the first `roam6 ha switch`: that import (~3-6 ms) would
        # stall the HA's loop, and so every bound device's data, just as the switch begins
        from . import switch  # noqa: F401

    def on_readable(self):
        for _ in range(8):
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            try:
                conn.settimeout(1.0)
                req = conn.recv(4096)
                _pid, uid, _gid = _CRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
                if uid not in (0, os.getuid()):
                    self.refused += 1
                    self.ha.log.once(("control_refused", uid), "control_refused", uid=uid)
                    conn.sendall(b'{"error": "refused: roam6 ha status is for root"}\n')
                elif req.strip() == b"status":
                    conn.sendall(json.dumps(self.status()).encode() + b"\n")
                elif req.startswith(b"switch"):     # `roam6 ha switch` (ha/switch.py)
                    from .switch import control_request
                    conn.sendall(json.dumps(control_request(self.ha, req[6:])).encode() + b"\n")
                else:
                    conn.sendall(b'{"error": "unknown request"}\n')
            except (OSError, ValueError, UnicodeDecodeError):
                pass
            finally:
                if conn is not None:
                    conn.close()

    def status(self):
        ha = self.ha
        cache = ha.cache
        now = time.monotonic_ns() // 1_000_000
        rows = []
        for b in cache.bindings.values():
            sa = cache.sas.get(b.spi)
            coa = b.coa
            if coa[:12] == b"\0" * 10 + b"\xff\xff":
                coa_text = "%d.%d.%d.%d" % tuple(coa[12:16])
            else:
                coa_text = ip6_to_text(coa) if coa else ""
            rows.append({"nai": sa.nai.decode("utf-8", "replace") if sa else None, "spi": b.spi,
                         "hoa": ip6_to_text(b.hoa), "coa": coa_text, "peer": "%s:%d" % b.peer,
                         "transport": b.transport, "nat": b.nat, "seq": b.seq, "lifetime": b.lifetime,
                         "lifetime_left_s": max(0, (b.expires - now) // 1000),
                         "packets_from_mn": b.rx_packets, "bytes_from_mn": b.rx_bytes,
                         "packets_to_mn": b.tx_packets, "bytes_to_mn": b.tx_bytes,
                         "last_bu_s_ago": max(0, (now - (b.expires - b.lifetime * 1000)) // 1000),
                         "vendor": as_json(cache.vendor.get(b)) if cache.vendor is not None else []})
        rows.sort(key=lambda r: (r["nai"] or "", r["hoa"]))
        out = {"bindings": rows, "sas": len(cache.sas), "ignored": cache.ignored,
               "tun": ha.cfg.tun, "address": ha.cfg.address_text}
        blk = cache.limits.block                        # ha/sourceblock.py: hosts blocked for failing
        out["blocked_hosts"] = {"now": len(blk.blocked), "times_blocked": blk.blocks, "dropped_in_the_ha": blk.drops,
                                "kernel_filter_rebuilds": ha.shield.kernel_blocks if ha.shield is not None else None}
        if cache.vendor is not None:
            out["vendor_oversize"] = cache.vendor.oversize
        if ha.aaa is not None:
            out["aaa"] = dict(ha.aaa.stats, held=len(ha.aaa.held), servers_down=sorted(
                repr(ha.aaa.cfg.servers[i]) for i in ha.aaa.client.down), client=ha.aaa.client.stats,
                revocation=ha.aaa.revocations.stats)
        rn = getattr(ha.cfg, "renumber", None)
        if rn is not None:                                  # ha.json "renumber" (ha/prefixes.py)
            out["renumber"] = {"old": str(rn.old), "new": str(rn.new), "old_left_s": rn.old_left_ms(now) // 1000}
        keep = getattr(ha, "keep", None)
        if keep is not None and keep.hold is not None:     # replica "ack" (ha/ack.py)
            out["replica_ack"] = dict(keep.hold.stats(), stale_acks=keep.replica.core.stale_acks)
        if getattr(ha, "ipsec", None) is not None:       # ha/ipsecmh.py: drops and seals, IKE SAs, CHILD_SAs
            r = ha.ipsec.responder
            out["ipsec"] = dict(ha.ipsec.counts, ike_sas=sum(1 for x in r.sas.values() if x.up),
                                half_open=sum(1 for x in r.sas.values() if not x.up), child_sas=len(ha.ipsec.by_spi),
                                ike_dropped=r.dropped, ike_ignored=r.ignored, cookies_sent=r.cookies_sent)
        return out


def query(tun, timeout=5.0, request=b"status\n"):
    """The running HA's status (dict), from this network namespace; UserError when none answers."""
    from ..errors import UserError
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(socket_name(tun))
        s.sendall(request)
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
    except OSError as exc:
        raise UserError("no home agent with TUN %r answers in this network namespace (%s)" % (tun, exc.strerror or exc),
                        hint="run it where the HA runs: ip netns exec NS roam6 ha status [--tun NAME]") from None
    finally:
        s.close()
    try:
        doc = json.loads(b"".join(chunks))
    except ValueError:
        raise UserError("the HA's answer is not JSON") from None
    if "error" in doc:
        raise UserError("the HA says: %s" % doc["error"], hint="run as root")
    return doc


def table(doc):
    lines = ["%-28s %-22s %-26s %-9s %-4s %8s %8s" % ("NAI", "HoA", "CoA (peer)", "transport", "NAT", "left s",
                                                    "last BU")]
    for r in doc["bindings"]:
        coa = r["coa"] if r["transport"] == "ip6" else "%s (%s)" % (r["coa"], r["peer"])
        lines.append("%-28s %-22s %-26s %-9s %-4s %8d %7ds" % (r["nai"], r["hoa"], coa, r["transport"],
                                                              "yes" if r["nat"] else "no", r["lifetime_left_s"],
                                                              r["last_bu_s_ago"]))
        for v in r.get("vendor") or ():
            lines.append("    vendor %s" % ("experimental: %s" % v["data"] if v.get("experimental") else
                                            "%d/%d: %s" % (v["vendor_id"], v["subtype"], v["data"])))
    extra = ""
    if "aaa" in doc:
        a = doc["aaa"]
        extra = "; AAA: %d accepted, %d rejected, %d unavailable, %d held now%s" % (
            a["accepts"], a["rejects"], a["unavailable"], a["held"],
            ", down: " + ", ".join(a["servers_down"]) if a["servers_down"] else "")
    bh = doc.get("blocked_hosts")
    if bh and bh["times_blocked"]:
        extra += "; %d host(s) blocked for failing now (%d times in all)" % (bh["now"], bh["times_blocked"])
    lines.append("%d binding(s), %d SA(s), %d input(s) ignored%s" % (len(doc["bindings"]), doc["sas"],
                                                                    doc["ignored"], extra))
    return "\n".join(lines)
