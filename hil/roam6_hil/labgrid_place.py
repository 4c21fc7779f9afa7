"""A board on a labgrid farm: `roam6 hil run register --board serial --labgrid PLACE --bench FILE`.

    with LabgridPlace("desk-esp32", coordinator="lab:20408", folder=d) as place:
        board = SerialBoard(port=place.url, serial=place.serial).connect()
        place.interfaces          # the place's NetworkInterface resources (the AP ports), by ifname

The place is acquired and released with labgrid's own client (its ClientSession, what
`labgrid-client acquire|release` runs, in this process),
and its serial port is opened by labgrid's SerialDriver through a RemotePlace target (labgrid's
exporter serves the board's port with ser2net, RFC 2217): nothing of labgrid is redone here.
With the bench file's [board] power commands, labgrid's ExternalPowerDriver power-cycles the board
once the place is acquired, before roam6 talks to it.
Labgrid 24+ (gRPC coordinator `labgrid-coordinator`); PyPI `labgrid`, Debian `ser2net` on the exporter.
"""
import json
import os
import sys

from roam6_host.errors import UserError

DEFAULT_COORDINATOR = "127.0.0.1:20408"


class LabgridPlace:
    def __init__(self, place, coordinator=None, folder=".", power=None):
        self.place = place
        self.power = power            # the bench file's {"on", "off", "cycle"} commands, or None
        self.coordinator = coordinator or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR
        self.folder = folder
        self.target = self.strategy = None
        self.serial = self.url = None
        self.interfaces = []
        self._acquired = False

    def _call(self, step, timeout=30):
        """One of labgrid's client steps ("acquire", "release") in this process: labgrid's own
        ClientSession, as `labgrid-client` runs it (without a Python start per step). Once the
        RemotePlace target is open, through its session (the coordinator takes one per host/user)."""
        import argparse
        import asyncio
        import contextlib
        import io
        try:
            from labgrid.remote.client import ClientSession, Error, ensure_event_loop
            from labgrid.util.proxy import proxymanager
        except ImportError:
            raise UserError("labgrid is not installed: --labgrid needs it", hint="pip install 'roam6[bench]' (labgrid)")
        from labgrid.resource.remote import RemotePlaceManager
        loop = ensure_event_loop()
        said = io.StringIO()               # labgrid prints "acquired place ..." on stdout: not ours to say
        args = argparse.Namespace(place=self.place, allow_unmatched=False, kick=False)
        session = None
        shared = RemotePlaceManager.get().session
        try:
            with contextlib.redirect_stdout(said):
                if shared is not None:
                    shared.args = args
                    loop = shared.loop
                    loop.run_until_complete(asyncio.wait_for(getattr(shared, step)(), timeout))
                    return
                session = ClientSession(proxymanager.get_grpc_address(self.coordinator, default_port=20408), loop,
                                        args=args)
                loop.run_until_complete(asyncio.wait_for(session.start(), timeout))
                loop.run_until_complete(asyncio.wait_for(getattr(session, step)(), timeout))
        except asyncio.TimeoutError:
            raise UserError("the labgrid coordinator at %s did not answer within %d s" % (self.coordinator, timeout),
                            hint="is labgrid-coordinator running there? (LG_COORDINATOR or --labgrid-coordinator)")
        except Error as exc:               # labgrid's own: already acquired by someone, no such place...
            raise UserError("cannot %s labgrid place %s: %s" % (step, self.place, exc),
                            hint="`labgrid-client -p %s show` says who holds it; wait, or ask them to release it"
                            % self.place)
        except Exception as exc:           # gRPC: no coordinator there
            raise UserError("cannot reach the labgrid coordinator at %s: %s" % (self.coordinator, exc),
                            hint="is labgrid-coordinator running there? (LG_COORDINATOR or --labgrid-coordinator)")
        finally:
            # closed at once: the coordinator takes one session per host/user, and the RemotePlace
            # target opens its own
            if session is not None:
                try:
                    loop.run_until_complete(asyncio.wait_for(session.stop(), 5))
                except Exception:
                    pass

    def __enter__(self):
        self._call("acquire")
        self._acquired = True
        try:
            self._open()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _open(self):
        """The place's target, labgrid's drivers bound to it, and roam6's Strategy
        (labgrid_strategy.py) taking the board to its REPL."""
        from labgrid import Environment
        from labgrid.driver import ExternalPowerDriver, NetworkPowerDriver, SerialDriver
        from .labgrid_strategy import Roam6Strategy
        os.makedirs(self.folder, exist_ok=True)
        conf = os.path.join(self.folder, "labgrid-env.yaml")
        with open(conf, "w") as f:
            json.dump({"targets": {"main": {"resources": {"RemotePlace": {"name": self.place}}}}}, f)  # YAML ⊃ JSON
        os.environ["LG_COORDINATOR"] = self.coordinator
        self.target = t = Environment(conf).get_target("main")
        kinds = [type(r).__name__ for r in t.resources]
        self.interfaces = [r.ifname for r in t.resources if type(r).__name__ == "RemoteNetworkInterface"]
        try:
            SerialDriver(t, "serial")
        except Exception as exc:      # labgrid's own errors: no serial port in the place...
            raise UserError("labgrid place %s: no usable serial port (%s)" % (self.place, exc),
                            hint="the place needs a NetworkSerialPort (RawSerialPort/USBSerialPort on its exporter)")
        if self.power:
            # labgrid's driver for a switch worked by commands (a smart plug's CLI, a USB hub's
            # uhubctl): cmd_on / cmd_off / cmd_cycle, run by labgrid on this host
            ExternalPowerDriver(t, "power", **{"cmd_" + k: v for k, v in self.power.items()})
        elif "NetworkPowerPort" in kinds:
            NetworkPowerDriver(t, "power")      # the place's network power switch, labgrid's backend for it
        self.strategy = Roam6Strategy(t, "roam6")
        self.strategy.folder = self.folder
        self.transition("repl")
        self.serial = self.strategy.serial.serial
        self.url = self.serial.port

    def transition(self, state, config=None, answer_timeout=None):
        """The Strategy to `state` ("off", "repl", "deployed" with `config` written); labgrid's
        StrategyError said as a roam6 error (the step that broke it, no traceback)."""
        from labgrid.strategy.common import StrategyError
        if config is not None:
            self.strategy.config = config
        if answer_timeout:
            self.strategy.answer_timeout = answer_timeout
        try:
            self.strategy.transition(state)
        except StrategyError as exc:
            cause = exc.__cause__
            if isinstance(cause, UserError):
                raise cause
            raise UserError("labgrid place %s: taking the board to %s failed: %s" % (self.place, state, cause or exc),
                            hint="check the bench file's [board] power commands and the place's serial port")
        return self.strategy.board

    def __exit__(self, *exc):
        if self.target is not None:
            try:
                self.target.deactivate_all_drivers()
            except Exception:
                pass
        if self._acquired:
            self._acquired = False
            try:
                self._call("release")
            except UserError as exc:
                print("roam6: %s" % exc, file=sys.stderr)
        self.target = None
        return False
