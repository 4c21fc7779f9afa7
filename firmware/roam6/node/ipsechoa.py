"""The home address the HA assigns through IKEv2's configuration payload (RFC 4877 §4.4, RFC 7296
§3.15; docs/ARCHITECTURE.md "IPsec on the MN"), adopted by the node.

Loaded by node/ipsecglue.py only when a CP names a HoA other than the one in use (an HA whose keys
file gives the device another HoA: it drops the device's SAs at SIGHUP and hands out the new HoA at
the next IKE_AUTH; or a config whose HoA the HA never had). A board bundle may leave it out (the
glue then keeps the config's HoA and logs an error, as before).

The glue notes the CP's HoA against the IKE SA that got it (`glue.cp_hoa`: the first SA, or a
re-authentication / recheck beside the SA still serving); `adopt(glue, ike, now)` at that SA's
child_up, once `reg.sa` is it: the HoA of the config, the registration (its BUs and checksums, the BA
and payload-tunnel checks), the host (its packets and `roam6` sockets) and route optimisation all
take the new one; the HA's CHILD_SA selectors already name it (it narrowed TSi to the CP HoA,
and rekeys and the payload tunnel's CHILD_SA use the new HoA); a BU for it goes at once, as a
first registration (the HA may run DAD). Logged `ike` state "hoa" (hoa, was). The new HoA is
not written anywhere: after a reboot the MN asks for its config's HoA again and the HA's CP
answers with the one it hands out, which is adopted again the same way. At home (no binding to
move) the home link's kernel sockets stay on the old HoA until the next move or restart.
"""
from .transport import addr_text


def adopt(glue, ike, now):
    """At `ike`'s child_up: the CP HoA noted for it becomes the node's. True when it did."""
    p = glue.cp_hoa
    if p is None or p[0] is not ike:
        return False
    glue.cp_hoa = None
    node, reg = glue.node, glue.reg
    old, new = node.cfg.hoa, bytes(p[1])
    if new == old:
        return False
    node.cfg.hoa = reg.hoa = new
    node.host.hoa = new
    ro = node.ro
    if ro is not None:            # (route optimisation: the unix board's ip6 only)
        ro.hoa = new
        ro.ro.hoa = new
    node.log("ike", state="hoa", hoa=addr_text(new), was=addr_text(old))
    reg.first_reg = True          # no binding for it at the HA yet
    if reg.coa is not None and reg.coa != old:     # (at home: the home link's deregistration stands)
        reg.move(reg.coa, reg.transport, now)
    return True
