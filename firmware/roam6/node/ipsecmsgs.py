"""Under `"security": "ipsec"` (node/ipsecglue.py): the MN-HA Mobility Headers other than BU/BA, both
ways in the CHILD_SA (RFC 4877 §4), and the IKE SA's two recoveries. Loaded on first use (a sealed
BRI, Home Agent Switch or unknown type from the HA; a BU under the SA that went unanswered; a switch
to another HA): a node that registers and roams never imports it.

- `mh_in(glue, raw, src, now)`: the SA authenticated the message and its replay window refused a
  repeat, so the RFC 4285 checks are replaced, not skipped: a Binding Revocation Indication
  (core/revocation.py), a Home Agent Switch (haswitch.py), else a Binding Error status 2 (mherror.py),
  sealed (also for those two when the bundle leaves their module out: rp2040's IPsec variant).
- `send_mh(glue, mh, coa)`: the MN's own Mobility Header (checksummed HoA -> HA: a BRA, a Binding
  Error) sealed in the CHILD_SA on the active transport; nothing leaves in clear.
- `bu_unanswered(glue, now)`: the first BU of an attempt under the SA went unanswered (its first
  retransmission): the HA may have lost its SAs (a restart: its journal keeps bindings, not SAs) or
  only the BA was lost. A new IKE SA beside the old one, as a re-authentication; at its child_up the
  old one is deleted and the BU repeated at once (the glue's `rechecking`): a restarted HA has the
  device back one BU back-off step plus a handshake after the BU it dropped. One at a time.
- `drop_ike(glue, now)`: the HA changed (a Home Agent Switch): the old IKE SA is deleted (told to
  the old HA on the old socket) and a handshake with the new HA follows; the BUs wait (held).
"""
_UP = 3                           # roam6.ipsec.ikev2's state "up"


def mh_in(glue, raw, src, now):
    node = glue.node
    t = raw[2]
    try:                          # (a bundle may leave either module out: then a Binding Error, type unknown)
        if t == 16:
            from roam6.core.revocation import node_bri
            node_bri(node, raw, src, now)
            return
        if t == 12:
            from .haswitch import switch_in
            switch_in(node, src, raw, now)
            return
    except ImportError:
        pass
    from .mherror import binding_error
    be = binding_error(node.cfg.hoa, src, 2, now)
    if be is not None:
        send_mh(glue, be[40:], None)


def send_mh(glue, mh, coa):
    reg = glue.reg
    pkt = reg.seal_mh(mh, reg.coa if coa is None else coa, reg.transport == "ip6")
    tr = glue.node.uplink.active
    if pkt is None or tr is None:
        return False
    tr.send_mh(pkt)
    return True


def bu_unanswered(glue, now):
    if glue.ike.state != _UP:
        return
    if glue.reopen is not None and glue.sockets:      # moved: IKE from the new address now
        glue._open(*glue.reopen)
    glue.reopen = None
    glue.rechecking = True
    glue.next = glue._start(now)
    glue.node.log("ike", state="recheck")
    glue.pump(now)


def drop_ike(glue, now):
    for ike in (glue.ike, glue.next):
        if ike is not None and ike.state == _UP:
            ike = glue.live(ike)                    # a dormant SA: its Initiator again for the Delete
            ike.delete_ike(now)
            for data, _dst in ike.datagrams_to_send(now):
                glue.send(data)
    glue.ike = glue.next = None
    glue.reg.sa = None
    glue.retry_at = glue.rekey_at = glue.reauth_at = None
    glue.backoff_ms = 1000
