"""What each roam cost, from the probe records, the roam stamps and the MN's events.

All times are time.monotonic() seconds (the MN's t_ms converted by `mn_time`); results in ms.

Per roam i (window: from its t_down to the next roam's t_down):
  interruption_down_ms  last R6PD that reached the board's radio before t_down -> first one
                        that reached it after, among probes the CN sent after t_down (so it came
                        through the new path)
  interruption_up_ms    the same for what reached the CN from the board: the echoes (echo mode,
                        of probes sent after t_down) or the board's own stream (sensor mode,
                        datagrams that left the board's radio after t_down)
  lost_down / lost_up   datagrams that never arrived (the last 0.3 s of the run excluded: they
                        may be in flight), counted in the roam whose interruption they left in
                        (between the departures of the last delivered before and the first
                        delivered after; an echo departs when its probe reaches the board);
                        others are lost_outside, in the roam window of their departure
  duplicated, reordered arrivals in the window seen twice / with a seq below one already seen
  recovered_down/up/echo     probes through the new path reached the board / the CN, and an
                        echo came back (the application on the board answered again)
  bu_ba_ms, coa, transport   from the MN's first `ba` event in the window
  addr_to_first_probe_ms     first probe through the new path (either direction) - t_addr
  link_ms, addr_ms, mn_ms, bu_ba_stage_ms, ba_to_first_probe_ms
                        where the time went, cut at t_down, t_link_up, t_addr, the MN's BU, its
                        BA, the first probe through the new path: each stage >= 0 and together
                        exactly split_total_ms (t_down -> first probe). The stamps come from
                        different observers, so each cut is taken no later than any cut after it
                        and no earlier than the one before: the bench stamps t_link_up once its
                        `ip link show` poll sees both ends up, but the board's kernel (and its
                        link adapter) sees the carrier before that, so on a revisit the board's
                        address can be announced before the bench's link stamp: the link was up
                        by then: the link stage ends there and the address stage is 0, not
                        negative. Likewise the MN may send its BU on its link adapter's word before
                        the bench's watcher sees the address, and a probe can reach the board's
                        radio before the MN logs the BA (the HA forwards as it answers).
Percentiles: nearest rank over the roams that have the value.
"""
import json
import math
import os
from bisect import bisect_left

from .dnanak import settled_at

TAIL_S = 0.3
FIELDS = ["interruption_down_ms", "interruption_up_ms", "lost_down", "lost_up", "duplicated", "reordered",
          "bu_ba_ms", "addr_to_first_probe_ms", "link_ms", "addr_ms", "mn_ms", "ba_to_first_probe_ms",
          "bu_ba_stage_ms", "split_total_ms"]
SPLIT = (("link_ms", "link"), ("addr_ms", "address"), ("mn_ms", "MN until BU"), ("bu_ba_stage_ms", "BU->BA"),
         ("ba_to_first_probe_ms", "BA->first probe"))


def percentile(values, p):
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    k = max(0, math.ceil(p / 100.0 * len(vals)) - 1)
    return vals[k]


def mn_time(t_ms, ref_s):
    """The MN's ticks_ms (CLOCK_MONOTONIC ms modulo 2**30 on the unix port) -> monotonic seconds,
    unwrapped to the period nearest `ref_s`."""
    period = 1 << 30
    ref_ms = ref_s * 1000.0
    base = ref_ms - ((ref_ms - t_ms) % period)
    if ref_ms - base > period / 2:
        base += period
    return base / 1000.0


def _ms(a, b):
    return None if a is None or b is None else round((b - a) * 1000.0, 3)


