"""The checked configuration object (filled by roam6.node.config, read by the driver).

It lives apart from the checker so that dropping the checker after start-up frees it: an
instance of a class defined in config.py would keep that whole module alive through its class.
"""


class Config:
    """Checked configuration. Addresses are raw bytes; None where the value is "bootstrap".
    "domain" is checked but not kept (the bootstrap reads it from `raw`): at 17 attributes an
    instance's attribute table is one size smaller on MicroPython (-48 bytes on 32-bit)."""

    def __init__(self, raw):
        self.raw = raw                      # the dict as read (the bootstrap sequencer wants it)
        self.nai = b""
        self.spi = 0
        self.key = b""
        self.hoa = None
        self.home_prefix = None             # (16 bytes, prefix length)
        self.ha = None
        self.ha_ipv4 = None
        self.bootstrap = ["static"]
        self.transports = ["udp4", "udp6", "ip6"]
        self.lifetime = 600
        self.timestamps = True
        self.state_file = "roam6.state"
        self.probe = None
        self.coa = None                     # static care-of address (text) until a link adapter
        self.iface = "wlan0"                # the board's interface (from main.py's --iface)
        self.ro = None                      # route optimisation policy (CONTRACTS.md §12)
