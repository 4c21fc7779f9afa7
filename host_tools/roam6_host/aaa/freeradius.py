"""A FreeRADIUS 3.x configuration for roam6 home agents (Debian's `freeradius` package), written
into a folder of its own, with its SQLite device store (docs/CONTRACTS.md §14).

    write_config(confdir, db, secret, clients=["2001:db8:f1::2"], auth_port=1812, acct_port=1813)
    freeradius -f -d CONFDIR -l stdout        # (`freeradius -CX -d CONFDIR` checks it)

What the server does with it:
- authorize: the `sql` module reads the device from radcheck/radreply (User-Name = the NAI the MN
  sends in its BU). A device present in radcheck has `Auth-Type := Accept`: the RADIUS exchange
  only *authorizes* it; the device proves itself to the HA with the MN-HA key (RFC 4285) in every
  BU. An NAI with no radcheck row is rejected.
- The Access-Accept carries the device's radreply rows: Roam6-MN-HA-Key (salt-encrypted on the
  wire, RFC 2868 §3.5, flag `encrypt=2` in dictionary.roam6), Roam6-MN-HA-SPI, Roam6-Home-Address,
  Roam6-Max-Lifetime.
- FreeRADIUS adds radreply attributes in authorize, so a Reject would carry the key: post-auth's
  `Post-Auth-Type REJECT` removes every reply attribute (tests/aaa checks a Reject has no key).
- accounting: the stock radacct row per session (Start inserts, Interim-Update updates, Stop
  closes) AND one row per Accounting-Request in `roam6_acct_log` (session, status, CoA, transport,
  NAT, counters): radacct keeps only the latest state, the log keeps every care-of address.
- Message-Authenticator is required in Access-Requests (`require_message_authenticator`).
"""
import os
import sqlite3

MODCONFDIR = "/etc/freeradius/3.0/mods-config"
SCHEMA = MODCONFDIR + "/sql/main/sqlite/schema.sql"
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
VENDOR_DICTIONARY = os.path.join(DATA, "dictionary.roam6")
CLIENT_DICTIONARY = os.path.join(DATA, "dictionary.client")

ACCT_LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS roam6_acct_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    logged TEXT DEFAULT (datetime('now')),
    username TEXT NOT NULL,
    acctsessionid TEXT NOT NULL,
    status TEXT NOT NULL,
    coa TEXT,
    transport TEXT,
    nat INTEGER,
    homeaddress TEXT,
    sessiontime INTEGER,
    inputoctets INTEGER,
    outputoctets INTEGER,
    inputpackets INTEGER,
    outputpackets INTEGER,
    terminatecause TEXT,
    nas TEXT,
    vendor TEXT
);
CREATE INDEX IF NOT EXISTS roam6_acct_log_user ON roam6_acct_log(username);
"""

RADIUSD = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {confdir}/log
raddbdir = {confdir}
radacctdir = {confdir}/acct
name = freeradius
confdir = {confdir}
modconfdir = {modconfdir}
run_dir = {confdir}/run
db_dir = {confdir}
libdir = /usr/lib/freeradius
pidfile = ${{run_dir}}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no
log {{
\tdestination = files
\tfile = ${{logdir}}/radius.log
\tcolourise = no
\tauth = no
}}
checkrad = ${{sbindir}}/checkrad
security {{
\tallow_core_dumps = no
\tmax_attributes = 200
\treject_delay = 0
\tstatus_server = yes
}}
proxy_requests = no
$INCLUDE clients.conf
thread pool {{
\tstart_servers = {threads}
\tmax_servers = {threads}
\tmin_spare_servers = 1
\tmax_spare_servers = {threads}
\tmax_requests_per_server = 0
\tauto_limit_acct = no
}}
modules {{
\t$INCLUDE mods-enabled/
}}
instantiate {{
}}
policy {{
}}
$INCLUDE sites-enabled/
"""

DICTIONARY = """\
$INCLUDE /usr/share/freeradius/dictionary
$INCLUDE dictionary.roam6
"""

CLIENT = """\
client {name} {{
\t{family} = {addr}
\tsecret = "{secret}"
\trequire_message_authenticator = yes
\tnas_type = other
\tshortname = {name}
}}
"""

SQL = """\
sql {{
\tdialect = "sqlite"
\tdriver = "rlm_sql_sqlite"
\tsqlite {{
\t\tfilename = "{db}"
\t\tbusy_timeout = 2000
\t}}
\tradius_db = "radius"
\tacct_table1 = "radacct"
\tacct_table2 = "radacct"
\tpostauth_table = "radpostauth"
\tauthcheck_table = "radcheck"
\tgroupcheck_table = "radgroupcheck"
\tauthreply_table = "radreply"
\tgroupreply_table = "radgroupreply"
\tusergroup_table = "radusergroup"
\tread_groups = no
\tdelete_stale_sessions = no
\tpool {{
\t\tstart = {threads}
\t\tmin = 1
\t\tmax = {threads}
\t\tspare = 1
\t\tuses = 0
\t\tretry_delay = 1
\t\tlifetime = 0
\t\tidle_timeout = 60
\t}}
\tclient_table = "nas"
\tgroup_attribute = "SQL-Group"
\t$INCLUDE ${{modconfdir}}/${{.:name}}/main/${{dialect}}/queries.conf
}}
"""

