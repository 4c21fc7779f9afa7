"""`roam6 bench footprint`: what the mobile node costs a small board (JSON).

- heap: the real MN (boards/unix/main.py on the MicroPython unix port, `-X heapsize=64K`, the
  .mpy bundle a board gets, static care-of address 127.0.0.1, udp4) registers with the HA's
  binding cache (roam6_host.ha.cache, the real rules and authenticator) answering on
  127.0.0.2:4191; the MN's `heap` events give gc.mem_alloc() before its first BU and after
  the BA. On the unix port the modules' bytecode lives in the heap too (on a board with frozen
  firmware it stays in flash), so `runtime_bytes` (after registration minus before the first
  BU) is also given: what registration itself keeps.
- firmware, per board (`boards`: esp32, rp2040, unix): the .mpy of its bundle (`roam6 build`,
  what the board can use: board.json's `exclude` leaves the rest out), the native module's
  .mpy where one is built here, and the modules the MN loads. Top-level `firmware_*` fields
  are those of --board.
- heap with the netlink link adapter too (`with_link_adapter`; root only: a veth pair plays the
  Wi-Fi interface).
- heap with the code in flash (`with_code_in_romfs`): the bundle as a ROMFS image, mounted with
  vfs.VfsRom so the bytecode runs in place, as on a board with a ROMFS partition (MicroPython
  1.25+, `mpremote romfs deploy`). The unix port has no ROM partition (no vfs.rom_ioctl): the
  image is read into its heap (the heap is that much larger) and subtracted from the figures.
Goals (issue 3): heap in use <= 32 KB, firmware <= 64 KB of .mpy.
"""
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile

from .bench_footprint32 import measure as measure_32bit
from .errors import UserError
from .footprint_run import (HEAP_GOAL, heap_figures, in_own_netns, make_ha, registered,
                            rom_prelude, run_until, write_config)
from .paths import micropython_exe

MPY_GOAL = 64 * 1024
# what the MN loads with a static care-of address (probe not configured)
MN_MODULES = ("roam6/__init__.mpy", "roam6/compat.mpy", "roam6/crypto.mpy", "roam6/accel.mpy",
              "roam6/wire/__init__.mpy", "roam6/wire/checksum.mpy", "roam6/wire/addr.mpy", "roam6/wire/binding.mpy",
              "roam6/core/__init__.mpy", "roam6/core/bul.mpy", "roam6/core/registration.mpy",
              "roam6/node/__init__.mpy", "roam6/node/app.mpy", "roam6/node/config.mpy",
              "roam6/node/driver.mpy", "roam6/node/eventlog.mpy", "roam6/node/host.mpy",
              "roam6/node/uplink.mpy", "roam6/node/transport.mpy", "roam6/node/state.mpy")


def register(sub):
    p = sub.add_parser("footprint", help="MN heap in use after registration (64K heap) and firmware .mpy size")
    p.add_argument("--heap", default="64K", help="MicroPython heap size for the MN (default 64K)")
    p.add_argument("--board", default="unix", help="board profile for the .mpy build (default unix)")
    p.add_argument("--timeout", type=float, default=15.0)
    p.add_argument("--ipv4-hoa", action="store_true",
                   help="the MN asks for an RFC 5555 IPv4 home address too (config ipv4_hoa 0.0.0.0)")
    p.add_argument("--ipv4-tlv", action="store_true",
                   help="--ipv4-hoa with the RFC 5555 TLV header on udp4 (config ipv4_tlv_header true)")
    p.add_argument("--ipsec", action="store_true",
                   help="the MN's security is IPsec (IKEv2 + ESP, config security ipsec) instead of RFC 4285")
    p.add_argument("--no-32bit", action="store_true",
                   help="leave out the run on the 32-bit MicroPython (on_32bit_unix_port)")
    p.set_defaults(func=run)


BOARDS = ("esp32", "rp2040", "unix")


def _bundle(board, out):
    from . import build
    index = build.build_bundle(board, out_dir=out, natmod=False, log=lambda *a, **k: None)
    files = index["files"]
    mn = sum(files[f]["size"] for f in MN_MODULES if f in files)
    missing = [f for f in MN_MODULES if f not in files]
    return index["mpy_bytes"], mn, missing


