"""config.json's IPsec fields (docs/CONTRACTS.md §5; docs/ARCHITECTURE.md "IPsec"), checked only
for a config that says `"security": "ipsec"`, so an RFC 4285 node loads none of this.

  "security": "rfc4285" (default) | "ipsec"
  "psk":      hex, at least 16 bytes: the IKEv2 pre-shared key of this device (IDi = the NAI)
  "ipsec_data": true -> the payload tunnel as well (a second CHILD_SA, tunnel mode)
  "esp":      "aes-cbc" (default: AES-CBC + the HMAC) | "aes-gcm" (RFC 4106, roam6.ipsec.gcm)
  "more_hoas": [addr, ...] -> up to 3 further home addresses (node/ipsecmore.py; not with ipsec_data)
  "ipsec_pfs": true -> CHILD_SA rekeys with a KE (X25519); default false, as strongSwan's default
              ESP proposals (no D-H group); a rekey then costs the MN one more X25519 key pair + secret
Sets c.psk (bytes) and c.ipsec_data on the Config, and c.key None; the RFC 4285 "spi"/"key" are
then optional. (Loaded for any "security" field: "rfc4285" is checked here too.)
"""


def parse_config(c, raw, ConfigError):
    """The config's "security" fields onto c (config.parse_config calls it when "security" is
    there; named like it so no new name enters a board's qstr pool)."""
    sec = raw.get("security")
    if "more_hoas" in raw:        # further home addresses: node/ipsecmore.py checks them (unix only)
        try:
            from .ipsecmore import parse_config as more
        except ImportError:
            raise ConfigError("more_hoas", "needs \"security\": \"ipsec\" on the unix board")
        more(c, raw, ConfigError)
    if sec == "rfc4285":
        for field in ("spi", "key"):
            if field not in raw:
                raise ConfigError(field, "is missing (a field every RFC 4285 config needs)")
        return
    if sec != "ipsec":
        raise ConfigError("security", "must be \"rfc4285\" (the default) or \"ipsec\", got %r" % (sec,))
    v = raw.get("psk")
    try:
        psk = bytes.fromhex(v) if isinstance(v, str) else None
    except ValueError:
        psk = None
    if psk is None or len(psk) < 16:
        raise ConfigError("psk", "must be the IKEv2 pre-shared key as hex, at least 32 digits (16 bytes), "
                                 "for \"security\": \"ipsec\"")
    if "ipv4_hoa" in raw:
        raise ConfigError("ipv4_hoa", "is not offered with \"security\": \"ipsec\" yet (an RFC 5555 IPv4 home "
                                      "address needs RFC 4285 for now)")
    d = raw.get("ipsec_data", False)
    if not isinstance(d, bool):
        raise ConfigError("ipsec_data", "must be true or false")
    e = raw.get("esp", "aes-cbc")
    if e not in ("aes-cbc", "aes-gcm"):
        raise ConfigError("esp", "must be \"aes-cbc\" (the default) or \"aes-gcm\", got %r" % (e,))
    c.esp_gcm = e == "aes-gcm"
    if c.esp_gcm:
        try:
            __import__("roam6.ipsec.gcm")
        except ImportError:
            raise ConfigError("esp", "\"aes-gcm\" is not in this board's firmware (board.json excludes it)")
    pfs = raw.get("ipsec_pfs", False)
    if not isinstance(pfs, bool):
        raise ConfigError("ipsec_pfs", "must be true or false")
    c.pfs = pfs
    c.psk = psk
    c.ipsec_data = d
    c.key = None                  # no RFC 4285 key: what tells the driver to load ipsecglue.py
    c.timestamps = False          # the ESP sequence number is the replay protection (RFC 4877)
