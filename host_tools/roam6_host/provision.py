"""Provisioning: a device's config.json (CONTRACTS.md §5) and its SA in the HA's keys file (§6).

The keys file is the fleet's secret: it is only ever replaced whole (temp file + rename, under an
flock so two provisioning runs cannot lose each other's entry), created 0600, and refused when
group or other may read it (the HA refuses it then too).
"""
import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import stat

from .errors import UserError
from .ha.config import parse_keys, refuse_shared_keys_file

SPI_MIN = 256                 # RFC 4285: SPIs 0-255 are reserved
SPI_MAX = 0xFFFFFFFF
TRANSPORTS = ("udp6", "udp4", "ip6")
BOOTSTRAP_METHODS = ("dhcpv6", "dns", "static")


# ---- files -----------------------------------------------------------------------------------

def _atomic_write(path, text, mode=0o600):
    """Write `text` to path via a temp file in the same folder and rename: readers see the old or
    the new file, never half of one, and the file never exists with a looser mode."""
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)          # umask may have narrowed it; never widened
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@contextlib.contextmanager
def _locked(keys_file):
    """Hold KEYS_FILE.lock exclusively; the lock file is removed before it is released, so none
    is left behind. A waiter that then gets the lock holds an unlinked file: it sees the path
    no longer names its file (or names a newer one) and locks again."""
    d = os.path.dirname(os.path.abspath(keys_file))
    if not os.path.isdir(d):
        raise UserError("folder %s of the keys file does not exist" % d, hint="create it or pass another --keys-file")
    path = os.path.abspath(keys_file) + ".lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def read_keys(keys_file, must_exist=False):
    """The keys file as {"sas": [...]}; an absent file is an empty fleet unless must_exist."""
    try:
        st = os.stat(keys_file)
    except FileNotFoundError:
        if must_exist:
            raise UserError("keys file %s does not exist" % keys_file,
                            hint="`roam6 provision --nai ... --keys-file %s` creates it" % keys_file) from None
        return {"sas": []}
    if stat.S_ISDIR(st.st_mode):
        raise UserError("keys file %s is a folder" % keys_file, hint="name a file, e.g. --keys-file ha-keys.json")
    refuse_shared_keys_file(keys_file, st)
    try:
        with open(keys_file) as f:
            doc = json.load(f)
    except PermissionError:
        raise UserError("cannot read keys file %s: permission denied" % keys_file,
                        hint="run as the user that owns it (the HA's user), or with sudo") from None
    except ValueError as exc:
        raise UserError("keys file %s is not valid JSON: %s" % (keys_file, exc), hint="see CONTRACTS.md §6") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("sas"), list):
        raise UserError("keys file %s has no \"sas\" list" % keys_file, hint="see CONTRACTS.md §6")
    parse_keys(doc, source="keys file %s" % keys_file)    # what the HA would refuse, provision refuses too
    return doc


def write_keys(keys_file, doc):
    _atomic_write(keys_file, json.dumps(doc, indent=1) + "\n")


# ---- values ----------------------------------------------------------------------------------

def _ip6(text, what):
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        raise UserError("%s %r is not an IPv6 address" % (what, text), hint="write it like 2001:db8:aa::100") from None


def _ip4(text, what):
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise UserError("%s %r is not an IPv4 address" % (what, text), hint="write it like 198.18.1.2") from None


def _nai(text):
    # RFC 4282 shape, loosely: user@realm, printable, fits the MN-ID option (one length byte)
    if not text or "@" not in text or text.startswith("@") or text.endswith("@") or len(text.encode()) > 250 \
            or any(c.isspace() for c in text):
        raise UserError("NAI %r is not like user@realm" % text, hint="e.g. --nai board1@example.test")
    return text


def fresh_spi(used):
    """A random SPI >= 256 not in `used` (random, so a guessed SPI says nothing about the fleet)."""
    while True:
        spi = SPI_MIN + secrets.randbelow(SPI_MAX - SPI_MIN + 1)
        if spi not in used:
            return spi


