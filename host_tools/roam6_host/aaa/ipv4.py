"""RFC 5555 IPv4 home addresses from the AAA server: an Access-Accept's Framed-IP-Address (RFC
2865 attribute 8, `roam6 provision --aaa --ipv4-hoa` writes it) is the NAI's static IPv4 home
address at this HA (ha/ipv4home.py `aaa_grant`; the keys file's assignments win over it).

A Framed-IP-Address the HA cannot use (no ipv4_home_prefix here, not an address of it, another
NAI's) is logged (`aaa_ipv4_refused`) and left out: the IPv6 registration goes on, and the MN
that asks for an IPv4 HoA gets the status the ack rules give (docs/CONTRACTS.md §6, §14)."""
import ipaddress

from ..ha.ipv4home import aaa_grant


def grant(agent, nai, reply):
    """The Accept's Framed-IP-Address for `nai` made its IPv4 HoA here; returns its text or None."""
    homes = agent.cache.v4homes
    name = nai.decode("utf-8", "replace")
    try:
        vals = reply.get("Framed-IP-Address") or []
        addr = ipaddress.IPv4Address(vals[0]).packed if vals else None
    except Exception as exc:        # a value pyrad cannot decode, or not an IPv4 address
        agent.log("aaa_ipv4_refused", nai=name, reason="Framed-IP-Address undecodable: %s" % exc)
        return None
    if homes is None:
        if addr is not None:
            agent.log("aaa_ipv4_refused", nai=name, reason="Framed-IP-Address %s and this HA has no "
                      "ipv4_home_prefix" % ipaddress.IPv4Address(addr))
        return None
    why = aaa_grant(homes, bytes(nai), addr, agent.cache._events)
    if why:
        agent.log("aaa_ipv4_refused", nai=name, reason=why)
        return None
    return str(ipaddress.IPv4Address(addr)) if addr is not None else None


def forget(agent, nai):
    """The NAI's SA from the AAA server is gone: so is its IPv4 assignment from it."""
    homes = agent.cache.v4homes
    if homes is not None and bytes(nai) in homes.aaa_static:
        aaa_grant(homes, bytes(nai), None, agent.cache._events)
