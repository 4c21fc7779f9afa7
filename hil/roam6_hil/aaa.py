"""`roam6 hil run roam --aaa`: the bench's HA on FreeRADIUS (CONTRACTS §14) instead of a keys file.

FreeRADIUS runs in the `ha` namespace on its loopback (::1), config and SQLite store in the
bench's folder `aaa/`; the board's SA (homeagent.BOARD_SA) is a device in the store; the HA's
ha.json has an `aaa` section and no keys file. After the run, `accounting_rows` reads what the
HA accounted per roam (Start, Interim-Update per new care-of address, Stop at home).
"""
import json
import os
import secrets
import sqlite3

from roam6_host.aaa import freeradius
from roam6_host.aaa.bench import start_freeradius
from roam6_host.aaa.provision_sql import add_device

from .homeagent import BOARD_SA
from .topology import HA_ADDR, HA_DAD_MS, HA_IPV4, HOME4_POOL, HOME4_PREFIX, HOME_PREFIX

# with ipv4_home: the board's RFC 5555 IPv4 home address as the AAA server hands it out
# (Framed-IP-Address), outside the HA's pool so it shows where it came from
AAA_HOA4 = "198.18.50.20"


class _Radius:
    def __init__(self, proc):
        self.p = proc

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except Exception:
                self.p.kill()


def start_aaa(bench, ipv4_home=False):
    """FreeRADIUS up (a bench service), the board provisioned in its store; returns the HA's
    config path (give it to homeagent.start_ha). ipv4_home: the board also gets AAA_HOA4 as
    Framed-IP-Address, and the HA (no keys file) the IPv4 home prefix, a pool and its leases file."""
    folder = bench.path("aaa")
    os.makedirs(folder, exist_ok=True)
    secret = secrets.token_hex(16)
    db = os.path.join(folder, "radius.sqlite")
    conf = os.path.join(folder, "raddb")
    freeradius.write_config(conf, db, secret, ["::1"], listen=("::1",))
    add_device(db, BOARD_SA["nai"], BOARD_SA["spi"], bytes.fromhex(BOARD_SA["key"]), BOARD_SA["hoa"], force=True,
               ipv4_hoa=AAA_HOA4 if ipv4_home else None)
    bench.ip("ha", "link", "set", "lo", "up", check=False)
    bench.services.append(_Radius(start_freeradius(bench.ns.full("ha"), conf)))
    sf = os.path.join(folder, "radius-secret")
    fd = os.open(sf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    cfg = os.path.join(folder, "ha.json")
    with open(cfg, "w") as f:
        json.dump({"home_prefix": HOME_PREFIX, "address": HA_ADDR, "ipv4": HA_IPV4, "port": 4191,
                   "home_link": "home", "tun": "r6tun", "dad_ms": HA_DAD_MS,
                   "aaa": {"servers": [{"host": "::1"}], "secret_file": sf, "nas_identifier": "bench-ha"},
                   **({"ipv4_home_prefix": HOME4_PREFIX, "ipv4_pool": HOME4_POOL,
                       "ipv4_leases_file": os.path.join(folder, "ipv4-leases.json")} if ipv4_home else {})},
                  f, indent=1)
    return cfg


def accounting_rows(bench):
    """[{status, coa, transport, nat, sessiontime, inputpackets, outputpackets, terminatecause}]."""
    con = sqlite3.connect(os.path.join(bench.path("aaa"), "radius.sqlite"))
    try:
        cols = ("status", "coa", "transport", "nat", "sessiontime", "inputpackets", "outputpackets", "terminatecause")
        return [dict(zip(cols, r)) for r in con.execute(
            "SELECT %s FROM roam6_acct_log WHERE username=? ORDER BY id" % ", ".join(cols), (BOARD_SA["nai"],))]
    finally:
        con.close()


def table(rows):
    out = ["accounting (FreeRADIUS roam6_acct_log): %d record(s)" % len(rows),
           "  %-15s %-48s %-9s %-4s %6s %8s %8s" % ("status", "care-of address", "transport", "NAT", "s", "in pkts",
                                                    "out pkts")]
    for r in rows:
        out.append("  %-15s %-48s %-9s %-4s %6s %8s %8s" % (r["status"], r["coa"], r["transport"],
                                                         "yes" if r["nat"] else "no", r["sessiontime"],
                                                         r["inputpackets"], r["outputpackets"]))
    return "\n".join(out)
