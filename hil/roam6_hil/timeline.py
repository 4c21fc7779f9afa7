"""timeline.png of a roam run (`report.timeline`): the picture for a report.

  header      what ran (profile, addressing, traffic, roams) and the verdict in words and colour:
              OK/FAILED, interruption p50/p90 both ways, losses outside interruptions, and the
              goal where the run has one (revisits with the board's memory: p50 <= 20, p90 <= 40 ms;
              static addressing: p50 <= 15 ms)
  two strips  the gap before each probe over time, one strip per direction (so neither series
              hides the other), log scale; every roam a line, each interruption shaded, the
              network joined written above the strips
  bars        per roam (whole-number ticks, the network under each number): where the time went,
              link down -> first probe, stacked; what roam6 controls (the MN until its BU, BU->BA)
              in strong colours, the access network's share (link, address, BA -> first probe) in
              greys; the measured interruptions as markers beside the bar; a bar taller than the
              axis is cut and its value written on it. Legend outside the plot. The MN's mean
              share is written in the panel's title.
"""

LINK, ADDR, MN, BUBA, FIRST = "link_ms", "addr_ms", "mn_ms", "bu_ba_stage_ms", "ba_to_first_probe_ms"
STAGES = ((LINK, "link (association)", "#c9c9c9", False), (ADDR, "address (DHCP / SLAAC / DNA)", "#8c8c8c", False),
          (MN, "MN: address -> BU", "#d62728", True), (BUBA, "BU -> BA (MN, HA)", "#ff9896", True),
          (FIRST, "BA -> first probe", "#dcdcf0", False))


def _goal(report):
    """(text, met) of the run's goal, or None."""
    s = report["summary"]
    if report.get("app") == "reference":
        return None
    if report.get("addressing") == "auto":
        rd, ru = s.get("revisit_interruption_down_ms"), s.get("revisit_interruption_up_ms")
        if not rd or not ru or s.get("revisited") in (None, 0):
            return None
        met = max(rd["p50"], ru["p50"]) <= 20 and max(rd["p90"], ru["p90"]) <= 40
        return ("revisits (%d): p50 %.1f / %.1f ms, p90 %.1f / %.1f ms; goal p50 <= 20, p90 <= 40: %s"
                % (rd["n"], rd["p50"], ru["p50"], rd["p90"], ru["p90"], "met" if met else "NOT met"), met)
    d, u = s["interruption_down_ms"]["p50"], s["interruption_up_ms"]["p50"]
    if d is None or u is None:
        return None
    met = max(d, u) <= 15
    return ("goal p50 <= 15 ms: %s" % ("met" if met else "NOT met"), met)


def _header(fig, report):
    s = report["summary"]
    ok = bool(s.get("ok"))
    what = "roam6 roaming bench: %d roams, profile %s, addressing %s, %s traffic%s" % (
        s["roams"], report.get("profile", "?"), report.get("addressing", "?"), s.get("mode", "?"),
        "" if report.get("app", "mn") == "mn" else ", reference app (no mobility)")
    fig.text(0.01, 0.985, what, fontsize=13, weight="bold", va="top")
    d, u = s["interruption_down_ms"], s["interruption_up_ms"]

    def f(v):
        return "-" if v is None else "%.1f" % v
    line = ("%s   interruption down / up: p50 %s / %s ms, p90 %s / %s ms, max %s / %s ms;  lost outside "
            "interruptions %d" % ("OK: every roam recovered, session survived" if ok else "FAILED",
                                  f(d["p50"]), f(u["p50"]), f(d["p90"]), f(u["p90"]), f(d["max"]), f(u["max"]),
                                  s["lost_outside_interruptions"]))
    fig.text(0.01, 0.950, line, fontsize=10.5, va="top", color="white", weight="bold",
             bbox={"facecolor": "#2ca02c" if ok else "#d62728", "edgecolor": "none", "pad": 4})
    goal = _goal(report)
    extra = []
    if goal:
        extra.append(goal[0])
    if s.get("revisited") is not None:
        extra.append("board's addressing: %d confirmed, %d DHCPv4 leases, %d NAKs"
                     % (s["revisited"], s.get("dhcp_leases") or 0, s.get("dhcp_naks") or 0))
    if extra:
        fig.text(0.01, 0.912, ";  ".join(extra), fontsize=10, va="top",
                 color=("#1a6e1a" if goal and goal[1] else "#b00000") if goal else "black")


def _gaps(ax, times, t0, color, label):
    if len(times) > 1:
        ax.plot([t - t0 for t in times[1:]], [max(0.01, (b - a) * 1000) for a, b in zip(times, times[1:])],
                ".", ms=2.5, color=color)
    ax.set_yscale("log")
    ax.set_ylabel(label, fontsize=10)
    ax.grid(axis="y", which="major", color="#e8e8e8", lw=0.6)


