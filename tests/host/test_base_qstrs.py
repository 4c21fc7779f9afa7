"""The base MN's interned names (issue 15: the IPv6-only configuration must not grow; issue 12's
30 KB aim): IPv6 HoA, udp4, RFC 4285, static CoA. Every name in a loaded .mpy (identifiers,
attribute and keyword names, strings of up to 10 characters, one file path per module) is a qstr
on the heap for good. The unix port's dynamic pools hold 20+40+80+160 = 300 qstrs, the 301st
allocates a fifth pool of 320 (about 2.2 KB of a 32-bit heap). The unix bundle's modules a base MN
loads by its registration, imported on the real MicroPython unix port, then micropython.qstr_info()
(the method of test_ipsec_qstrs.py)."""
import os
import re
import subprocess

from roam6_host import build
from roam6_host.paths import micropython_exe

LOADS = ("roam6.node.app", "roam6.node.config", "roam6.crypto", "roam6.wire.checksum", "roam6.node.driver")
POOLS_OF_FOUR = 300
# what these imports intern now (see docs/ARCHITECTURE.md "Heap"); the registration itself adds a
# few (asyncio's and the transport's names at run time). Lower it as names go; never raise it.
CEILING = 292


def test_base_mn_modules_qstrs_do_not_grow(tmp_path):
    out = tmp_path / "bundle"
    build.build_bundle("unix", out_dir=str(out), natmod=False, log=lambda *a, **k: None)
    script = tmp_path / "q.py"
    script.write_text("import micropython\n" + "".join("import %s\n" % m for m in LOADS) + "micropython.qstr_info()\n")
    p = subprocess.run([micropython_exe(), str(script)], cwd=str(out), capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MICROPYPATH=".frozen:."))
    m = re.search(r"n_pool=(\d+), n_qstr=(\d+)", p.stdout)
    assert m, p.stdout + p.stderr
    pools, qstrs = int(m.group(1)), int(m.group(2))
    assert qstrs <= CEILING, "%d qstrs: the base MN's interned names grew (heap, issue 15)" % qstrs
    # four pools (the fifth is ~2.3 KB of a 32-bit heap), with room for the few names the
    # registration and the bench's run add (290 at registration on the 32-bit runtime now)
    assert pools <= 4 and qstrs <= POOLS_OF_FOUR - 8, p.stdout
