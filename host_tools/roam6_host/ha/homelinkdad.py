"""Is the HA's home link past duplicate address detection? (docs/PROTOCOL-NOTES.md §11.14)

While the home link's link-local address is tentative (its link has just come up, DAD running,
~1-2 s), Linux sends no Neighbor Solicitation from it: the HA cannot resolve its router on that
link, so what it forwards there for a newly bound device (the device's uplink) waits for the 1 s
retransmission. `tentative(ifname)` lists the link's addresses still in DAD, from the namespace's
/proc/net/if_inet6; the driver logs them once at start (`home_link_tentative`) and goes on.
"""
import ipaddress

IFA_F_TENTATIVE = 0x40


def tentative(ifname, path="/proc/net/if_inet6"):
    """Text addresses of `ifname` still tentative; [] when none (or the file cannot be read)."""
    found = []
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) >= 6 and p[5] == ifname and len(p[0]) == 32:
                    try:
                        if int(p[4], 16) & IFA_F_TENTATIVE:
                            found.append(str(ipaddress.IPv6Address(bytes.fromhex(p[0]))))
                    except ValueError:
                        continue
    except OSError:
        return []
    return found
