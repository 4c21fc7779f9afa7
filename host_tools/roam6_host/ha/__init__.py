"""The roam6 home agent (`roam6 ha --config FILE`).

cache.py    the binding cache, sans-IO: BU rules table (docs/PROTOCOL-NOTES.md §11), transitions, expiry,
            the hot path (learnt BU layouts, BA templates)
sa.py       MN-HA security associations with precomputed HMAC pads
config.py   ha.json and the keys file (docs/CONTRACTS.md §6), errors naming the field
driver.py   sockets (UDP 4191 v4/v6, packet/raw sockets for ip6), TUN data plane, routes and
            proxy ND, signals (TERM/INT stop cleanly, HUP reloads keys), JSON event log
tun.py, netlink.py   the TUN device and the few rtnetlink requests the data plane needs
bugen.py    BUs as an MN builds them (for tests and benchmarks; the HA never uses it)
livebench.py `roam6 bench ha --live`: the real process timed in namespaces
"""
