"""`hil run roam --dna-nak` / `bench roam --dna-nak`: the failure path of the board's network
memory on the bench (docs/ARCHITECTURE.md "Addressing by the board"). Before the first roam back
to a DHCPv4 network the board already had a lease on, the bench gives that lease away: the
board's address there is reserved for another client in the network's dnsmasq (a dhcp-hostsfile
line, then SIGHUP). The board, back on the network, confirms it (RFC 4436: same router, same MAC)
and uses its remembered address at once; its INIT-REBOOT REQUEST behind gets a NAK; it removes
the address and runs one full exchange; the MN sends a normal BU from the new address.

What the run then checks (report summary "dna_nak", part of its verdict):
  - a NAK came on that roam and the board moved to another address with exactly one DHCP
    exchange after it (one `lease` event between the NAK and the BA from the new address);
  - the MN registered the new address (a BA with status 0 from it);
  - the probes' interruption of that roam runs from the last probe before the link went down to
    the first one through the new address (`settled_at`: the first probe sent after that BA), so
    every probe lost while the old address was briefly reused counts inside the window, and
    nothing may be lost outside any roam's window in the whole run.
"""
import os
import signal

from roam6_host.errors import UserError

from .daemons import DNSMASQ

FOREIGN_MAC = "02:00:00:00:ee:01"     # the client the bench gives the board's address to


def add_argument(p):
    p.add_argument("--dna-nak", action="store_true",
                   help="auto: before the first revisit of a DHCPv4 network the bench gives the board's lease "
                        "there away (dnsmasq NAKs its INIT-REBOOT); checks it moves to a new address within "
                        "one DHCP exchange and loses nothing outside the roam's window")


def nak_roam(args, nets, plan):
    """Index (0-based) into `plan` of the roam whose lease is given away: the first roam back to a
    DHCPv4 network the board was on. Refuses what cannot show it, before anything is built."""
    if args.addressing != "auto" or getattr(args, "no_memory", False) or getattr(args, "app", "mn") != "mn":
        raise UserError("--dna-nak needs --addressing auto with the network memory on (no --no-memory) and the MN")
    dhcp4 = {n for n in nets if DNSMASQ.get(n, (None, None, None))[2]}
    if not dhcp4:
        raise UserError("--dna-nak needs a profile that uses IPv4 (udp4: esp32, rp2040, router): "
                        "these networks have no DHCPv4: %s" % ", ".join(nets))
    seen = {nets[0]}
    for i, net in enumerate(plan):
        if net in dhcp4 and net in seen:
            return i
        seen.add(net)
    raise UserError("--dna-nak: no roam back to a DHCPv4 network within %d roams; give --roams %d or more"
                    % (len(plan), len(nets) + 1))


def give_away(bench, daemons, net):
    """Reserve the board's leased address on `net` for another client and make that network's
    dnsmasq re-read its hosts file. Returns the address (None if the board had no lease there)."""
    d = next(x for x in daemons if x.name == "dnsmasq" and x.short == net)
    addr = None
    try:
        with open(os.path.join(d.workdir, "dnsmasq.leases")) as f:
            for line in f:          # expiry mac address hostname client-id
                parts = line.split()
                if len(parts) >= 3 and parts[1].lower() != FOREIGN_MAC:
                    addr = parts[2]
    except FileNotFoundError:
        return None
    if addr is None:
        return None
    with open(os.path.join(d.workdir, "hosts"), "a") as f:      # daemons.plan's dhcp-hostsfile
        f.write("%s,%s\n" % (FOREIGN_MAC, addr))
    d.proc.send_signal(signal.SIGHUP)
    return addr


def settled_at(events, t0, t1):
    """On a roam whose remembered address was NAKed: (t, info) with t the MN's first BA (status
    0) from the address of the lease that followed the NAK, i.e. when the new path was in place;
    (None, None) on a roam without a NAK."""
    win = [e for e in events if t0 <= e["t"] < t1]
    nak = next((e for e in win if e["ev"] == "addressing" and e.get("how") == "nak"), None)
    if nak is None:
        return None, None
    after = [e for e in win if e["t"] >= nak["t"]]
    leases = [e for e in after if e["ev"] == "addressing" and e.get("how") == "lease"]
    new = leases[0]["addr"] if leases else None
    ba = next((e for e in after if e["ev"] == "ba" and e.get("status") == 0 and new and e.get("coa") == new), None)
    info = {"old": nak.get("addr"), "new": new, "nak_ms": round((nak["t"] - t0) * 1000, 3),
            "exchanges_after_nak": len([e for e in leases if ba is None or e["t"] <= ba["t"]]),
            "new_ba_ms": round((ba["t"] - t0) * 1000, 3) if ba else None}
    return (ba["t"] if ba else None), info


def verdict(report, index, given):
    """The summary's "dna_nak" and whether it passed (see the module doc)."""
    rows, s = report["rows"], report["summary"]
    row = rows[index] if index < len(rows) else {}
    info = dict(row.get("dna_nak") or {})
    info.update({"roam": index + 1, "given_away": given})
    info["ok"] = bool(given and row.get("dna_nak") and info["old"] == given and info["new"]
                      and info["new"] != given and info["exchanges_after_nak"] == 1 and info["new_ba_ms"] is not None
                      and row.get("recovered_down") and row.get("recovered_up") and row.get("recovered_echo")
                      and s["lost_outside_interruptions"] == 0)
    info["lost_outside_interruptions"] = s["lost_outside_interruptions"]
    s["dna_nak"] = info
    return info["ok"]