def board_methods(board):
    """The bootstrap methods a board's bundle ships (DHCPv6 is left out on IPv4-only boards)."""
    excluded = (board or {}).get("exclude", {})
    return [m for m in BOOTSTRAP_METHODS if "roam6/bootstrap/%s.py" % {"dhcpv6": "dhcp6"}.get(m, m) not in excluded]


def make_config(nai, spi, key, hoa=None, bootstrap=False, ha=None, ha_ipv4=None, home_prefix=None,
                domain=None, transports=None, lifetime=600, timestamps=True, wifi=(), methods=None, board=None,
                ipv4_hoa=None):
    """The config.json dict of CONTRACTS.md §5, validated; UserError naming the option at fault.
    board: the board profile (boards.load_board) it is for, or None; it narrows transports and
    bootstrap methods to what the board's bundle has."""
    _nai(nai)
    if bootstrap == (hoa is not None):
        raise UserError("give either --hoa ADDRESS or --bootstrap",
                        hint="--bootstrap lets the board learn HoA/HA by DHCPv6 or DNS")
    if ha is None:
        if not bootstrap:
            raise UserError("--ha is missing",
                            hint="the home agent's IPv6 address, e.g. --ha 2001:db8:aa::1 (or --ha bootstrap)")
        ha = "bootstrap"
    cfg = {"nai": nai, "spi": spi, "key": key.hex()}
    if bootstrap:
        cfg["hoa"] = "bootstrap"
        if home_prefix is None:
            cfg["home_prefix"] = "bootstrap"      # learnt with the HoA (the firmware needs the field)
    else:
        a = _ip6(hoa, "--hoa")
        if home_prefix is None:
            home_prefix = str(ipaddress.IPv6Network((int(a), 64), strict=False))
        cfg["hoa"] = str(a)
    if home_prefix is not None:
        try:
            net = ipaddress.IPv6Network(home_prefix, strict=True)
        except ValueError:
            raise UserError("--home-prefix %r is not an IPv6 prefix with its host bits zero" % home_prefix,
                            hint="e.g. --home-prefix 2001:db8:aa::/64") from None
        if not bootstrap and ipaddress.IPv6Address(cfg["hoa"]) not in net:
            raise UserError("--hoa %s is outside --home-prefix %s" % (cfg["hoa"], net),
                            hint="the HoA lives on the home link")
        cfg["home_prefix"] = str(net)
    cfg["ha"] = ha if ha == "bootstrap" else str(_ip6(ha, "--ha"))
    if ha != "bootstrap" and home_prefix is not None and ipaddress.IPv6Address(cfg["ha"]) not in net:
        raise UserError("--ha %s is outside the home prefix %s (the HA refuses HoAs outside its own prefix)"
                        % (cfg["ha"], net), hint="the HA and the HoA share the home link: check --hoa and --ha "
                        "(or give --home-prefix when it is not the HoA's /64)")
    if ha_ipv4 is not None:
        cfg["ha_ipv4"] = str(_ip4(ha_ipv4, "--ha-ipv4"))
    if ipv4_hoa is not None:              # RFC 5555 IPv4 home address (0.0.0.0: the HA's pool assigns one)
        cfg["ipv4_hoa"] = str(_ip4(ipv4_hoa, "--ipv4-hoa"))
    if domain is not None:
        cfg["domain"] = domain
    dynamic = bootstrap or ha == "bootstrap"      # something is learnt at boot
    usable = board_methods(board)
    if methods is None:
        # "static" only helps when there is something static to fall back on
        methods = (["dhcpv6", "dns"] + ([] if ha == "bootstrap" else ["static"])) if dynamic else ["static"]
        methods = [m for m in methods if m in usable]
    bad = [m for m in methods if m not in BOOTSTRAP_METHODS]
    if bad:
        raise UserError("unknown bootstrap method %s" % ", ".join(bad),
                        hint="choose from " + ", ".join(BOOTSTRAP_METHODS))
    bad = [m for m in methods if m not in usable]
    if bad:
        raise UserError("board %s cannot bootstrap by %s (left out of its bundle)" % (board["name"], ", ".join(bad)),
                        hint="it can use: " + ", ".join(usable))
    if dynamic and methods == ["static"]:
        raise UserError("--bootstrap-methods static cannot learn the %s" % ("home address" if bootstrap else "HA"),
                        hint="add dhcpv6 or dns, or give --%s" % ("hoa" if bootstrap else "ha"))
    if "dns" in methods and domain is None and dynamic:
        raise UserError("DNS bootstrapping needs --domain",
                        hint="e.g. --domain example.test (the _mip6._ipv6 SRV record's domain)")
    cfg["bootstrap"] = list(methods)
    allowed = board["transports"] if board else TRANSPORTS
    transports = list(transports or allowed)
    bad = [t for t in transports if t not in TRANSPORTS]
    if bad or not transports:
        raise UserError("unknown transport %s" % ", ".join(bad), hint="choose from " + ", ".join(TRANSPORTS))
    bad = [t for t in transports if t not in allowed]
    if bad:
        raise UserError("board %s cannot use transport %s" % (board["name"], ", ".join(bad)),
                        hint="it supports: " + ", ".join(allowed))
    if "udp4" in transports and "ha_ipv4" not in cfg and ha != "bootstrap":
        raise UserError("transport udp4 needs the HA's IPv4 address",
                        hint="add --ha-ipv4 198.18.1.2, or drop udp4 with --transports")
    cfg["transports"] = transports
    if not isinstance(lifetime, int) or not 4 <= lifetime <= 0xFFFF * 4:
        raise UserError("--lifetime %r must be 4..262140 seconds" % lifetime, hint="e.g. --lifetime 600")
    cfg["lifetime"] = lifetime
    cfg["timestamps"] = bool(timestamps)
    cfg["state_file"] = "roam6.state"
    if wifi:
        cfg["wifi"] = [{"ssid": s, "psk": p} for s, p in wifi]
    _firmware_check(cfg)
    return cfg


