"""`roam6 bench dataplane` pushes packets both ways through the real HA's TUN path over udp4 and
ip6 (and the kernel's forwarding as the anchor) in its own namespaces; run tiny here (the figures
are README's, measured with the command; asserted: every path carries packets, the HA's CPU is
counted, the namespaces are gone, bad options get a clear error)."""
import argparse
import json
import os
import subprocess
import sys

import pytest

from roam6_host.bench_dataplane import _parse
from roam6_host.errors import UserError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root (make test runs as root)")


def test_dataplane_bench_carries_packets_on_every_path_and_cleans_up():
    p = subprocess.run([sys.executable, "-m", "roam6_host", "bench", "dataplane", "--seconds", "0.1",
                        "--sizes", "1400", "--prefix", "r6dt"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    got = {(c["transport"], c["direction"]): c for c in d["cases"]}
    assert set(got) == {(t, di) for t in ("udp4", "ip6", "kernel") for di in ("down", "up")}
    for (t, _di), c in got.items():
        assert c["size"] == 1400 and c["sent"] > 100 and c["received"] > 0.05 * c["sent"], c
        assert c["received"] <= c["sent"] + 50, c          # the sinks' links carry nothing else to speak of
        if t == "kernel":
            assert c["ha_cpu_percent"] is None
        else:
            assert c["ha_cpu_percent"] > 0 and c["pps_per_ha_core"] >= c["pps"], c
    assert set(d["ha_mbit_s_at_largest_size"]) == {"udp4_down", "udp4_up", "ip6_down", "ip6_up"}
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert d["namespaces"].startswith("r6dt") and d["namespaces"][:-1] not in left


def test_dataplane_bench_refuses_bad_options():
    for bad, words in (({"sizes": "20"}, "--sizes"), ({"transports": "udp9"}, "unknown 'udp9'"),
                       ({"seconds": 0}, "--seconds"), ({"sizes": "64,x"}, "--sizes"),
                       ({"directions": "sideways"}, "unknown 'sideways'")):
        args = dict(seconds=1.0, sizes="64,1400", transports="udp4,ip6,kernel", directions="down,up")
        args.update(bad)
        with pytest.raises(UserError, match=words):
            _parse(argparse.Namespace(**args))
