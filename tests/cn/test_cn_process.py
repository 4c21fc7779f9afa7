"""`roam6 cn` as a real process in a namespace, answering HoTI/CoTI/BU that the MN's rr core builds
in a second namespace (tests/cn/mn_side.py, on the real MicroPython unix port and on CPython),
over a veth pair. Needs root (namespaces)."""
import json
import os
import secrets
import subprocess
import sys
import time

import pytest

from roam6_hil.netns import Namespaces

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable
HOA, COA, COA2, CN = "2001:db8:1::100", "2001:db8:2::200", "2001:db8:4::400", "2001:db8:3::300"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")


@pytest.fixture
def pair(tmp_path):
    ns = Namespaces("r6t%s-" % secrets.token_hex(2))
    try:
        ns.add("mn")
        ns.add("cn")
        ns.ip("mn", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", ns.full("cn"))
        for a in (HOA, COA, COA2):
            ns.ip("mn", "addr", "add", a + "/64", "dev", "eth0", "nodad")
        ns.ip("cn", "addr", "add", CN + "/64", "dev", "eth0", "nodad")
        for side in ("mn", "cn"):
            ns.ip(side, "link", "set", "eth0", "up")
        for net in ("2001:db8:1::/64", "2001:db8:2::/64", "2001:db8:4::/64"):
            ns.ip("cn", "route", "replace", net, "dev", "eth0")
        ns.ip("mn", "route", "replace", "2001:db8:3::/64", "dev", "eth0")
        yield ns, tmp_path
    finally:
        ns.teardown()


def micropython():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    assert os.path.exists(exe), "the MicroPython unix port is missing: `make setup`"
    return exe


@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
def test_cn_process_answers_the_mn_core(pair, runtime):
    ns, tmp = pair
    cfg = tmp / "cn.json"
    cfg.write_text(json.dumps({"address": CN, "interface": "eth0", "echo_port": 7000,
                               "probe": {"hoa": HOA, "port": 9000, "interval_ms": 100}}))
    status = tmp / "cn-status.json"
    log = open(tmp / "cn.log", "w")
    cn = ns.popen("cn", [PY, "-m", "roam6_host", "cn", "--config", str(cfg), "--status", str(status)],
                  stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "ready" not in (tmp / "cn.log").read_text():
        assert cn.poll() is None, (tmp / "cn.log").read_text()
        time.sleep(0.05)
    path = os.path.join(ROOT, "firmware") + ":" + os.path.join(ROOT, "host_tools")
    env = dict(os.environ, PYTHONPATH=path, MICROPYPATH=path)
    exe = [micropython(), "-X", "heapsize=256K"] if runtime == "micropython" else [PY]
    r = subprocess.run(ns.argv("mn", exe + [os.path.join(ROOT, "tests", "cn", "mn_side.py"), "eth0",
                                            HOA, COA, COA2, CN, 7000]),
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["runtime"] == runtime
    cnlog = (tmp / "cn.log").read_text()
    assert res["bound"], (res, cnlog)
    assert sorted(res["kinds1"]) == ["BindingUpdate", "CareofTestInit", "HomeTestInit"]
    assert res["echo_direct"] and res["echo_plain_via_rh2"], res
    assert res["bound2"] and res["kinds2"] == ["CareofTestInit", "BindingUpdate"], res
    assert res["echo_direct2"], res
    assert res["forged_answered"] == 0 and res["still_bound_to_coa2"], res
    assert res["be_status"] == 1, res
    assert res["alive_after_junk"], res  # 300 malformed MH/HAO packets later it still answers
    assert res["dereg"] and res["kinds3"] == ["BindingUpdate"], res
    assert res["events"] == ["ro_bound", "ro_bound", "ro_dereg"], res
    events = [json.loads(line) for line in cnlog.splitlines() if line.startswith("{")]
    names = [e["ev"] for e in events]
    assert [e["coa"] for e in events if e["ev"] == "binding"] == [COA, COA2]
    assert "bu_refused" in names and "binding_deleted" in names
    refused = [e for e in events if e["ev"] == "bu_refused"][0]
    assert refused["reason"] == "bad authenticator" and refused["hoa"] == HOA
    # the RTT probe: echoes through the plain path before the binding, direct (RH2/HAO) after
    rtts = [e for e in events if e["ev"] == "rtt"]
    ways = {(e["out"], e["back"]) for e in rtts}
    assert ("tunnel", "tunnel") in ways and ("direct", "direct") in ways, rtts
    assert res["probe_plain"] >= 3 and res["probe_direct"] >= 3, res
    assert all(e["rtt_ms"] > 0 for e in rtts)
    assert res["icmp_param_problems"] == 0, res  # the CN's nft table silences them
    assert "roam6_cn" in ns.run("cn", ["nft", "list", "tables"]).stdout
    ns.stop(cn)
    assert "roam6_cn" not in ns.run("cn", ["nft", "list", "tables"]).stdout  # removed on exit
    st = json.loads(status.read_text())
    assert st["bindings"] == [] and st["stats"]["bu_refused"] == 1 and st["stats"]["echo_direct"] >= 2
