"""Devices in FreeRADIUS's SQL tables (`roam6 provision --aaa DBFILE`), docs/CONTRACTS.md §14.

One device = one radcheck row (`Auth-Type := Accept`: being in the table authorizes the NAI; the
MN-HA key authenticates every BU at the HA) and its radreply rows:

    Roam6-MN-HA-Key     := 0x<32 hex>   (salt-encrypted on the wire by FreeRADIUS)
    Roam6-MN-HA-SPI     := <spi>
    Roam6-Home-Address  := <HoA>        (absent: any HoA of the home prefix)
    Roam6-Max-Lifetime  := <s>          (absent: the HA's max_lifetime)

An IPsec device (`--security ipsec`, issue 19; ha/ipsecaaa.py) has instead of key and SPI:

    Roam6-IKE-PSK       := 0x<64 hex>   its IKEv2 pre-shared key (salt-encrypted on the wire)
    Roam6-Home-Address  := <HoA>        required: the HA hands it out through IKEv2's CP

Every change is one SQLite transaction (BEGIN IMMEDIATE: a second writer waits for it, a reader -
FreeRADIUS - sees all rows of a device or none). The database file stays 0600.
"""
import ipaddress
import os
import sqlite3

from ..errors import UserError

KEY_ATTR = "Roam6-MN-HA-Key"
SPI_ATTR = "Roam6-MN-HA-SPI"
HOA_ATTR = "Roam6-Home-Address"
V4_ATTR = "Framed-IP-Address"          # RFC 2865 attribute 8: the device's IPv4 home address (RFC 5555)
LIFE_ATTR = "Roam6-Max-Lifetime"
PSK_ATTR = "Roam6-IKE-PSK"            # an IPsec device's IKEv2 PSK (ha/ipsecaaa.py)
ATTRS = (KEY_ATTR, SPI_ATTR, HOA_ATTR, LIFE_ATTR)


def _open(db, create=False):
    if not create and not os.path.exists(db):
        raise UserError("AAA database %s does not exist" % db,
                        hint="create it with `roam6 provision --aaa %s --nai ...` or point --aaa at "
                             "FreeRADIUS's SQLite file" % db)
    try:
        con = sqlite3.connect(db, timeout=10, isolation_level=None)
        if create:
            from .freeradius import create_db
            have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "radcheck" not in have:
                con.close()
                create_db(db)
                con = sqlite3.connect(db, timeout=10, isolation_level=None)
        con.execute("SELECT 1 FROM radcheck LIMIT 1")
        con.execute("SELECT 1 FROM radreply LIMIT 1")
    except sqlite3.Error as exc:
        raise UserError("AAA database %s: %s" % (db, exc),
                        hint="it must be FreeRADIUS's SQLite store (tables radcheck and radreply)") from None
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    return con


def devices(db):
    """[{nai, spi, hoa, max_lifetime, key}] of every device in the store, sorted by NAI."""
    con = _open(db)
    try:
        out = {}
        for (user,) in con.execute("SELECT username FROM radcheck WHERE attribute='Auth-Type' AND value='Accept'"):
            out[user] = {"nai": user}
        for user, attr, value in con.execute("SELECT username, attribute, value FROM radreply"):
            e = out.get(user)
            if e is None:
                continue
            if attr == KEY_ATTR:
                e["key"] = value[2:] if value.startswith("0x") else value
            elif attr == SPI_ATTR:
                e["spi"] = int(value)
            elif attr == HOA_ATTR:
                e["hoa"] = value
            elif attr == LIFE_ATTR:
                e["max_lifetime"] = int(value)
            elif attr == V4_ATTR:
                e["ipv4_hoa"] = value
            elif attr == PSK_ATTR:
                e["security"] = "ipsec"
                e["psk"] = value[2:] if value.startswith("0x") else value
        return [out[k] for k in sorted(out)]
    finally:
        con.close()