def _board_sizes(board, out):
    """The board's bundle without the native module, and the native module's size when one is
    built for its arch (build/natmod/<arch>/, `roam6 build natmod`; None: not built here)."""
    from . import boards as B, natmod_build
    total, mn, missing = _bundle(board, out)
    nat = os.path.join(natmod_build.DEFAULT_OUT, B.load_board(board)["natmod_arch"], "roam6_native.mpy")
    native = os.path.getsize(nat) if os.path.exists(nat) else None
    d = {"mpy_bytes": total, "mn_modules_mpy_bytes": mn, "mpy_goal_met": total <= MPY_GOAL,
         "natmod_mpy_bytes": native,
         "with_natmod_mpy_bytes": None if native is None else total + native,
         "with_natmod_goal_met": None if native is None else total + native <= MPY_GOAL}
    if missing:
        d["mn_modules_missing"] = missing
    return d


def _mn_run(bundle, tmp, key, heap, extra, timeout, main="main.py", path=".frozen:.", ipv4_hoa=False, ipsec=False):
    """Start the MN (the bundle's main.py) against the in-process HA until it has registered and
    logged its heap after the BA. Returns (events, output lines)."""
    cfg_path = write_config(os.path.join(tmp, "config.json"), key, os.path.join(tmp, "mn.state"), ipv4_hoa, ipsec)
    ha = make_ha(key, ipv4_hoa, ipsec)
    # from the bundle's folder, as a board runs from its filesystem root (module paths are
    # qstrs on the heap: a long folder name would be counted into the MN's figure)
    try:
        return run_until([micropython_exe(), "-X", "heapsize=%s" % heap, main, cfg_path] + extra, bundle, timeout,
                         registered, env=dict(os.environ, MICROPYPATH=path))
    finally:
        ha.close()


_COA_LINK = "198.18.250.1"


