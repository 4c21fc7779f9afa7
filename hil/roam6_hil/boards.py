"""Board drivers (the factory) and the scenarios' --board; the profiles live in profiles.py.

A driver starts the MN on a board, gives the bench the MN's event lines (CONTRACTS §7) and roams
it. Interface (`unix` = the virtual board in the bench's `board` namespace; `serial` = a real
ESP32/Pico W on USB serial, see board_serial.py):

    drv = get_driver("unix")(bench, profile="esp32")
    drv.start(config)              # config.json dict (CONTRACTS §5); the profile narrows transports
    drv.wait_event(pred, timeout)  # first event (dict with "t" in monotonic s) matching pred, or None
    drv.events                     # every event so far
    drv.alive()
    drv.stop()
Roaming the unix board is the bench's business (roaming.Roamer moves its link); a serial board is
told to join another network.
"""
from roam6_host.errors import UserError

from .profiles import profile  # noqa: F401 (the scenarios import boards and profiles from here)


SCENARIO_BOARD_HELP = ("the board: unix, the virtual one (default); a real ESP32 or Pico W needs real Wi-Fi APs, "
                      "see README 'Real boards'")


def scenario_board_real(text):
    """--board of a scenario that also runs on a real board with a bench file (realboard.py,
    realroam.py, realboot.py: register, roam, bootstrap)."""
    return text


def get_driver(name):
    if name == "unix":
        from .board_unix import UnixBoard
        return UnixBoard
    if name == "serial":
        from .board_serial import SerialBoard
        return SerialBoard
    raise UserError("unknown board driver %r" % name, hint="--board unix (virtual) or --board serial (USB)")
