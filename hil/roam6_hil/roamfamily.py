"""`roam6 hil run roam --family ipv4|ipv6|both`: which home address the probes go to.

ipv6 (default): the CN's probes to the HoA, as always. ipv4: the MN asks for an RFC 5555 IPv4
home address (config "ipv4_hoa": "0.0.0.0"; the HA hands one out of the bench's IPv4 home pool)
and the probes come from the IPv4-only correspondent `cn4` (cn4.py) to that address. both: the
two streams at once, each its own probe process; the board's sniffer sees both, told apart by
their sequence numbers (the IPv4 stream starts at V4_SEQ0). Each stream is analysed alone with
report.analyse; the IPv4 one over the roams before the final one home (there the MN deregisters
both home addresses; the MN has no IPv4 on its home link, docs/ARCHITECTURE.md).

report.json: with ipv4, its rows and summary are the IPv4 stream's; with both, they are the IPv6
stream's and report["ipv4"] = {"hoa4", "rows", "summary"} the IPv4 one's. summary["family"] says
which. The run is ok only if every stream recovered after every roam.
"""
from roam6_host.errors import UserError

from .cn4 import CN4_ADDR, add_cn4

V4_SEQ0 = 1 << 30          # the IPv4 stream's first sequence number (the IPv6 one starts at 0)
CHOICES = ("ipv6", "ipv4", "both")
HELP = ("the home address the probes go to: ipv6 (default), ipv4 (an RFC 5555 IPv4 HoA from the HA's pool, "
        "probed from an IPv4-only correspondent), both (two streams at once)")


TLV_HELP = ("with --family ipv4|both: the MN asks for the RFC 5555 TLV header on udp4 (config ipv4_tlv_header; "
            "docs/PROTOCOL-NOTES.md section 4.2)")


def tlv(args):
    return bool(getattr(args, "ipv4_tlv", False))


def family(args):
    return getattr(args, "family", None) or "ipv6"


def wants_v4(args):
    return family(args) != "ipv6"


def check(args):
    """Combinations refused before the bench is built (a clear message, no traceback)."""
    if wants_v4(args) and args.app == "reference":
        raise UserError("--family %s needs the MN (--app mn): the reference application has no IPv4 home address"
                        % family(args))
    if tlv(args) and not wants_v4(args):
        raise UserError("--ipv4-tlv needs --family ipv4 or both (the TLV header comes with the IPv4 home address)")
    if tlv(args) and getattr(args, "profile", None) in ("rp2040", "rp2350"):
        raise UserError("--ipv4-tlv: the %s bundle leaves the TLV header out (board.json exclude); "
                        "use --profile esp32 or router" % args.profile)


def sensor_dst(args, cn6):
    """Where the board's own stream (sensor mode) goes: the IPv6 CN, or cn4 with --family ipv4."""
    return CN4_ADDR if family(args) == "ipv4" else cn6


def wait_hoa4(board, timeout=5.0):
    """The IPv4 HoA the HA acknowledged (the MN's `ipv4` event), or RuntimeError saying why not."""
    ev = board.wait_event(lambda e: e["ev"] == "ipv4", timeout)
    if ev is None or not ev.get("hoa4"):
        raise RuntimeError("no IPv4 home address within %.0f s (%s); MN log:\n%s"
                           % (timeout, ev or "no ipv4 event", board.log_tail()))
    return ev["hoa4"]


def setup_cn4(bench):
    """The IPv4-only correspondent's namespace; returns its address."""
    return add_cn4(bench)


def split_sniff(sniff, seq0, n=V4_SEQ0):
    """The sniffer's record restricted to one stream's probes (sequence numbers [seq0, seq0+n));
    the board's own stream (up, sensor mode) is kept as it is."""
    out = dict(sniff)
    for k in ("down", "echo_out"):
        out[k] = [x for x in sniff.get(k, []) if seq0 <= x[0] < seq0 + n]
    return out


def v4_roams(roams, t_end):
    """The roams the IPv4 stream is judged on and the end of its last window: those before the
    final roam home, which ends at home's t_down."""
    if roams and roams[-1]["net"] == "home":
        return roams[:-1], roams[-1]["t_down"]
    return roams, t_end


def compare(report6, report4):
    """The IPv4 HoA's interruption beside the IPv6 one's (p50/p90/max ms, down and up)."""
    out = {}
    for fam, rep in (("ipv6", report6), ("ipv4", report4)):
        s = rep["summary"]
        out[fam] = {k: s[k] for k in ("interruption_down_ms", "interruption_up_ms")}
        out[fam]["lost_outside_interruptions"] = s["lost_outside_interruptions"]
    return out


def streams(r, hoa6):
    """(family, namespace, destination, first seq, record path) of each probe stream of the run."""
    out = []
    if family(r.args) != "ipv4":
        out.append(("ipv6", "cn", hoa6, 0, r.bench.path("cn.json")))
    if wants_v4(r.args):
        out.append(("ipv4", "cn4", r.hoa4, V4_SEQ0, r.bench.path("cn4.json")))
    return out


def analyse(r, analyse_fn):
    """The main analysis (the first stream: IPv6, or IPv4 alone) and, with both, the IPv4 one.
    Returns (report, extra or None); analyse_fn is report.analyse."""
    results = []
    for (fam, _ns, dst, seq0, _path), rec in zip(r.streams, r.stream_recs):
        sniff = split_sniff(r.sniff_rec, seq0)
        roams, t_end = (v4_roams(r.roams, r.t_end) if fam == "ipv4" else (r.roams, r.t_end))
        # the board's own stream (sensor mode) goes to the first stream's correspondent only
        mode = r.args.traffic if not results else "echo"
        rep = analyse_fn(rec, sniff, roams, r.events, mode, t_end)
        rep["summary"]["family"] = fam
        rep["summary"]["dst"] = dst
        results.append(rep)
    extra = None
    if len(results) == 2:
        extra = {"hoa4": r.hoa4, "rows": results[1]["rows"], "summary": results[1]["summary"],
                 "compare": compare(results[0], results[1])}
    return results[0], extra