def _firmware_check(cfg):
    """The board's own loader (roam6.node.config) on what is about to be written: a config it
    would refuse is never written (the checks above say the option; this is the safety net)."""
    from roam6.node.config import ConfigError, parse_config
    try:
        try:
            parse_config(cfg)
        except ConfigError as exc:
            if exc.field != "security" or "not a config field" not in str(exc):
                raise
            # a firmware without the IPsec loader (issue #19's MN side): check the rest of it
            rest = {k: v for k, v in cfg.items() if k not in ("security", "psk", "ipsec_data")}
            parse_config(dict(rest, spi=SPI_MIN, key="00" * 16))
    except ConfigError as exc:
        raise UserError("the board would refuse this config: %s" % str(exc).replace("config: ", "", 1),
                        hint="a roam6 provision bug worth reporting; meanwhile give the field explicitly") from None


def _other_device(out, nai):
    """The NAI of the config already at `out` when it is another device's (or not a config at
    all: 'unreadable'); None when out is free or holds nai's own config."""
    if not os.path.lexists(out):
        return None
    if os.path.isdir(out):
        raise UserError("--out %s is a folder" % out,
                        hint="name the file, e.g. --out %s" % os.path.join(out, "config.json"))
    try:
        with open(out) as f:
            old = json.load(f)
    except (OSError, ValueError):
        return "unreadable"
    if isinstance(old, dict) and old.get("nai") == nai:
        return None
    return old.get("nai") if isinstance(old, dict) and isinstance(old.get("nai"), str) else "unreadable"


# ---- operations ------------------------------------------------------------------------------

