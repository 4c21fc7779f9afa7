"""The roam6 home agent: binding cache (sans-IO, cache.py), MN-HA SAs (sa.py), configuration and
keys file (config.py), the I/O driver with its TUN data plane (driver.py, tun.py, netlink.py)."""
