"""roam6's labgrid Strategy: a place's board taken off -> repl -> deployed (labgrid_place.py).

    strategy = Roam6Strategy(target, "roam6")     # binds the target's SerialDriver and power driver
    strategy.transition("repl")                    # power off, on; MicroPython's raw REPL answers
    strategy.config = {...}                        # the bench's board config (CONTRACTS §5)
    strategy.transition("deployed")                # roam6 on the board, the config written
    strategy.board                                 # board_serial.SerialBoard on labgrid's port

States (labgrid's Strategy: `transition` walks to a state from whatever the board is in; a
failed step leaves the strategy broken, labgrid's never_retry):
  off       the power driver (if the place has one) switched off, the serial port closed;
  repl      powered on (off first: the board starts from power-on), labgrid's SerialDriver open,
            a MicroPython raw REPL answering on it;
  deployed  repl, and the board holds main.py and the roam6 package (`roam6 deploy` on the
            exporter's host put them there: mpremote talks to a local port only) with
            `config` written over the REPL.
Power is labgrid's own driver, whichever the place gives: ExternalPowerDriver from the bench
file's [board] power commands, or NetworkPowerDriver for a place with a NetworkPowerPort (a
network power switch labgrid has a backend for). Without either, off/repl only open and close
the port.
"""
import enum
import json

import attr
from labgrid.factory import target_factory
from labgrid.strategy.common import Strategy, StrategyError, never_retry

from roam6_host.errors import UserError


class Status(enum.Enum):
    unknown = 0
    off = 1
    repl = 2
    deployed = 3


@target_factory.reg_driver
@attr.s(eq=False)
class Roam6Strategy(Strategy):
    bindings = {"power": {"PowerProtocol", None}, "serial": "SerialDriver"}
    status = attr.ib(default=Status.unknown)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.board = None
        self.config = None          # dict: written as config.json on the way to `deployed`
        self.folder = "."           # where the board's mn.log goes
        self.answer_timeout = 5.0

    @never_retry
    def transition(self, status):
        if not isinstance(status, Status):
            status = Status[status]
        if status == Status.unknown:
            raise StrategyError("can not transition to %s" % status)
        if status == self.status:
            return
        if status == Status.off:
            self._close()
            if self.power is not None:
                self.target.activate(self.power)
                self.power.off()
        elif status == Status.repl:
            self.transition(Status.off)
            if self.power is not None:
                self.power.on()
            self.target.activate(self.serial)
            from .board_serial import SerialBoard
            port = self.serial.serial
            port.timeout = 0.05                         # SerialBoard polls in short reads
            self.board = SerialBoard(port=port.port, serial=port, folder=self.folder).connect(self.answer_timeout)
        elif status == Status.deployed:
            if self.status != Status.repl:
                self.transition(Status.repl)
            self._deploy()
        self.status = status

    def _deploy(self):
        out, _err = self.board.exec("import os\nfor p in ('main.py', 'roam6'):\n try:\n  os.stat(p)\n"
                                    " except OSError:\n  print(p)\n")
        if out.strip():
            raise UserError("the board has no roam6 (%s missing)" % ", ".join(out.split()),
                            hint="`roam6 deploy` it on the exporter's host first")
        if self.config is not None:
            self.board.put_file("config.json", json.dumps(self.config))

    def _close(self):
        if self.board is not None:
            try:
                self.board.stop()
            finally:
                self.board = None
        self.target.deactivate(self.serial)

    def on_deactivate(self):
        self.board = None
        self.status = Status.unknown
