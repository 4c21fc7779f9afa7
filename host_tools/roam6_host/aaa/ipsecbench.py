"""`roam6 bench ha --aaa-ipsec N`: the first IKE_AUTH of N IPsec devices whose PSK only a real
FreeRADIUS knows (SQLite store, in a throw-away namespace, over its loopback), through the HA's
IKEv2 responder + ha/ipsecaaa.py + the AaaAgent's RADIUS client, in this process; the MN side is
the firmware's IKEv2 Initiator (CPython). Needs root and the Debian package freeradius.

Figures (wall clock, ms, one device at a time):
- ike_auth_via_radius: IKE_AUTH in -> held -> Access-Request -> FreeRADIUS (SQL lookup) ->
  Access-Accept -> device added -> IKE_AUTH fed again -> response out;
- ike_auth_psk_known: the same device's next IKE_AUTH (a new IKE SA: re-authentication), its PSK
  now at the HA: the responder alone. The difference is what RADIUS adds to a first handshake.
"""
import ipaddress
import secrets
import select
import time
import types

from ..errors import UserError


def run_ipsec_aaa(devices=200, prefix=None):
    from roam6.ipsec import ikev2 as k

    from ..ha.cache import BindingCache
    from ..ha.ipsecaaa import attach
    from ..ha.ipsecmh import IpsecHA
    from .bench import Rig, _pct, _Quiet, _version
    from .provision_sql import add_device

    if not 1 <= devices <= 100000:
        raise UserError("--aaa-ipsec must be 1 to 100000 devices")
    ha_addr = ipaddress.IPv6Address("2001:db8:aa::1").packed
    rig = Rig("--aaa-ipsec", prefix)
    try:
        devs = []
        for i in range(devices):
            nai, hoa, psk = "ike%d@example.test" % i, "2001:db8:aa::%x" % (0x1000 + i), secrets.token_bytes(32)
            add_device(rig.db, nai, 0, b"", hoa, psk=psk)
            devs.append((nai, ipaddress.IPv6Address(hoa).packed, psk))
        rig.start()

        log = _Quiet()
        cache = BindingCache(ha_addr, ha_addr[:8], {}, keep_events=False)
        ipsec = IpsecHA([], ha_addr, "ha.bench", 0, log=log)
        agent = rig.agent(cache, log)
        fds = agent.fds()
        ha = types.SimpleNamespace(cache=cache, ipsec=ipsec, aaa=agent, log=log, ike=None)
        ia = attach(ha)
        peer = ("2001:db8:a1::7", 4500)
        local = (ipaddress.IPv6Address(peer[0]).packed, 4500)

        def handshake(nai, hoa, psk):
            """ms from IKE_AUTH in to its response out; None if no CHILD_SA."""
            now = agent.clock()
            mn = k.Initiator(psk, nai, local, (ha_addr, 4500), [k.ts_host(hoa, 135)], [k.ts_host(ha_addr, 135)],
                             now, transport=True, request_hoa=True)
            for data, _dst in mn.datagrams_to_send(now):            # IKE_SA_INIT
                ipsec.ike_receive(data, peer, 4500, now)
            for data, _p, _port in ipsec.ike_datagrams(now):
                mn.receive(data, now)
            auth = mn.datagrams_to_send(now)                         # IKE_AUTH
            t = time.perf_counter()
            for data, _dst in auth:
                ipsec.ike_receive(data, peer, 4500, agent.clock())
            out = ipsec.ike_datagrams(agent.clock())
            deadline = t + 5
            while not out and time.perf_counter() < deadline:
                for fd in select.select(list(fds), [], [], 0.5)[0]:
                    fds[fd]()
                out = ipsec.ike_datagrams(agent.clock())
            ms = (time.perf_counter() - t) * 1000
            for data, _p, _port in out:
                mn.receive(data, agent.clock())
            evs = []
            ev = mn.next_event()
            while ev is not None:
                evs.append(ev[0])
                ev = mn.next_event()
            return ms if "child_up" in evs else None

        first, again = [], []
        for nai, hoa, psk in devs:
            first.append(handshake(nai, hoa, psk))
            again.append(handshake(nai, hoa, psk))
        ok1 = [x for x in first if x is not None]
        ok2 = [x for x in again if x is not None]
        return {
            "aaa_ipsec_server": "FreeRADIUS (%s), rlm_sql_sqlite, 4 threads, over loopback in a namespace" % _version(),
            "aaa_ipsec_devices": devices,
            "aaa_ipsec_child_sas_first": len(ok1),
            "aaa_ipsec_child_sas_again": len(ok2),
            "aaa_ipsec_first_ike_auth_ms_p50": round(_pct(ok1, 0.5), 3) if ok1 else None,
            "aaa_ipsec_first_ike_auth_ms_p99": round(_pct(ok1, 0.99), 3) if ok1 else None,
            "aaa_ipsec_psk_known_ike_auth_ms_p50": round(_pct(ok2, 0.5), 3) if ok2 else None,
            "aaa_ipsec_psk_known_ike_auth_ms_p99": round(_pct(ok2, 0.99), 3) if ok2 else None,
            "aaa_ipsec_requests": ia.stats["requests"],
            "aaa_ipsec_accepts": ia.stats["accepts"],
            "aaa_ipsec_what": "first IKE_AUTH: in -> Access-Request -> FreeRADIUS -> Accept -> device added -> "
                              "response out (wall ms, one device at a time); psk_known: the same device's next "
                              "IKE_AUTH, PSK cached at the HA (no RADIUS)",
        }
    finally:
        rig.close()
