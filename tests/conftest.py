import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# firmware tests import their helpers as top-level modules (the MicroPython runner does the same)
sys.path.insert(0, os.path.join(ROOT, "tests", "firmware"))
