import os
import sys

# the HA tests share helpers.py as a top-level module
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
