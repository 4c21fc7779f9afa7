"""`roam6 cn` on a real bench's host (hostbench.HostBench starts it, `hil down --bench` stops it).

    cn = start_cn(hb)          # on the bench file's [cn].address6, reading every link
    ...                        # (the HA starts meanwhile)
    wait_ready(hb, cn)         # RuntimeError with its log's tail if it did not start

The CN reads the board's signalling on every link (no "interface": the board's HoTI/CoTI, BUs
and HAO packets arrive on the AP ports). Without a probe (`hil up --bench`) its event lines go to
DIR/cn/cn.log and it outlives the command like the other daemons; with `cn_probe_ms`
(`hil run ro --board serial`, realro.py) it probes the bench file's HoA and hb.cn is a
scenarios/ro.py CNProcess look-alike (events, wait, bindings) reading its events live.
"""
import json
import os
import subprocess
import sys
import time

PROBE_PORT, CN_SPORT = 9000, 9002      # scenarios/ro.py's: the board's probe port, the CN's source port


class CnView:
    """What scenarios/ro.py's phases read of a running `roam6 cn`: its events, a wait, its binding
    cache (`proc`: an eventlog.EventProc; `status`: its --status file)."""

    def events(self, name, t0=0.0, t1=None):
        return [e for e in self.proc.events if e["ev"] == name and e["t_rx"] >= t0 and (t1 is None or e["t_rx"] < t1)]

    def wait(self, pred, timeout, since=0.0):
        return self.proc.wait_for(pred, timeout, since)

    def bindings(self):
        """The CN's binding cache as its --status file shows it: {hoa: coa}."""
        try:
            with open(self.status) as f:
                return {b["hoa"]: b["coa"] for b in json.load(f)["bindings"]}
        except (OSError, ValueError, KeyError):
            return {}


class HostCN(CnView):
    """scenarios/ro.py's CNProcess view for the CN a HostBench started (stopped by hb.down(), with
    the bench's other processes)."""

    def __init__(self, folder, status, proc):
        self.folder, self.status, self.proc = folder, status, proc


def start_cn(hb, timeout=10.0):
    from .eventlog import EventProc
    s = hb.spec
    folder = hb.path("cn")
    os.makedirs(folder, exist_ok=True)
    cfg = {"address": s["cn"]["address6"], "echo_port": 7}
    if hb.cn_probe_ms:
        cfg["probe"] = {"hoa": s["home"]["hoa"], "port": PROBE_PORT, "interval_ms": int(hb.cn_probe_ms),
                        "sport": CN_SPORT}
    conf, log, status = (os.path.join(folder, n) for n in ("cn.json", "cn.log", "cn-status.json"))
    with open(conf, "w") as f:
        json.dump(cfg, f)
    argv = [sys.executable, "-u", "-m", "roam6_host", "cn", "--config", conf, "--status", status]
    if hb.cn_probe_ms:
        p = hb.popen("cn", argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        hb.cn = HostCN(folder, status, EventProc(hb, p, log))
    else:
        with open(log, "wb") as out:
            p = hb.popen("cn", argv, stdout=out, stderr=subprocess.STDOUT)
    return {"proc": p, "log": log, "deadline": time.monotonic() + timeout}


def wait_ready(hb, cn):
    while True:
        if hb.cn is not None:
            if hb.cn.wait(lambda e: e["ev"] == "ready", 0.05) is not None:
                return
        else:
            with open(cn["log"], errors="replace") as f:
                if '"ev": "ready"' in f.read():
                    return
        if cn["proc"].poll() is not None or time.monotonic() > cn["deadline"]:
            break
        time.sleep(0.02)
    with open(cn["log"], errors="replace") as f:
        text = f.read()
    raise RuntimeError("roam6 cn did not start on %s:\n%s" % (hb.spec["cn"]["address6"], text[-800:]))
