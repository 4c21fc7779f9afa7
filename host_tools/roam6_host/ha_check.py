"""`roam6 ha --check FILE`: load ha.json and its keys file as `roam6 ha` would, start nothing.

Like `kea-dhcp6 -t` or `radvd --configtest`: prints "OK ..." with what the HA would run with, or
each error found, and returns 0 or 1. The config and the keys file are checked independently
(a broken ha.json does not hide a broken keys file); within one file the first error is
reported, as `roam6 ha` itself would stop at it. No socket, TUN device or route is touched.
"""
import json
import os

from .errors import UserError


def _keys_file_of(path):
    """The keys file ha.json names (relative to its folder), or None when ha.json cannot say."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, ValueError):
        return None
    kf = raw.get("keys_file") if isinstance(raw, dict) else None
    if not isinstance(kf, str) or not kf:
        return None
    return os.path.join(os.path.dirname(os.path.abspath(path)), kf)


def check(path, write=print):
    """Check ha.json at `path` and its keys file; print the verdict; return the exit code (0 / 1)."""
    from .ha.config import load_config, load_keys

    errors = []
    cfg = None
    try:
        cfg = load_config(path)
    except UserError as exc:
        errors.append(exc)
        keys = _keys_file_of(path)
        if keys is not None and os.path.exists(keys) and "keys file" not in exc.message:
            try:   # the keys file on its own (without the home prefix the config failed to give)
                load_keys(keys, named_by="HA config %s" % path)
            except UserError as kexc:
                errors.append(kexc)
    if errors:
        for exc in errors:
            write("error: %s" % exc.message)
            if exc.hint:
                write("  -> %s" % exc.hint)
        write("%s: %d error%s" % (path, len(errors), "" if len(errors) == 1 else "s"))
        return 1
    write("OK %s: home prefix %s, HA address %s%s, port %d, transports %s, tun %s%s, %d SA%s from %s"
          % (path, cfg.home_prefix, cfg.address_text, " + %s" % cfg.ipv4 if cfg.ipv4 else "", cfg.port,
             ",".join(cfg.transports), cfg.tun, ", home link %s" % cfg.home_link if cfg.home_link else "",
             len(cfg.sas), "" if len(cfg.sas) == 1 else "s", cfg.keys_file)
          + (" and %d IPsec device%s (IKEv2 on UDP 4500)" % (len(cfg.ipsec_peers), "" if len(cfg.ipsec_peers) == 1
                                                              else "s") if "ipsec" in cfg.security else ""))
    return 0
