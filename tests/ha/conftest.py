import os
import sys

# the HA tests share ha_helpers.py as a top-level module (prefixed: no clash with other dirs)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
