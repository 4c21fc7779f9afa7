# The Wi-Fi start-up and keeper the boards' main.py use (roam6/node/wifi.py, roam6.node.wlanlink.Keeper),
# driven step by step with the stand-in WLAN.
import sys
sys.path.insert(0, sys.argv[1])
import network
import machine_standin
sys.modules["machine"] = machine_standin
sys.modules["network"] = network
import micropython
from roam6.node import wifi

w = network.WLAN(network.STA_IF)
nets = [("apA", "pwA"), ("apB", "pwB")]
print("order", wifi.order(w, nets))
print("joined", wifi.join(w, nets, wait_ms=200), w.config("ssid"))
k = wifi.keep(w, nets, period_ms=50)
open("DROP", "w").close()
machine_standin.timers[0].callback(machine_standin.timers[0])  # the timer fires: schedules check()
for _ in range(3):
    micropython.schedule(lambda _a: None, None)  # run what is scheduled (the unix port runs it between bytecodes)
print("after drop", w.isconnected(), w.config("ssid"))
k.check()
print("calls", network.calls)
