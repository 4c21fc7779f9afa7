"""The HA's port refused the last BU: an ICMP port unreachable queued on the transport's connected
socket (node/uplink.py `_read`). Its host is up and its `roam6 ha` is not: it crashed, and with a
hot standby the shared address moves to the other HA within ~0.1 s (docs/ARCHITECTURE.md "HA
continuity"). The BU is sent again 150 ms from now instead of after the whole retransmission
timeout (1 s, then doubling); once per BU sent, and MAX_UPDATE_RATE still holds (core/bul.py), so
a forged ICMP error can at most bring a retransmission forward. Loaded only when such an error
comes: a node that never sees one pays nothing."""

_HURRY_MS = 150
_done = [None]        # the send time of the last BU brought forward


def refused(node):
    reg = node.reg
    st = reg.state
    if (st != 1 and st != 3) or not reg.sent:       # REGISTERING, REFRESHING (core/bul.py)
        return
    sent_at = reg.sent[-1][1]
    now = node.now()
    r = reg.retransmit_at
    if sent_at == _done[0] or r is None or r - now <= _HURRY_MS:
        return
    _done[0] = sent_at
    reg.retransmit_at = now + _HURRY_MS       # handle_timer resends it then (the BUs' one timer)
    node.log("bu_refused", retry_ms=_HURRY_MS)