def add_device(db, nai, spi, key, hoa=None, max_lifetime=None, force=False, ipv4_hoa=None, psk=None):
    """Write one device (all its rows in one transaction). An NAI already there is refused
    unless force (then replaced); an SPI used by another NAI is refused. psk (bytes): an IPsec
    device (its IKEv2 PSK and HoA; spi and key are not written)."""
    if hoa is not None:
        hoa = str(ipaddress.IPv6Address(hoa))
    con = _open(db, create=True)
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            there = con.execute("SELECT 1 FROM radcheck WHERE username=?", (nai,)).fetchone()
            if there and not force:
                raise UserError("%s is already in %s" % (nai, db), hint="add --force to give it a new SPI and key")
            other = con.execute("SELECT username FROM radreply WHERE attribute=? AND value=? AND username<>?",
                                (SPI_ATTR, str(spi), nai)).fetchone()
            if other:
                raise UserError("SPI %d is already used by %s in %s" % (spi, other[0], db))
            con.execute("DELETE FROM radcheck WHERE username=?", (nai,))
            con.execute("DELETE FROM radreply WHERE username=?", (nai,))
            con.execute("INSERT INTO radcheck (username, attribute, op, value) VALUES (?, 'Auth-Type', ':=', 'Accept')",
                        (nai,))
            rows = ([(nai, KEY_ATTR, "0x" + key.hex()), (nai, SPI_ATTR, str(spi))] if psk is None
                    else [(nai, PSK_ATTR, "0x" + psk.hex())])
            if hoa is not None:
                rows.append((nai, HOA_ATTR, hoa))
            if max_lifetime is not None:
                rows.append((nai, LIFE_ATTR, str(int(max_lifetime))))
            if ipv4_hoa is not None:          # RFC 5555: the HA's static IPv4 HoA for it (aaa/ipv4.py)
                rows.append((nai, V4_ATTR, str(ipaddress.IPv4Address(ipv4_hoa))))
            con.executemany("INSERT INTO radreply (username, attribute, op, value) VALUES (?, ?, ':=', ?)", rows)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise UserError("AAA database %s: %s" % (db, exc)) from None
    finally:
        con.close()
    os.chmod(db, 0o600)


def used_spis(db):
    if not os.path.exists(db):
        return set()
    return {e["spi"] for e in devices(db) if "spi" in e}


def revoke(db, nai):
    """Remove a device's rows (one transaction); returns what it had. Unknown NAI: UserError."""
    con = _open(db)
    try:
        con.execute("BEGIN IMMEDIATE")
        spi = con.execute("SELECT value FROM radreply WHERE username=? AND attribute=?", (nai, SPI_ATTR)).fetchone()
        n = con.execute("DELETE FROM radcheck WHERE username=?", (nai,)).rowcount
        con.execute("DELETE FROM radreply WHERE username=?", (nai,))
        con.execute("COMMIT")
    except sqlite3.Error as exc:
        raise UserError("AAA database %s: %s" % (db, exc)) from None
    finally:
        con.close()
    if not n:
        raise UserError("%s is not in %s" % (nai, db), hint="see `roam6 provision --list --aaa %s`" % db)
    return {"nai": nai, "spi": int(spi[0]) if spi else None}


def provision(db, out, force=False, security="rfc4285", ipsec_data=False, **cfg_args):
    """`roam6 provision --aaa DB`: fresh SPI and key, config.json at `out`, the device's rows in
    the SQL store (one transaction, committed before config.json is renamed into place)."""
    import json
    import secrets

    from .. import provision as prov
    nai = prov._nai(cfg_args.pop("nai"))
    known = {e["nai"]: e for e in devices(db)} if os.path.exists(db) else {}
    if nai in known and not force:
        raise UserError("%s is already provisioned in %s (SPI %s)" % (nai, db, known[nai].get("spi")),
                        hint="--force gives it a new SPI and key (the old config stops working), or --revoke it first")
    spi = prov.fresh_spi({e.get("spi") for e in known.values()})
    key = secrets.token_bytes(16)
    cfg = prov.make_config(nai, spi, key, **cfg_args)
    psk = None
    if security == "ipsec":      # IKEv2 keys the SA (RFC 4877): the PSK in the store, no SPI/key
        if cfg["hoa"] == "bootstrap":
            raise UserError("--security ipsec needs --hoa", hint="the HA hands that HoA out through IKEv2's "
                            "configuration payload (RFC 4877 §4.4); --bootstrap is for RFC 4285 devices")
        psk = secrets.token_bytes(32)
        for field in ("spi", "key"):
            del cfg[field]
        cfg.update({"security": "ipsec", "psk": psk.hex(), "ipsec_data": bool(ipsec_data), "timestamps": False})
        prov._firmware_check(cfg)
    if cfg["hoa"] != "bootstrap":
        twin = [e for e in known.values() if e.get("hoa") and e["nai"] != nai
                and ipaddress.IPv6Address(e["hoa"]) == ipaddress.IPv6Address(cfg["hoa"])]
        if twin:
            raise UserError("HoA %s already belongs to %s" % (cfg["hoa"], twin[0]["nai"]),
                            hint="every device needs its own home address")
    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        raise UserError("folder %s for --out does not exist" % out_dir, hint="create it first")
    v4 = prov.static_ipv4(cfg)
    if v4:
        twin = [e for e in known.values() if e.get("ipv4_hoa") and e["nai"] != nai
                and ipaddress.IPv4Address(e["ipv4_hoa"]) == v4]
        if twin:
            raise UserError("IPv4 HoA %s already belongs to %s" % (v4, twin[0]["nai"]),
                            hint="every device needs its own, or --ipv4-hoa 0.0.0.0 for one from the HA's pool")
    add_device(db, nai, spi, key, None if cfg["hoa"] == "bootstrap" else cfg["hoa"], force=force, ipv4_hoa=v4,
               psk=psk)
    prov._atomic_write(out, json.dumps(cfg, indent=1) + "\n")
    return cfg


