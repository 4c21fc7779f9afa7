"""The virtual board's entry (MicroPython unix port): `micropython main.py CONFIG.json [options]`.

MICROPYPATH must hold .frozen, and the bundle (or firmware/ and boards/unix/, this board's link.py);
options are those of roam6.node.app (e.g. --coa 192.0.2.50 instead of the link adapter).
Start-up code is dropped before the node's code loads: a 64 KB heap holds only what runs.
"""
import sys

from roam6.node import app

rc, cfg, plan = app.setup(sys.argv[1:])
if cfg is not None:
    app.trim()
    del app
    from roam6.node.driver import MobileNode
    rc = MobileNode(cfg).start(plan)
sys.exit(rc)
