"""The virtual board's entry (MicroPython unix port): `micropython main.py CONFIG.json [options]`.

MICROPYPATH must hold firmware/ (the roam6 package) and boards/unix/ (this board's link.py);
options are those of roam6.node.app (e.g. --coa 192.0.2.50 instead of the link adapter).
Start-up code is dropped before the node runs, to leave the 64 KB heap to what runs.
"""
import sys

from roam6.node import app

rc, node, plan = app.setup(sys.argv[1:])
if node is not None:
    app.trim()
    del app
    rc = node.start(plan)
sys.exit(rc)
