"""The IPsec MN's interned names stay under the sixth qstr pool (docs/ARCHITECTURE.md "IPsec on
the MN"): the unix port's pools hold 20+40+80+160+320 = 620 dynamic qstrs, the 621st allocates a
pool of 640 (about 5 KB of a 32-bit heap). The unix bundle's modules an IPsec MN loads by its
registration, imported on the real MicroPython unix port, then micropython.qstr_info()."""
import os
import re
import subprocess

from roam6_host import build
from roam6_host.paths import micropython_exe

# (ikev2 is loaded for the handshake only, then dropped: its qstrs stay interned)
LOADS = ("roam6.node.app", "roam6.node.config", "roam6.node.ipsecconf", "roam6.node.driver", "roam6.node.ipsecglue",
         "roam6.ipsec.ikev2")
POOLS_OF_FIVE = 620


def test_ipsec_mn_modules_stay_within_five_qstr_pools(tmp_path):
    out = tmp_path / "bundle"
    build.build_bundle("unix", out_dir=str(out), natmod=False, log=lambda *a, **k: None)
    script = tmp_path / "q.py"
    script.write_text("import micropython\n" + "".join("import %s\n" % m for m in LOADS) + "micropython.qstr_info()\n")
    p = subprocess.run([micropython_exe(), str(script)], cwd=str(out), capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MICROPYPATH=".frozen:."))
    m = re.search(r"n_pool=(\d+), n_qstr=(\d+)", p.stdout)
    assert m, p.stdout + p.stderr
    pools, qstrs = int(m.group(1)), int(m.group(2))
    # 581 now with ikev2 (was 640 with the sixth pool); the registration itself interns a few more: keep a margin
    assert qstrs <= POOLS_OF_FIVE - 10, "%d qstrs: the IPsec MN gets a sixth qstr pool (+5 KB on 32-bit)" % qstrs
    assert pools <= 5, p.stdout