def draw(report, cn, sniff, roams, path, mode, t_start):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator

    rows, s = report["rows"], report["summary"]
    fig = plt.figure(figsize=(14, 9.5))
    outer = fig.add_gridspec(2, 1, height_ratios=[2, 2.2], hspace=0.28, left=0.065, right=0.80, top=0.845,
                             bottom=0.085)
    strips = outer[0].subgridspec(2, 1, hspace=0.08)
    ax_d = fig.add_subplot(strips[0])
    ax_u = fig.add_subplot(strips[1], sharex=ax_d)
    bx = fig.add_subplot(outer[1])
    _header(fig, report)

    d = sorted(t for _s, t in sniff["down"])
    u = sorted(t for _s, t in (cn["up"] if mode == "sensor" else cn["echo"]))
    _gaps(ax_d, d, t_start, "#1f77b4", "CN -> board\ngap (ms)")
    _gaps(ax_u, u, t_start, "#ff7f0e", "board -> CN\n(%s) gap (ms)" % ("stream" if mode == "sensor" else "echoes"))
    for ax, key in ((ax_d, "gap_down"), (ax_u, "gap_up")):
        for r in roams:
            ax.axvline(r["t_down"] - t_start, color="#555555", lw=0.7, alpha=0.6)
        for row in rows:
            if row.get(key):
                a, b = row[key]
                ax.axvspan(a - t_start, b - t_start, color="#d62728", alpha=0.35, lw=0)
    # the network joined at each roam, above the strips; alternate heights when they crowd
    span = max(1e-6, (roams[-1]["t_down"] - t_start) if roams else 1.0)
    crowd = len(roams) > 1 and span / len(roams) < 0.35
    for i, r in enumerate(roams):
        ax_d.text(r["t_down"] - t_start, 1.02 + (0.13 if crowd and i % 2 else 0), r["net"], fontsize=9,
                  ha="center", va="bottom", transform=ax_d.get_xaxis_transform(), color="#333333")
    plt.setp(ax_d.get_xticklabels(), visible=False)
    ax_u.set_xlabel("time (s); grey lines: roams (network joined written on top); red: the measured interruptions",
                    fontsize=10)
    ax_d.legend(handles=[Line2D([], [], ls="", marker=".", color="#1f77b4", ms=8, label="probe arrivals at the board"),
                         Line2D([], [], ls="", marker=".", color="#ff7f0e", ms=8,
                                label="%s arrivals at the CN" % ("stream" if mode == "sensor" else "echo")),
                         Patch(color="#d62728", alpha=0.25, label="interruption")],
                loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)

    # where each roam's time went
    xs = [r["roam"] for r in rows]
    totals = [sum((r.get(k) or 0.0) for k, *_ in STAGES) for r in rows]
    marks = [v for r in rows for v in (r.get("interruption_down_ms"), r.get("interruption_up_ms")) if v is not None]
    tall = sorted(totals + marks)
    top = max(25.0, (tall[int(0.9 * (len(tall) - 1))] if tall else 25.0) * 1.6)
    bottom = [0.0] * len(rows)
    for key, label, color, mine in STAGES:
        vals = [r.get(key) or 0.0 for r in rows]
        bx.bar(xs, vals, bottom=bottom, width=0.6, color=color, edgecolor="black" if mine else "none",
               linewidth=0.4, label=label)
        bottom = [b + v for b, v in zip(bottom, vals)]
    for x, t in zip(xs, totals):
        if t > top:
            bx.text(x, top * 0.97, "%.0f" % t, rotation=90, ha="center", va="top", fontsize=8, color="black",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
    for off, key, marker, color, label in ((-0.38, "interruption_down_ms", "v", "#1f77b4", "interruption down"),
                                           (0.38, "interruption_up_ms", "^", "#ff7f0e", "interruption up")):
        pts = [(x + off, min(r[key], top * 0.99)) for x, r in zip(xs, rows) if r.get(key) is not None]
        if pts:
            bx.plot([p[0] for p in pts], [p[1] for p in pts], marker, color=color, ms=6, ls="", mec="black",
                    mew=0.4, label=label)
    bx.set_ylim(0, top)
    bx.set_xlim(0.3, (max(xs) if xs else 1) + 0.7)
    bx.xaxis.set_major_locator(FixedLocator(xs))
    bx.set_xticklabels(["%d\n%s" % (r["roam"], r["net"]) for r in rows], fontsize=9 if len(rows) <= 25 else 7)
    bx.set_xlabel("roam (and the network joined)", fontsize=10)
    bx.set_ylabel("ms, link down -> first probe", fontsize=10)
    bx.grid(axis="y", color="#e8e8e8", lw=0.6)
    bx.set_axisbelow(True)
    m = s.get("split_mean_ms")
    if m and m["total"]:
        mine = m[MN] + m[BUBA]
        bx.set_title("where the time goes, mean over %d roams: %.1f ms, of which roam6 (MN until BU, BU->BA) "
                     "%.1f ms = %.0f %%" % (m["n"], m["total"], mine, 100.0 * mine / m["total"]), fontsize=10.5,
                     loc="left")
    bx.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False,
              title="stages (outlined: roam6's share)", title_fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
