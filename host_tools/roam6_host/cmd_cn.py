"""`roam6 cn --config FILE`: run a correspondent node (return routability, binding cache, UDP echo).

Prints one JSON event per line; stops on SIGTERM/SIGINT (or after --duration seconds)."""
from .cn.config import load_config
from .cn.driver import CNDriver


def register(sub):
    p = sub.add_parser("cn", help="run a correspondent node with route optimisation and a UDP echo application",
                       description="Run an RFC 6275 correspondent node: return routability, a binding cache, "
                                   "the HAO/RH2 data path and a UDP echo. Prints one JSON event per line; stops "
                                   "on SIGTERM/SIGINT. Config fields: docs/CONTRACTS.md §12. "
                                   "Example: roam6 cn --config cn.json --status cn-status.json")
    p.add_argument("--config", required=True, metavar="FILE", help="the CN's JSON config (address, echo_port, ...)")
    p.add_argument("--status", metavar="FILE", help="write the binding cache and counters here on every change")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: run until signalled)")
    p.set_defaults(func=run)


def run(args):
    cfg = load_config(args.config)
    drv = CNDriver(cfg, status_path=args.status)
    drv.open()
    try:
        return drv.run(duration=args.duration)
    finally:
        drv.close()