def run_cli(args):
    """The --aaa branch of `roam6 provision` (cmd_provision.py): the same verbs on the SQL store."""
    db = args.aaa
    if args.list:
        devs = devices(db)
        print("%-32s %10s  %-28s%s" % ("NAI", "SPI", "HoA", "  key" if args.show_key else ""))
        for e in devs:
            print("%-32s %10s  %-28s%s" % (e["nai"], e.get("spi", e.get("security")),
                                           e.get("hoa", "(any in the home prefix)"),
                                           "  " + e.get("key", e.get("psk", "")) if args.show_key else ""))
        print("%d device(s) in %s" % (len(devs), db))
        return 0
    if args.revoke:
        e = revoke(db, args.revoke)
        print("revoked %s (SPI %s) from %s; HAs refuse its next first registration, and drop its binding when "
              "they next ask the server (aaa.cache_s)" % (e["nai"], e["spi"], db))
        return 0
    if not args.nai:
        raise UserError("say what to do: --nai NAI (provision), --list or --revoke NAI")
    if not args.out:
        raise UserError("--out is missing", hint="where to write the device's config.json, e.g. --out config.json")
    if getattr(args, "ipsec_data", False) and getattr(args, "security", "rfc4285") != "ipsec":
        raise UserError("--ipsec-data needs --security ipsec")
    wifi = []
    for w in args.wifi:
        ssid, sep, psk = w.partition(":")
        if not ssid or not sep:
            raise UserError("--wifi %r must be SSID:PSK" % w,
                            hint="e.g. --wifi apA:secret (an open network: --wifi apA:)")
        wifi.append((ssid, psk))
    csv = (lambda t: [x.strip() for x in t.split(",") if x.strip()] if t else None)
    cfg = provision(db, args.out, force=args.force, nai=args.nai, hoa=args.hoa, bootstrap=args.bootstrap,
                    ha=args.ha, ha_ipv4=args.ha_ipv4, home_prefix=args.home_prefix, domain=args.domain,
                    transports=csv(args.transports), lifetime=args.lifetime, timestamps=not args.no_timestamps,
                    wifi=wifi, methods=csv(args.bootstrap_methods), ipv4_hoa=getattr(args, "ipv4_hoa", None),
                    security=getattr(args, "security", "rfc4285"), ipsec_data=getattr(args, "ipsec_data", False))
    print("provisioned %s: %s, HoA %s, HA %s, transports %s"
          % (cfg["nai"], "SPI %d" % cfg["spi"] if "spi" in cfg else "IPsec (IKEv2 PSK)", cfg["hoa"], cfg["ha"],
             ",".join(cfg["transports"])))
    print("  config  -> %s (mode 0600: it holds the key)" % args.out)
    print("  SA      -> %s (radcheck/radreply; HAs ask FreeRADIUS for it at the device's first BU)" % db)
    if args.show_key:
        print("  key     %s" % cfg.get("key", cfg.get("psk")))
    return 0


def add_devices(db, rows):
    """Many devices at once (the bench's 10,000): rows of (nai, spi, key, hoa or None), one
    transaction. No checks beyond add_device's SQL constraints: for generated fleets."""
    con = _open(db, create=True)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO radcheck (username, attribute, op, value) VALUES (?, 'Auth-Type', ':=', 'Accept')",
                        [(r[0],) for r in rows])
        reply = []
        for nai, spi, key, hoa in rows:
            reply += [(nai, KEY_ATTR, "0x" + key.hex()), (nai, SPI_ATTR, str(spi))]
            if hoa is not None:
                reply.append((nai, HOA_ATTR, hoa))
        con.executemany("INSERT INTO radreply (username, attribute, op, value) VALUES (?, ?, ':=', ?)", reply)
        con.execute("COMMIT")
    finally:
        con.close()
    os.chmod(db, 0o600)