def _linked(bundle, tmp, key, args):
    """The MN with the netlink link adapter (boards/unix/link.py): one end of a veth pair with an
    address of its own plays the Wi-Fi interface, movement detection picks that address as the
    care-of address. Needs root (to make the veth pair); otherwise says so."""
    if os.geteuid() != 0:
        return {"skipped": "needs root (a veth pair for the link adapter to watch)"}
    ifname = "r6fp%d" % (os.getpid() % 100000)
    peer = ifname + "p"
    try:
        for cmd in (["ip", "link", "add", ifname, "type", "veth", "peer", "name", peer],
                    ["ip", "addr", "add", _COA_LINK + "/24", "dev", ifname],
                    ["ip", "link", "set", peer, "up"], ["ip", "link", "set", ifname, "up"]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                return {"skipped": "cannot set up the veth pair: %s" % (r.stderr.strip() or cmd)}
        ev, lines = _mn_run(bundle, tmp, key, args.heap, ["--iface", ifname], args.timeout, ipv4_hoa=args.ipv4_hoa,
                            ipsec=args.ipsec)
        try:
            return heap_figures(ev, lines, args.heap, "netlink link adapter")
        except UserError:
            return {"registered": False, "error": (lines[-1].strip() if lines else "no output")[:300]}
    finally:
        subprocess.run(["ip", "link", "del", ifname], capture_output=True)


def _romfs(bundle, tmp, key, args):
    """The bundle's modules as a ROMFS image (what `mpremote romfs deploy` writes to a board's
    flash partition, MicroPython 1.25+), mounted with vfs.VfsRom: the bytecode runs in place,
    nothing of it is copied to the heap. The unix port has no ROM partition (no vfs.rom_ioctl), so
    the image itself is read into its heap (given that much more heap) and subtracted."""
    from . import romfs
    img, size = romfs.write_image(bundle, os.path.join(tmp, romfs.IMAGE))
    # a folder of its own holding only main.py: the script's folder comes first on sys.path,
    # and the bundle's roam6/ there would be imported from files instead of the image
    run_dir = os.path.join(tmp, "romrun")
    os.mkdir(run_dir)
    shutil.copy2(os.path.join(bundle, "main.py"), run_dir)
    with open(os.path.join(run_dir, "romboot.py"), "w") as f:
        f.write(rom_prelude(img) + "import main\n")
    heap_k = _kb(args.heap) + (size + 1023) // 1024
    ev, lines = _mn_run(run_dir, tmp, key, "%dK" % heap_k, ["--coa", "127.0.0.1"], args.timeout,
                        main="romboot.py", path=".frozen:/rom", ipv4_hoa=args.ipv4_hoa,
                        ipsec=args.ipsec)
    try:
        d = heap_figures(ev, lines, "%dK" % heap_k, "code in ROMFS")
    except UserError:
        return {"registered": False, "error": (lines[-1].strip() if lines else "no output")[:300]}
    out = {"image_bytes": size, "heapsize": "%dK" % heap_k}
    for k in ("heap_in_use_after_registration", "heap_in_use_before_first_bu", "heap_code_and_buffers"):
        out[k + "_minus_image"] = None if d[k] is None else d[k] - size
    out["heap_free_after_registration"] = d["heap_free_after_registration"]
    out["runtime_bytes"] = d["runtime_bytes"]
    return out


def _kb(text):
    from .heapsize import heap_bytes
    return (heap_bytes(text) + 1023) // 1024


def run(args):
    if getattr(args, "ipv4_tlv", False):
        args.ipv4_hoa = "tlv"           # footprint_run.write_config: ipv4_hoa plus ipv4_tlv_header
    inside = in_own_netns("roam6_host.bench_footprint", ["--heap", args.heap, "--board", args.board,
                                                           "--timeout", str(args.timeout)]
                          + (["--ipv4-hoa"] if args.ipv4_hoa else []) + (["--ipsec"] if args.ipsec else [])
                          + (["--ipv4-tlv"] if args.ipv4_hoa == "tlv" else [])
                          + (["--no-32bit"] if getattr(args, "no_32bit", False) else []),
                          args.timeout * 8 + 120)
    if inside is not None:
        return inside
    key = secrets.token_bytes(16)
    boards = {}
    with tempfile.TemporaryDirectory(prefix="roam6-footprint-") as tmp:
        for b in BOARDS + ((args.board,) if args.board not in BOARDS else ()):
            boards[b] = _board_sizes(b, os.path.join(tmp, "bundle-" + b))
        bundle = os.path.join(tmp, "bundle-unix")
        ev, lines = _mn_run(bundle, tmp, key, args.heap, ["--coa", "127.0.0.1"], args.timeout, ipv4_hoa=args.ipv4_hoa,
                            ipsec=args.ipsec)
        static = heap_figures(ev, lines, args.heap, "static care-of address")
        if args.ipv4_hoa:
            v4 = [e for e in ev if e.get("ev") == "ipv4"]
            static["ipv4_hoa"] = v4[0].get("hoa4") if v4 else None     # what the HA bound (None: not)
        linked = _linked(bundle, tmp, key, args)
        rom = _romfs(bundle, tmp, key, args)
        if getattr(args, "no_32bit", False):
            on32 = {"skipped": "--no-32bit (python -m roam6_host.bench_footprint32 runs it alone)"}
        else:
            on32 = measure_32bit(bundle, tmp, key, args.heap, args.timeout,     # the same MN on a 32-bit runtime
                                 ipv4_hoa=args.ipv4_hoa, ipsec=args.ipsec)
    out = {"heapsize": args.heap, "with_ipv4_hoa": bool(args.ipv4_hoa), "with_ipsec": args.ipsec,
           "with_ipv4_tlv_header": args.ipv4_hoa == "tlv"}
    out.update(static)
    out["with_link_adapter"] = linked
    out["with_code_in_romfs"] = rom
    out["on_32bit_unix_port"] = on32
    out.update({
        "heap_goal_bytes": HEAP_GOAL,
        # the goal is written for an ESP32: a 32-bit MicroPython's figure is the one it is about
        "heap_goal_met_on_32bit": on32.get("heap_goal_met"),
        "firmware_board": args.board,
        "firmware_mpy_bytes": boards[args.board]["mpy_bytes"],
        "mn_modules_mpy_bytes": boards[args.board]["mn_modules_mpy_bytes"],
        "mn_modules_missing": boards[args.board].get("mn_modules_missing", []),
        "mpy_goal_bytes": MPY_GOAL,
        "mpy_goal_met": boards[args.board]["mpy_goal_met"],
        "boards": boards,
        "note": "the top-level heap figures are the 64-bit unix port's: module bytecode and qstrs are in the heap "
                "(frozen firmware on a board keeps the code in flash: heap_node_state_bytes is what the node itself "
                "holds) and objects are about twice an ESP32's size; on_32bit_unix_port is the same run on a 32-bit "
                "MicroPython (heap_goal_met_on_32bit)",
    })
    return out


def main(argv=None):
    """python -m roam6_host.bench_footprint: the same run, its JSON on stdout (what
    `roam6 bench footprint` runs inside its own network namespace)."""
    import argparse
    from .heapsize import heap_size
    p = argparse.ArgumentParser(prog="roam6 bench footprint")
    p.add_argument("--heap", type=heap_size, default="64K")
    p.add_argument("--board", default="unix")
    p.add_argument("--timeout", type=float, default=15.0)
    p.add_argument("--ipv4-hoa", action="store_true")
    p.add_argument("--ipv4-tlv", action="store_true")
    p.add_argument("--ipsec", action="store_true")
    p.add_argument("--no-32bit", action="store_true")
    try:
        print(json.dumps(run(p.parse_args(argv))))
    except UserError as e:
        print("roam6: error: %s" % e, file=sys.stderr)
        return e.exit_code if isinstance(getattr(e, "exit_code", None), int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
