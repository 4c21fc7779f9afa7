"""The virtual board's entry (MicroPython unix port): `micropython main.py CONFIG.json [options]`.

MICROPYPATH must hold firmware/ (the roam6 package) and boards/unix/ (this board's link.py);
options are those of roam6.node.app (e.g. --coa 192.0.2.50 until a link adapter is wanted).
"""
import sys

from roam6.node.app import main

sys.exit(main(sys.argv[1:]))
