"""ha.json's "security" and the keys file's IPsec entries (issue #19, docs/PROTOCOL-NOTES.md §9.6).

ha.json: `"security": ["rfc4285", "ipsec"]` lists what the HA accepts (default ["rfc4285"]).
Keys file: an entry `{"nai": ..., "security": "ipsec", "psk": "<hex, >= 16 bytes>", "hoa": ...}`
is an IPsec device: IKEv2 with that PSK (IDi = the NAI), its BUs only inside ESP, the HoA handed
out through the configuration payload. Such entries carry no "spi"/"key" (the SA authenticates,
RFC 4877). `"more_hoas": [...]` (optional, at most MAX_MORE_HOAS): further home addresses of the
same device (RFC 4877 §4.4: one IKE SA, a transport-mode MH CHILD_SA per HoA, which the MN asks for
with CREATE_CHILD_SA, TSi = that HoA; each HoA its own binding). Every mistake is a one-line
UserError naming the file, the entry and the field.
"""
from ..errors import UserError

SECURITY = ("rfc4285", "ipsec")
MAX_MORE_HOAS = 3


class IpsecPeer:
    """One IPsec device of the keys file."""

    def __init__(self, nai, psk, hoa, more=()):
        self.nai = nai          # bytes
        self.psk = psk          # bytes, >= 16
        self.hoa = hoa          # 16 bytes: the primary HoA (the configuration payload's)
        self.hoas = [hoa] + list(more)   # every HoA of the device, the primary first


def parse_security(value, source):
    """ha.json's "security": a non-empty list of "rfc4285" / "ipsec" (None: the default)."""
    if value is None:
        return ["rfc4285"]
    if (not isinstance(value, list) or not value or any(v not in SECURITY for v in value)
            or len(set(value)) != len(value)):
        raise UserError("%s: field 'security' must be a non-empty list of %s, got %r" % (source, " / ".join(SECURITY),
                                                                                         value),
                        hint="e.g. [\"rfc4285\", \"ipsec\"]")
    return list(value)


def entry_security(e, where):
    """The "security" of one keys-file entry (validated): "rfc4285" (default) or "ipsec"."""
    s = e.get("security", "rfc4285")
    if s not in SECURITY:
        raise UserError("%s: field 'security' must be \"rfc4285\" or \"ipsec\", got %r" % (where, s),
                        hint="leave it out for RFC 4285")
    for field in ("psk", "more_hoas"):
        if s == "rfc4285" and field in e:
            raise UserError("%s: field %r belongs to an IPsec entry (\"security\": \"ipsec\")" % (where, field),
                            hint="an RFC 4285 entry has spi and key")
    return s


def parse_ipsec_entry(e, where, home_prefix, ip6):
    """An IpsecPeer from a keys-file entry that says "security": "ipsec"."""
    for field in ("spi", "key", "ipv4_hoa"):
        if field in e:
            raise UserError("%s: field %r is not used by an IPsec entry" % (where, field),
                            hint="an IPsec entry has nai, security, psk and hoa (IKEv2 keys the SA)")
    for field in ("nai", "psk", "hoa"):
        if e.get(field) is None:
            raise UserError("%s: field %r is missing" % (where, field),
                            hint="an IPsec entry needs nai, psk (hex, >= 16 bytes) and hoa")
    nai = e["nai"]
    if not isinstance(nai, str) or not nai or len(nai.encode()) > 250 or any(ch <= " " for ch in nai):
        raise UserError("%s: field 'nai' must be a non-empty NAI like \"board1@example.test\"" % where,
                        hint="fix 'nai'")
    try:
        psk = bytes.fromhex(e["psk"])
    except (ValueError, TypeError):
        psk = b""
    if not 16 <= len(psk) <= 128:
        raise UserError("%s: field 'psk' must be 32 to 256 hex digits (16 to 128 bytes)" % where,
                        hint="e.g. python3 -c 'import secrets; print(secrets.token_hex(32))'")
    a = ip6(e["hoa"], "hoa", where)
    if home_prefix is not None and a not in home_prefix:
        raise UserError("%s: field 'hoa' %s is outside the home prefix %s" % (where, a, home_prefix),
                        hint="fix 'hoa' or 'home_prefix'")
    more = e.get("more_hoas", [])
    if not isinstance(more, list) or len(more) > MAX_MORE_HOAS:
        raise UserError("%s: field 'more_hoas' must be a list of at most %d home addresses" % (where, MAX_MORE_HOAS),
                        hint="e.g. [\"2001:db8:aa::302\"]")
    extra = []
    for text in more:
        b = ip6(text, "more_hoas", where)
        if home_prefix is not None and b not in home_prefix:
            raise UserError("%s: field 'more_hoas' %s is outside the home prefix %s" % (where, b, home_prefix),
                            hint="fix 'more_hoas' or 'home_prefix'")
        if b.packed == a.packed or b.packed in extra:
            raise UserError("%s: field 'more_hoas' repeats %s" % (where, b), hint="each HoA once")
        extra.append(b.packed)
    return IpsecPeer(nai.encode(), psk, a.packed, extra)


def check_peers(peers, sas, security, source):
    """The keys file's kinds against what ha.json accepts; no NAI or HoA twice across both kinds."""
    if peers and "ipsec" not in security:
        raise UserError("%s: the keys file has IPsec entries (%s) but field 'security' does not list \"ipsec\""
                        % (source, peers[0].nai.decode()), hint="add \"ipsec\" to 'security' or remove those entries")
    if sas and "rfc4285" not in security:
        raise UserError("%s: the keys file has RFC 4285 entries (%s) but field 'security' does not list \"rfc4285\""
                        % (source, sas[0].nai.decode()), hint="add \"rfc4285\" to 'security' or remove those entries")
    nais = {s.nai for s in sas}
    hoas = {s.hoa for s in sas if s.hoa is not None}
    for p in peers:
        if p.nai in nais:
            raise UserError("%s: NAI %s is in the keys file twice" % (source, p.nai.decode()),
                            hint="one entry per device: either RFC 4285 or IPsec")
        for h in p.hoas:
            if h in hoas:
                raise UserError("%s: the HoA of %s is another entry's too" % (source, p.nai.decode()),
                                hint="every device needs its own 'hoa' (and 'more_hoas')")
            hoas.add(h)
        nais.add(p.nai)
