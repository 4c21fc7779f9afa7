"""`roam6 bench footprint`, section `esp32_bundle_on_32bit`: the ESP32's whole configuration on the
32-bit MicroPython of bench_footprint32 -- the esp32 bundle (its board.json leaves out what an
ESP32 cannot use), its main.py, the Wi-Fi keeper (roam6/node/wifi.py) and the link adapter that
polls network.WLAN (roam6/node/wlanlink.py) with movement detection -- registering over udp4 with
the footprint's HA, as a board does after joining an access point. Then the same with the bundle's
modules in a ROMFS image (`with_code_in_romfs`: what `roam6 deploy --romfs` leaves on a board
whose firmware has a ROMFS partition; main.py, config.json and the stand-ins stay files).

What cannot exist here is the ESP32's radio: `network` and `machine` are stand-ins (NETWORK and
MACHINE below: one WLAN interface that joins the AP "bench" and holds the address ADDR, a Timer
that is set up and never fires); `socket` is this runtime's less inet_ntop/inet_pton, which the
ESP32's lacks (SOCKET). Their own heap is measured (`stand_ins_bytes`) and given beside
the figure, so `heap_in_use_after_registration_minus_stand_ins` is what the board would hold with
its built-in modules. The node binds its udp4 socket to ADDR, so the run needs that address on
loopback: only inside the footprint's own network namespace (root), else the section says so.
"""
import json
import os
import shutil
import subprocess

from . import build, mpy, romfs
from .errors import UserError
from .footprint_run import (HEAP_GOAL, FootprintHA, heap_figures, output_tail, registered, rom_prelude,
                            run_until, write_config)
from .heapsize import heap_bytes

ADDR = "192.0.2.3"            # TEST-NET-1: the care-of address the stand-in WLAN hands out

NETWORK = '''"""Stand-in for the ESP32's built-in network module (no radio here): WLAN(STA_IF) is the same
interface every time, as on the board; it joins the AP "bench" and then holds %(addr)r."""
STA_IF = 0
_if = {"ssid": None, "on": False}


class WLAN:
    def __init__(self, which=STA_IF):
        pass

    def active(self, on=None):
        if on is not None:
            _if["on"] = on
        return _if["on"]

    def scan(self):
        return [(b"bench", bytes(6), 1, -50, 3, False)]

    def connect(self, ssid, psk=None):
        _if["ssid"] = ssid if ssid == "bench" else None

    def disconnect(self):
        _if["ssid"] = None

    def isconnected(self):
        return _if["ssid"] is not None

    def status(self):
        return 3 if _if["ssid"] else 0

    def ifconfig(self):
        if _if["ssid"] is None:
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        return (%(addr)r, "255.255.255.0", "192.0.2.1", "0.0.0.0")

    def config(self, key=None, **kw):
        if key == "mac":
            return bytes(6)
        return _if["ssid"] or ""
''' % {"addr": ADDR}

MACHINE = '''"""Stand-in for the ESP32's machine.Timer: set up by the Wi-Fi keeper, never fires here."""


class Timer:
    PERIODIC = 1
    ONE_SHOT = 0

    def __init__(self, tid=-1):
        self.tid = tid

    def init(self, period=1000, mode=1, callback=None):
        self.callback = callback
'''

SOCKET = '''"""The ESP32's socket module: this runtime's, less the two functions the ESP32's lacks
(ports/esp32/modsocket.c has no inet_ntop/inet_pton), so the node formats and parses addresses
with its own code here too, as it does on the board."""
from socket import *

del inet_ntop, inet_pton
'''

# the board boots main.py; first the stand-ins take the built-in modules' places, and what they
# hold is logged (the collection before and after brackets just them)
BOOT = ("import gc, sys\ngc.collect()\n_a = gc.mem_alloc()\nimport network_standin\nimport machine_standin\n"
        "import socket_standin\nsys.modules['socket'] = socket_standin\n"
        "sys.modules['network'] = network_standin\nsys.modules['machine'] = machine_standin\n"
        "gc.collect()\nprint('{\"ev\": \"stand_ins\", \"bytes\": %d}' % (gc.mem_alloc() - _a))\n"
        "del _a\nexec(open('main.py').read())\n")