EXPR = """\
expr {
\tsafe_characters = "@abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_: /"
}
"""

ACCT_LOG_INSERT = (
    "INSERT INTO roam6_acct_log (username, acctsessionid, status, coa, transport, nat, homeaddress, "
    "sessiontime, inputoctets, outputoctets, inputpackets, outputpackets, terminatecause, nas, vendor) VALUES ("
    "'%{User-Name}', '%{Acct-Session-Id}', '%{Acct-Status-Type}', '%{Roam6-Care-of-Address}', "
    "'%{Roam6-Transport}', '%{%{Roam6-NAT}:-0}', '%{Framed-IPv6-Address}', '%{%{Acct-Session-Time}:-0}', "
    "'%{%{Acct-Input-Octets}:-0}', '%{%{Acct-Output-Octets}:-0}', '%{%{Acct-Input-Packets}:-0}', "
    "'%{%{Acct-Output-Packets}:-0}', '%{Acct-Terminate-Cause}', '%{NAS-Identifier}', '%{Roam6-Vendor-Data}')")

SITE = """\
server roam6 {{
{listen}
\tauthorize {{
\t\tsql
\t\tif (notfound || !&control:Auth-Type) {{
\t\t\treject
\t\t}}
\t}}
\tauthenticate {{
\t}}
\tpost-auth {{
\t\tPost-Auth-Type REJECT {{
\t\t\t# radreply rows were added in authorize: never let the key leave with a Reject
\t\t\tupdate {{
\t\t\t\t&reply: !* ANY
\t\t\t}}
\t\t}}
\t}}
\tpreacct {{
\t\tupdate request {{
\t\t\t&Acct-Unique-Session-Id := "%{{md5:%{{User-Name}},%{{Acct-Session-Id}},%{{NAS-Identifier}}}}"
\t\t}}
\t}}
\taccounting {{
\t\tsql
\t\tupdate control {{
\t\t\t&Tmp-String-1 := "%{{sql:{acct_log}}}"
\t\t}}
\t}}
}}
"""

LISTEN = """\
\tlisten {{
\t\ttype = {kind}
\t\t{family} = {addr}
\t\tport = {port}
\t}}
"""


def _escape_conf(text):
    if any(ch in text for ch in '"\\\n\r') or not text.isprintable():
        raise ValueError("the shared secret must be printable and hold no quote or backslash")
    return text


def create_db(db):
    """The SQLite device store: FreeRADIUS's own schema (radcheck, radreply, radacct, ...) plus
    roam6_acct_log. Existing tables are kept."""
    try:
        with open(SCHEMA) as f:
            schema = f.read()
    except OSError as exc:
        raise FileNotFoundError("%s: %s (install the Debian package freeradius)" % (SCHEMA, exc.strerror)) from None
    con = sqlite3.connect(db)
    try:
        have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "radcheck" not in have:
            con.executescript(schema)
        con.executescript(ACCT_LOG_SCHEMA)
        if "vendor" not in {r[1] for r in con.execute("PRAGMA table_info(roam6_acct_log)")}:
            con.execute("ALTER TABLE roam6_acct_log ADD COLUMN vendor TEXT")   # a store made before it
        con.commit()
    finally:
        con.close()
    os.chmod(db, 0o600)


def write_config(confdir, db, secret, clients, auth_port=1812, acct_port=1813, listen=("::", "0.0.0.0"),
                 threads=4, strip_reject=True):
    """Write the whole configuration into `confdir` (created); create the SQLite store `db`.
    clients: the HAs' addresses (text, IPv4 or IPv6, a prefix allowed). strip_reject=False is
    only for the test that shows why the stripping is there."""
    os.makedirs(confdir, mode=0o700, exist_ok=True)
    for sub in ("mods-enabled", "sites-enabled", "run", "log", "acct"):
        os.makedirs(os.path.join(confdir, sub), mode=0o700, exist_ok=True)
    secret = _escape_conf(secret)

    def put(name, text):
        path = os.path.join(confdir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)

    put("radiusd.conf", RADIUSD.format(confdir=confdir, modconfdir=MODCONFDIR, threads=threads))
    put("dictionary", DICTIONARY)
    with open(VENDOR_DICTIONARY) as f:
        put("dictionary.roam6", f.read())
    put("clients.conf", "".join(
        CLIENT.format(name="ha%d" % i, family="ipv6addr" if ":" in a else "ipaddr", addr=a, secret=secret)
        for i, a in enumerate(clients)))
    put("mods-enabled/sql", SQL.format(db=os.path.abspath(db), threads=threads))
    put("mods-enabled/pap", "pap {\n}\n")
    put("mods-enabled/always", "always reject {\n\trcode = reject\n}\n")
    put("mods-enabled/expr", EXPR)
    ls = ""
    for addr in listen:
        family = "ipv6addr" if ":" in addr else "ipaddr"
        for kind, port in (("auth", auth_port), ("acct", acct_port)):
            ls += LISTEN.format(kind=kind, family=family, addr=addr, port=port)
    site = SITE.format(listen=ls, acct_log=ACCT_LOG_INSERT)
    if not strip_reject:
        site = site.replace("&reply: !* ANY", "&reply:Reply-Message := \"leaky\"")
    put("sites-enabled/roam6", site)
    create_db(db)
