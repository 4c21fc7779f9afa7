# Run a board's main.py with the stand-ins in place of the built-in machine/network modules.
import sys

sys.path.insert(0, sys.argv[1])
import network
import machine_standin
sys.modules["machine"] = machine_standin
sys.modules["network"] = network
exec(open("main.py").read())
