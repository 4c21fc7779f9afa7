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
        self.target = None
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
        from labgrid import Environment
        os.makedirs(self.folder, exist_ok=True)
        conf = os.path.join(self.folder, "labgrid-env.yaml")
        drivers = {"SerialDriver": {}}
        if self.power:
            # labgrid's driver for a switch worked by commands (a smart plug's CLI, a USB hub's
            # uhubctl): cmd_on / cmd_off / cmd_cycle, run by labgrid on this host
            drivers["ExternalPowerDriver"] = {"cmd_" + k: v for k, v in self.power.items()}
        with open(conf, "w") as f:
            json.dump({"targets": {"main": {"resources": {"RemotePlace": {"name": self.place}},
                                            "drivers": drivers}}}, f)      # YAML is a superset of JSON
        os.environ["LG_COORDINATOR"] = self.coordinator
        self.target = Environment(conf).get_target("main")
        self.interfaces = [r.ifname for r in self.target.resources if type(r).__name__ == "RemoteNetworkInterface"]
        if self.power:
            # the board starts from power-on, whatever ran on it before (a crash, another user);
            # before its port is opened: a USB-CDC port vanishes while the board is off
            try:
                self.target.get_driver("ExternalPowerDriver").cycle()
            except Exception as exc:
                raise UserError("labgrid place %s: the bench file's power command failed (%s)" % (self.place, exc),
                                hint="check [board] power_on/power_off/power_cycle in the bench file")
        try:
            drv = self.target.get_driver("SerialDriver")
        except Exception as exc:      # labgrid's own errors: no serial port in the place, ser2net down...
            raise UserError("labgrid place %s: no usable serial port (%s)" % (self.place, exc),
                            hint="the place needs a NetworkSerialPort (RawSerialPort/USBSerialPort on its exporter)")
        self.serial = drv.serial
        self.serial.timeout = 0.05        # SerialBoard polls in short reads
        self.url = self.serial.port

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