class Stream:
    """Arrivals of one direction: (t_arrival, seq) sorted by time, and seq -> send time."""

    def __init__(self, arrivals, send_times):
        self.arr = sorted((t, s) for s, t in arrivals)
        self.times = [t for t, _ in self.arr]
        self.send = send_times

    def last_before(self, t0):
        i = bisect_left(self.times, t0)
        return self.arr[i - 1] if i else None

    def first_new_after(self, t0, t1):
        """First arrival in [t0, t1) of a datagram sent at or after t0."""
        i = bisect_left(self.times, t0)
        while i < len(self.arr) and self.arr[i][0] < t1:
            t, seq = self.arr[i]
            st = self.send.get(seq)
            if st is not None and st >= t0:
                return self.arr[i]
            i += 1
        return None

    def window(self, t0, t1):
        i, j = bisect_left(self.times, t0), bisect_left(self.times, t1)
        return self.arr[i:j]


def _dups_and_reorders(stream):
    """Per arrival index: duplicate? reordered? (over the whole stream, in arrival order)."""
    seen, high, dup, reo = set(), -1, [], []
    for _t, s in stream.arr:
        dup.append(s in seen)
        reo.append(s not in seen and s < high)
        seen.add(s)
        high = max(high, s)
    return dup, reo


def _split(row, t_down, cuts, first):
    """Where the roam's time went (see the module doc): the stages between t_down, the cuts
    (link up, address, BU, BA; None where unknown) and the first probe, each cut clamped between
    the cut before and the first probe. A stage ending at an unknown cut is None, and the next one
    starts from the last known cut, so the known stages still add up to split_total_ms."""
    keys = [k for k, _ in SPLIT]
    end = first
    cuts, later = list(cuts), end
    for i in range(len(cuts) - 1, -1, -1):      # a cut is no later than any known cut after it
        if cuts[i] is not None:
            if later is not None:
                cuts[i] = min(cuts[i], later)
            later = cuts[i]
    prev = t_down
    for key, cut in zip(keys[:-1], cuts):
        if cut is None:
            row[key] = None
            continue
        c = max(cut, prev)
        row[key] = _ms(prev, c)
        prev = c
    row[keys[-1]] = _ms(prev, end)
    row["split_total_ms"] = _ms(t_down, end)