def provision(keys_file, out, force=False, security="rfc4285", ipsec_data=False, **cfg_args):
    """Create a device: fresh SPI and key, config.json at `out`, SA appended to keys_file.
    Returns the config dict. The keys file is committed before config.json is renamed into place,
    so a failure never leaves a device config whose SA the HA does not know."""
    nai = _nai(cfg_args.pop("nai"))
    other = _other_device(out, nai)
    if other and not force:
        raise UserError("%s already holds %s" % (out, "the config of %s" % other if other != "unreadable"
                                                    else "a file that is not a device config"),
                        hint="--force overwrites it (that device keeps its SA: --revoke it if it is gone), "
                             "or choose another --out")
    with _locked(keys_file):
        doc = read_keys(keys_file)
        sas = doc["sas"]
        known = [e for e in sas if e.get("nai") == nai]
        if known and not force:
            raise UserError("%s is already provisioned (%s)" % (nai, "SPI %s" % known[0]["spi"] if "spi" in known[0]
                                                                else "IPsec"),
                            hint="--force gives it a new SPI and key (the old config stops working), "
                                 "or --revoke it first")
        sas[:] = [e for e in sas if e.get("nai") != nai]
        spi = fresh_spi({e.get("spi") for e in sas})
        key = secrets.token_bytes(16)
        cfg = make_config(nai, spi, key, **cfg_args)
        entry = {"nai": nai, "spi": spi, "key": key.hex()}
        if security == "ipsec":      # IKEv2 keys the SA (RFC 4877): a PSK on both sides, no SPI/key
            if cfg["hoa"] == "bootstrap":
                raise UserError("--security ipsec needs --hoa", hint="the HA hands that HoA out through IKEv2's "
                                "configuration payload (RFC 4877 §4.4); --bootstrap is for RFC 4285 devices")
            psk = secrets.token_hex(32)
            for field in ("spi", "key"):
                del cfg[field]
            cfg.update({"security": "ipsec", "psk": psk, "ipsec_data": bool(ipsec_data), "timestamps": False})
            _firmware_check(cfg)
            entry = {"nai": nai, "security": "ipsec", "psk": psk}
        if cfg["hoa"] != "bootstrap":
            hoa = ipaddress.IPv6Address(cfg["hoa"])
            twin = [e for e in sas if e.get("hoa") and ipaddress.IPv6Address(e["hoa"]) == hoa]
            if twin:
                raise UserError("HoA %s already belongs to %s" % (cfg["hoa"], twin[0].get("nai")),
                                hint="every device needs its own home address")
            entry["hoa"] = cfg["hoa"]
        v4 = static_ipv4(cfg)
        if v4:
            twin = [e for e in sas if e.get("ipv4_hoa") and ipaddress.IPv4Address(e["ipv4_hoa"]) == v4]
            if twin:
                raise UserError("IPv4 HoA %s already belongs to %s" % (v4, twin[0].get("nai")),
                                hint="every device needs its own, or --ipv4-hoa 0.0.0.0 for one from the HA's pool")
            entry["ipv4_hoa"] = str(v4)
        sas.append(entry)
        text = json.dumps(cfg, indent=1) + "\n"
        out_dir = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(out_dir):
            raise UserError("folder %s for --out does not exist" % out_dir, hint="create it first")
        write_keys(keys_file, doc)
        _atomic_write(out, text)
    return cfg


def static_ipv4(cfg):
    """The config's fixed IPv4 home address (what the HA must assign it), or None (none, or
    0.0.0.0: one from the HA's pool)."""
    v = cfg.get("ipv4_hoa")
    return ipaddress.IPv4Address(v) if v and v != "0.0.0.0" else None


def list_sas(keys_file):
    return read_keys(keys_file, must_exist=True)["sas"]


def revoke(keys_file, nai):
    """Remove `nai`'s SA; returns the removed entry. The HA stops accepting it once it reloads keys."""
    with _locked(keys_file):
        doc = read_keys(keys_file, must_exist=True)
        gone = [e for e in doc["sas"] if e.get("nai") == nai]
        if not gone:
            raise UserError("%s is not in %s" % (nai, keys_file),
                            hint="`roam6 provision --list --keys-file %s` shows the fleet" % keys_file)
        doc["sas"] = [e for e in doc["sas"] if e.get("nai") != nai]
        write_keys(keys_file, doc)
    return gone[0]
