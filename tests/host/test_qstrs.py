"""The MN's interned names (docs/ARCHITECTURE.md "Heap", "IPsec on the MN"). Every name in a loaded
.mpy (identifiers, attribute and keyword names, strings of up to 10 characters, one file path per
module) is a qstr on the heap for good. The unix port's dynamic pools hold 20, 40, 80, 160, 320,
640... qstrs: four hold 300 (the 301st allocates a fifth pool of 320, about 2.2 KB of a 32-bit heap),
five hold 620 (the 621st a sixth of 640, about 5 KB). The unix bundle's modules an MN loads by its
registration are imported on the real MicroPython unix port, then micropython.qstr_info() counts.
"""
import os
import re
import subprocess

import pytest

from roam6_host import build
from roam6_host.paths import micropython_exe

# the base MN (issue 15: the IPv6-only configuration must not grow): IPv6 HoA, udp4, RFC 4285, static CoA
BASE_LOADS = ("roam6.node.app", "roam6.node.config", "roam6.crypto", "roam6.wire.checksum", "roam6.node.driver")
# what these imports intern now; the registration itself adds a few (asyncio's and the transport's
# names at run time). Lower it as names go; never raise it.
BASE_CEILING = 292
# the IPsec MN (ikev2 is loaded for the handshake only, then dropped: its qstrs stay interned)
IPSEC_LOADS = ("roam6.node.app", "roam6.node.config", "roam6.node.ipsecconf", "roam6.node.driver",
               "roam6.node.ipsecglue", "roam6.ipsec.ikev2")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("qstrs") / "bundle"
    build.build_bundle("unix", out_dir=str(out), natmod=False, log=lambda *a, **k: None)
    return out


def _qstr_info(bundle, loads):
    """(pools, qstrs) after importing loads on the real MicroPython unix port."""
    script = bundle / "q.py"
    script.write_text("import micropython\n" + "".join("import %s\n" % m for m in loads) + "micropython.qstr_info()\n")
    p = subprocess.run([micropython_exe(), str(script)], cwd=str(bundle), capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MICROPYPATH=".frozen:."))
    m = re.search(r"n_pool=(\d+), n_qstr=(\d+)", p.stdout)
    assert m, p.stdout + p.stderr
    return int(m.group(1)), int(m.group(2))


def test_base_mn_modules_qstrs_do_not_grow(bundle):
    pools, qstrs = _qstr_info(bundle, BASE_LOADS)
    assert qstrs <= BASE_CEILING, "%d qstrs: the base MN's interned names grew (heap, issue 15)" % qstrs
    # four pools, with room for the few names the registration and the bench's run add (290 at
    # registration on the 32-bit runtime now)
    assert pools <= 4 and qstrs <= 300 - 8, (pools, qstrs)


def test_ipsec_mn_modules_stay_within_five_qstr_pools(bundle):
    pools, qstrs = _qstr_info(bundle, IPSEC_LOADS)
    # 581 now with ikev2 (was 640 with the sixth pool); the registration itself interns a few more: keep a margin
    assert qstrs <= 620 - 10, "%d qstrs: the IPsec MN gets a sixth qstr pool (+5 KB on 32-bit)" % qstrs
    assert pools <= 5, (pools, qstrs)
