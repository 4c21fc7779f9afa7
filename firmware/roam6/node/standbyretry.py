"""config.json "standby_retry_ms" (CONTRACTS.md §5): the HA is a hot-standby pair whose shared
address moves to the standby within ~0.1 s when the active fails (docs/ARCHITECTURE.md "HA
continuity"). A BU that meets the failure is lost with the dead HA and RFC 6275 would send it
again only after INITIAL_BINDACK_TIMEOUT (1 s), the device cut off meanwhile. With this field the
first BU of a move (a new care-of address while the HA holds a binding: no DAD there) unanswered
for `standby_retry_ms` is sent again once; the back-off then goes on as RFC 6275 says (the
retransmission's timer is the doubled one). Bounded: one extra BU per move, MAX_UPDATE_RATE still
holds (core/bul.py), driven by our own timer only (nothing an attacker sends).

Imported by the config checker only when the field is there, before the driver loads (as
node/halist.py): it wraps eventlog.report, which the driver binds at its import and calls for
every registration event; a node without the field pays nothing, not even a qstr."""
from . import eventlog

_report = eventlog.report
_ms = [0]
_coa = [None]           # the care-of address of the last registration: a BU from another one is a move


def parse_config(raw, err):
    """Check the field's value (ConfigError via err(field, message))."""
    v = raw["standby_retry_ms"]
    if not isinstance(v, int) or isinstance(v, bool) or v < 20 or v > 1000:
        raise err("standby_retry_ms", "must be an integer from 20 to 1000 (ms), got %r" % (v,))
    _ms[0] = v


def hurry(reg, ev, now):
    """After the first BU of a move (not a refresh: its CoA is not the last registered one), its
    retransmission at now + the configured time, if sooner. True when it did."""
    k = ev[0]
    if k == "registered":
        _coa[0] = ev[1]
    elif (_ms[0] and k == "bu" and ev[2] and reg.tries == 1 and not reg.first_reg and ev[3] != reg.hoa
          and ev[3] != _coa[0]):
        r = reg.retransmit_at
        t = now + _ms[0]
        if r is not None and t < r:
            reg.retransmit_at = t       # handle_timer resends it then (the BUs' one timer)
            return True
    return False


def report(node, ev, sent_us):
    hurry(node.reg, ev, node.now())
    return _report(node, ev, sent_us)


eventlog.report = report
