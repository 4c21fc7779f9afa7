"""`roam6 ha switch --nai NAI|--all --to ADDR[,ADDR]`: asks the running HA (control socket) to send
the Home Agent Switch (ha/switch.py), prints its progress until every device moved or the deadline
passed, then the devices that did not move. Exit 0 when all moved, 1 otherwise."""
import json
import sys
import time

from ..errors import UserError
from .control import query


def _tun(args):
    if args.tun is not None:
        return args.tun
    if args.config:
        from .config import load_config
        return load_config(args.config).tun
    return "r6tun"


def run_switch(args):
    if bool(args.nai) == bool(args.all):
        raise UserError("roam6 ha switch needs exactly one of --nai NAI or --all", hint="roam6 ha switch --help")
    if not args.to:
        raise UserError("roam6 ha switch needs --to ADDR[,ADDR] (the HA(s) the devices should use)")
    if args.deadline < 1:
        raise UserError("--deadline must be at least 1 s")
    to = [a.strip() for a in args.to.split(",") if a.strip()]
    tun = _tun(args)
    req = {"to": to, "deadline_s": args.deadline}
    req.update({"all": True} if args.all else {"nai": args.nai})
    doc = query(tun, request=b"switch " + json.dumps(req).encode() + b"\n")
    if "error" in doc:
        raise UserError("the HA says: %s" % doc["error"])
    last = None
    while True:
        p = doc["switch"]
        line = (p["moved"] + p["gone"], p["devices"])
        if line != last:
            last = line
            if args.json:
                print(json.dumps(p, sort_keys=True), flush=True)
            else:
                print("%6.1f s  %d/%d moved, %d messages sent" % (p["elapsed_ms"] / 1000, p["moved"] + p["gone"],
                                                                 p["devices"], p["messages"]), flush=True)
        if p["over"]:
            break
        time.sleep(0.2)
        doc = query(tun, request=b'switch {"progress": true}\n')
    if p["not_moved"]:
        print("did not move: %s" % ", ".join(p["not_moved"]), file=sys.stderr if args.json else sys.stdout)
        return 1
    return 0
