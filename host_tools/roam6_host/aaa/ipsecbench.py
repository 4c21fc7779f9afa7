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
import os
import secrets
import select
import shutil
import tempfile
import time
import types

from .. import procs
from ..errors import UserError


def run_ipsec_aaa(devices=200, prefix=None):
    from roam6.ipsec import ikev2 as k

    from ..ha.cache import BindingCache
    from ..ha.ipsecaaa import attach
    from ..ha.ipsecmh import IpsecHA
    from ..ha.livebench import _Net
    from ..nssock import inside
    from .agent import AaaAgent
    from .bench import _pct, _Quiet, _version, start_freeradius
    from .config import AaaConfig, Server
    from .freeradius import SCHEMA, write_config
    from .provision_sql import add_device

    if os.geteuid() != 0:
        raise UserError("bench ha --aaa-ipsec needs root (it starts FreeRADIUS in a network namespace)")
    if shutil.which("freeradius") is None or not os.path.exists(SCHEMA):
        raise UserError("FreeRADIUS is not installed", hint="apt-get install freeradius freeradius-utils")
    if not 1 <= devices <= 100000:
        raise UserError("--aaa-ipsec must be 1 to 100000 devices")
    ha_addr = ipaddress.IPv6Address("2001:db8:aa::1").packed
    net = _Net(prefix)
    tmp = tempfile.mkdtemp(prefix="roam6-bench-ipsecaaa-")
    rad = agent = None
    try:
        ns = net.add("aaa")
        secret = secrets.token_hex(16)
        db = os.path.join(tmp, "radius.sqlite")
        write_config(os.path.join(tmp, "conf"), db, secret, ["::1"], listen=("::1",), threads=4)
        devs = []
        for i in range(devices):
            nai, hoa, psk = "ike%d@example.test" % i, "2001:db8:aa::%x" % (0x1000 + i), secrets.token_bytes(32)
            add_device(db, nai, 0, b"", hoa, psk=psk)
            devs.append((nai, ipaddress.IPv6Address(hoa).packed, psk))
        rad = start_freeradius(ns, os.path.join(tmp, "conf"))

        log = _Quiet()
        cache = BindingCache(ha_addr, ha_addr[:8], {}, keep_events=False)
        ipsec = IpsecHA([], ha_addr, "ha.bench", 0, log=log)
        cfg = AaaConfig()
        cfg.servers = [Server("::1", 1812, 1813)]
        cfg.secret = secret.encode()
        cfg.timeout_ms, cfg.retries, cfg.accounting, cfg.requests_per_s = 3000, 3, False, 10 ** 6
        agent = AaaAgent(cache, cfg, log, ipaddress.IPv6Network("2001:db8:aa::/64"), 3600)
        with inside(ns):
            agent.open()
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
        if agent is not None:
            agent.close()
        if rad is not None:
            procs.end(rad)
        net.down()
        shutil.rmtree(tmp, ignore_errors=True)