def analyse(cn, sniff, roams, events, mode, t_end):
    """Per-roam rows and a summary (see the module doc)."""
    sent = dict(cn["sent"])
    down = Stream(sniff["down"], sent)
    if mode == "sensor":
        out_times = {}
        for s, t in sniff.get("up", []):
            out_times.setdefault(s, t)
        up = Stream(cn["up"], out_times)
        up_sent = out_times
    else:
        up = Stream(cn["echo"], sent)
        # an echo leaves the board when its probe arrives there
        up_sent = {}
        for sq, t in sniff["down"]:
            up_sent.setdefault(sq, t)
    echo = Stream(cn["echo"], sent)
    got_down = {s for _t, s in down.arr}
    got_up = {s for _t, s in up.arr}
    d_dup, d_reo = _dups_and_reorders(down)
    u_dup, u_reo = _dups_and_reorders(up)
    evs = sorted(events, key=lambda e: e["t"])

    rows, windows = [], []
    for i, r in enumerate(roams):
        t0 = r["t_down"]
        t1 = roams[i + 1]["t_down"] if i + 1 < len(roams) else t_end
        row = {"roam": i + 1, "net": r["net"], "addr": r.get("addr")}
        # a remembered address NAKed on this roam (roam --dna-nak): the roam is over only once
        # probes flow through the new address, i.e. sent after the MN's BA from it
        t_new, nak = settled_at(evs, t0, t1)
        if nak:
            row["dna_nak"] = nak
        lb_d, fa_d = down.last_before(t0), down.first_new_after(t_new or t0, t1)
        lb_u, fa_u = up.last_before(t0), up.first_new_after(t_new or t0, t1)
        row["recovered_down"] = fa_d is not None
        row["recovered_up"] = fa_u is not None
        # the application answered again (an echo of a probe sent after the roam): in sensor
        # mode the radio-level streams alone would not show that the probes reached the app
        row["recovered_echo"] = echo.first_new_after(t_new or t0, t1) is not None
        row["interruption_down_ms"] = _ms(lb_d[0], fa_d[0]) if lb_d and fa_d else None
        row["interruption_up_ms"] = _ms(lb_u[0], fa_u[0]) if lb_u and fa_u else None
        row["gap_down"] = [lb_d[0], fa_d[0]] if lb_d and fa_d else None     # when (monotonic s), for the picture
        row["gap_up"] = [lb_u[0], fa_u[0]] if lb_u and fa_u else None
        firsts = [x[0] for x in (fa_d, fa_u) if x]
        first = min(firsts) if firsts else None
        row["addr_to_first_probe_ms"] = _ms(r.get("t_addr"), first)
        # interruption windows in send-time terms, for sorting losses in/out
        windows.append(((sent.get(lb_d[1]) if lb_d else None), (sent.get(fa_d[1]) if fa_d else None),
                        (up_sent.get(lb_u[1]) if lb_u else None), (up_sent.get(fa_u[1]) if fa_u else None)))
        # MN events in the window
        ba = next((e for e in evs if e["ev"] == "ba" and t0 <= e["t"] < t1), None)
        bu = next((e for e in evs if e["ev"] == "bu" and t0 <= e["t"] < t1), None)
        row["bu_ba_ms"] = ba.get("bu_ba_ms") if ba else None
        row["ba_status"] = ba.get("status") if ba else None
        row["coa"] = nak["new"] if nak and t_new else (ba or bu or {}).get("coa")     # where it ended
        row["transport"] = (ba or bu or {}).get("transport")
        _split(row, t0, (r.get("t_link_up"), r.get("t_addr"), bu["t"] if bu else None, ba["t"] if ba else None),
               first)
        # duplicates / reorders among arrivals in the window
        i0, i1 = bisect_left(down.times, t0), bisect_left(down.times, t1)
        j0, j1 = bisect_left(up.times, t0), bisect_left(up.times, t1)
        row["duplicated"] = sum(d_dup[i0:i1]) + sum(u_dup[j0:j1])
        row["reordered"] = sum(d_reo[i0:i1]) + sum(u_reo[j0:j1])
        rows.append(row)

    # losses: each lost datagram belongs to the window its send time falls in
    starts = [r["t_down"] for r in roams]
    cutoff = t_end - TAIL_S

    def assign(send_map, got, key, wi):
        """Count each lost datagram in the roam whose interruption it was sent in (the one starting
        just after its send time included: a datagram can leave just before the carrier goes);
        otherwise in the roam window of its send time, as lost outside an interruption."""
        outside = 0
        for s, ts in send_map.items():
            if s in got or ts >= cutoff:
                continue
            k = bisect_left(starts, ts + 1e-9) - 1
            home = None
            for c in (k, k + 1):
                if 0 <= c < len(rows):
                    a, b = windows[c][wi], windows[c][wi + 1]
                    if a is not None and b is not None and a < ts < b:
                        home = c
                        break
            if home is None:
                if k < 0:
                    continue          # before the first roam: not part of any roam
                rows[k]["lost_outside"] = rows[k].get("lost_outside", 0) + 1
                outside += 1
                home = k
            rows[home][key] = rows[home].get(key, 0) + 1
        return outside

    for row in rows:
        row.setdefault("lost_down", 0)
        row.setdefault("lost_up", 0)
        row.setdefault("lost_outside", 0)
    out_d = assign(sent, got_down, "lost_down", 0)
    if mode == "sensor":
        out_u = assign(up_sent, got_up, "lost_up", 2)
    else:
        # echo mode: an echo is lost upstream if its probe reached the board and no echo came back
        out_u = assign(up_sent, got_up, "lost_up", 2)

    summary = {"roams": len(rows), "mode": mode}
    for f in FIELDS:
        vals = [r.get(f) for r in rows]
        summary[f] = {"p50": percentile(vals, 50), "p90": percentile(vals, 90), "max": percentile(vals, 100)}
    # the split's stages as means over the roams where every stage is known: means add up (the
    # p50s of the stages need not add up to anything)
    full = [r for r in rows if r["split_total_ms"] is not None and all(r[k] is not None for k, _ in SPLIT)]
    summary["split_mean_ms"] = ({"n": len(full), **{k: round(sum(r[k] for r in full) / len(full), 3) for k, _ in SPLIT}}
                                if full else None)
    if full:
        summary["split_mean_ms"]["total"] = round(sum(summary["split_mean_ms"][k] for k, _ in SPLIT), 3)
    summary["recovered_all"] = all(r["recovered_down"] and r["recovered_up"] and r["recovered_echo"] for r in rows)
    summary["lost_outside_interruptions"] = out_d + out_u
    summary["duplicated_total"] = sum(r["duplicated"] for r in rows)
    summary["probes_sent"] = len(sent)
    summary["probes_received_board"] = len(got_down)
    summary["probes_received_cn"] = len(got_up)
    transports = sorted({r["transport"] for r in rows if r["transport"]})
    summary["transports"] = transports
    heaps = [e for e in evs if e["ev"] == "heap"]
    if heaps:
        summary["heap_first"] = heaps[0].get("alloc")
        summary["heap_last"] = heaps[-1].get("alloc")
        summary["heap_max"] = max(h.get("alloc", 0) for h in heaps)
    return {"rows": rows, "summary": summary}


