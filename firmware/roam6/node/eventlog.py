"""The MN's event log (docs/CONTRACTS.md §7): one JSON object per line on stdout, and the home
registration's events (roam6.core.bul's table) turned into its lines."""
import json

from roam6.compat import ticks_diff, ticks_ms, ticks_us

from .transport import addr_text


def log_event(ev, **fields):
    """One line: `t_ms` = ticks_ms (CLOCK_MONOTONIC on unix), `ev` = its name, then the fields."""
    fields["t_ms"] = ticks_ms()
    fields["ev"] = ev
    print(json.dumps(fields))


def report(node, ev, t):
    """Log one registration event of `node` (t: ticks_us when this flush's BUs left); returns
    its kind."""
    kind = ev[0]
    log = node.log
    tr = node.uplink.active
    tname = tr.name if tr is not None else None
    if kind == "bu":
        _, seq, lifetime, coa = ev
        node.bu_us = (seq, t)
        log("bu", seq=seq, lifetime=lifetime, coa=addr_text(coa), transport=tname)
    elif kind == "ba":
        _, status, seq, bu_ba_ms, reg_ms = ev
        sent = node.bu_us
        if sent is not None and sent[0] == seq:   # the last BU's: on the µs clock
            bu_ba_ms = ticks_diff(ticks_us(), sent[1]) / 1000
        log("ba", status=status, seq=seq, bu_ba_ms=bu_ba_ms, reg_ms=reg_ms,
            coa=addr_text(node.reg.coa), transport=tname)
    elif kind == "lost":
        _, why = ev
        log("lost", why=why)
    elif kind == "registered":
        _, coa, lifetime, refresh_ms = ev
        log("registered", coa=addr_text(coa), lifetime=lifetime, refresh_ms=refresh_ms,
            transport=tname)
    elif kind == "deregistered":
        _, answered = ev
        log("deregistered", answered=answered)
    elif kind == "error":
        _, reason, status = ev
        log("error", reason=reason, status=status)
    return kind
