"""roam6 hardware-in-the-loop bench: namespaces with real daemons, board drivers, scenarios, reports."""