def measure(tmp, key, heap, timeout, command, private_netns):
    """The section (a dict). command(folder, heapsize): the 32-bit runtime's command line up to the script, with
    folder as its working directory (bench_footprint32); private_netns: this process may add ADDR to lo."""
    if not private_netns:
        return {"skipped": "needs the footprint's own network namespace (run as root) to put the stand-in "
                           "WLAN's address %s on loopback" % ADDR}
    r = subprocess.run(["ip", "addr", "replace", ADDR + "/32", "dev", "lo"], capture_output=True, text=True)
    if r.returncode != 0:
        return {"skipped": "cannot put %s on loopback: %s" % (ADDR, r.stderr.strip())}
    run_dir = os.path.join(tmp, "esp32-32bit")
    index = build.build_bundle("esp32", out_dir=run_dir, natmod=False, log=lambda *a, **k: None)
    rom_dir = os.path.join(tmp, "esp32-32bit-romfs")
    os.mkdir(rom_dir)
    _path, size = romfs.write_image(run_dir, os.path.join(rom_dir, romfs.IMAGE))     # the bundle's modules only
    for name, text in (("network_standin", NETWORK), ("machine_standin", MACHINE), ("socket_standin", SOCKET)):
        src = os.path.join(tmp, name + ".py")
        with open(src, "w") as f:
            f.write(text)
        mpy.compile_file(src, os.path.join(run_dir, name + ".mpy"), index["arch"], source_name=name + ".py")
    cfg = write_config(os.path.join(run_dir, "config.json"), key, "mn.state")
    with open(cfg) as f:
        d = json.load(f)
    d["wifi"] = [{"ssid": "bench", "psk": "bench-psk"}]
    with open(cfg, "w") as f:
        json.dump(d, f)
    out = _run(run_dir, BOOT, key, heap, timeout, command)
    if not out.get("registered"):
        return out
    out["note"] = ("the esp32 bundle with main.py, the Wi-Fi keeper and the WLAN-polling link adapter, on the same "
                   "32-bit runtime; network and machine are stand-ins (no radio here), their heap given apart")
    # the same board with its modules in ROMFS: only main.py, config.json and the stand-ins stay files
    for n in ("main.py", "config.json", "network_standin.mpy", "machine_standin.mpy", "socket_standin.mpy"):
        shutil.copy2(os.path.join(run_dir, n), rom_dir)
    extra = (size + 1023) // 1024
    # the firmware would mount its flash partition at /rom; here the image is read into the heap
    # (given that much more) and mounted from there, and its size is subtracted
    rom = _run(rom_dir, rom_prelude(romfs.IMAGE) + BOOT, key, "%dK" % (heap_bytes(heap) // 1024 + extra), timeout,
               command, minus=size)
    if rom.get("registered"):
        rom["heapsize"] = heap + " (+%dK for the image)" % extra
        rom["heap_free_after_registration"] -= extra * 1024 - size      # as in a heap of `heap`
    rom["image_bytes"] = size
    rom["note"] = ("the same, its modules in a ROMFS image (roam6 deploy --romfs) mounted with vfs.VfsRom: their "
                   "bytecode runs in place; the image is in this runtime's heap (no flash here), its size subtracted")
    out["with_code_in_romfs"] = rom
    return out


def _run(run_dir, boot, key, heap, timeout, command, minus=0):
    """Boot run_dir's main.py behind the stand-ins (and `boot`'s other set-up) until registered;
    the figures, less `minus` bytes (an image read into the heap) and the stand-ins."""
    with open(os.path.join(run_dir, "boot_standins.py"), "w") as f:
        f.write(boot)
    ha = FootprintHA(key)
    try:
        ev, lines = run_until(command(run_dir, heap) + ["boot_standins.py"], run_dir, timeout + 30, registered)
    finally:
        ha.close()
    stand = [e for e in ev if e.get("ev") == "stand_ins"]
    try:
        fig = heap_figures(ev, lines, heap, "esp32 bundle on the 32-bit unix port")
    except UserError:
        return {"registered": False, "error": output_tail(lines)}
    used = fig["heap_in_use_after_registration"] - minus
    sb = stand[0]["bytes"] if stand else None
    return {
        "registered": True,
        "heapsize": heap,
        "heap_in_use_after_registration": used,
        "heap_free_after_registration": fig["heap_free_after_registration"],
        "stand_ins_bytes": sb,
        "heap_in_use_after_registration_minus_stand_ins": None if sb is None else used - sb,
        "heap_goal_met": None if sb is None else used - sb <= HEAP_GOAL,
        "bu_ba_ms": fig["bu_ba_ms"],
    }
