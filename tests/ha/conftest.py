import os
import sys

# the HA tests share ha_helpers.py and ha_nsutil.py as top-level modules (prefixed: no clash with other dirs)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