def write(report, folder):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "report.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
    return path


def _fmt(v, w=7):
    if v is None:
        return "-".rjust(w)
    if isinstance(v, float):
        return ("%.1f" % v).rjust(w)
    return str(v).rjust(w)


def table(report, max_rows=24):
    rows, s = report["rows"], report["summary"]
    head = ("roam", "net", "transport", "coa", "down ms", "up ms", "lost", "dup", "reord", "BU->BA", "addr->1st")
    widths = (4, 4, 9, 24, 8, 8, 5, 4, 5, 7, 9)
    lines = [" ".join(h.rjust(w) for h, w in zip(head, widths))]
    show = rows if len(rows) <= max_rows else rows[:max_rows // 2] + [None] + rows[-max_rows // 2:]
    for r in show:
        if r is None:
            lines.append("   ... (%d roams, all in report.json)" % len(rows))
            continue
        vals = (r["roam"], r["net"], r.get("transport") or "-", r.get("coa") or "-", r["interruption_down_ms"],
                r["interruption_up_ms"], r["lost_down"] + r["lost_up"], r["duplicated"], r["reordered"],
                r["bu_ba_ms"], r["addr_to_first_probe_ms"])
        lines.append(" ".join(_fmt(v, w) for v, w in zip(vals, widths)))
    for p in ("p50", "p90", "max"):
        vals = (p, "", "", "", s["interruption_down_ms"][p], s["interruption_up_ms"][p], None, None, None,
                s["bu_ba_ms"][p], s["addr_to_first_probe_ms"][p])
        lines.append(" ".join(_fmt(v, w) for v, w in zip(vals, widths)))
    m = s.get("split_mean_ms")
    if m:
        lines.append("where the time goes (mean ms over %d roams, link down -> first probe %s): %s"
                     % (m["n"], _fmt(m["total"], 0).strip(),
                        ", ".join("%s %s" % (label, _fmt(m[k], 0).strip()) for k, label in SPLIT)))
    lines.append("probes: %d sent, %d reached the board, %d answers/stream reached the CN; "
                 "lost outside interruptions: %d; duplicated: %d"
                 % (s["probes_sent"], s["probes_received_board"], s["probes_received_cn"],
                    s["lost_outside_interruptions"], s["duplicated_total"]))
    return "\n".join(lines)


def timeline(report, cn, sniff, roams, path, mode, t_start):
    """timeline.png: the run's verdict, the probe gaps per direction over time with the roams and
    interruptions marked, and where each roam's time went (drawn by timeline.py)."""
    from .timeline import draw
    return draw(report, cn, sniff, roams, path, mode, t_start)
