"""The IKE SA between its exchanges, without the IKE code (docs/ARCHITECTURE.md "IPsec on the MN",
heap). Once the handshake is done and no exchange is under way, node/ipsecglue.py swaps its
`ikev2.Initiator` for a `Dormant` and drops the modules only IKE needs (ikev2, x25519): their
bytecode is most of an IPsec MN's heap. The Dormant holds the Initiator's attributes as they were
(`d`: keys, SPIs, message id, nonces, the ESP SAs) and answers what the steady path reads between
exchanges: the ESP SAs (`esp_in`, `esp_out`, `esp_in_old`, `data_in`, `data_out`, which only an
exchange changes), `state`, `spi_i`, `_pending`, and `get_timer()` (the next liveness check).
Anything else, an IKE datagram, a timer due, a verb, is for the Initiator: `wake` imports ikev2
again and rebuilds it from `d` (no __init__: nothing new is drawn, no message sent).
What only the handshake (or a request now answered) reads is not kept: HANDSHAKE_ONLY are None in
`d`; the sk entries for the AUTH payloads (pi, pr) go too. (A re-authentication is a new Initiator
with the config's PSK; a CHILD_SA rekey draws new nonces and derives from sk["d"].)
"""

# psk, IDi, the IKE_SA_INIT nonces, the last request (kept for retransmission only while it is
# awaited: a Dormant has none), the CHILD_SA's KEYMAT (kept for tests and tshark on the host)
HANDSHAKE_ONLY = ("psk", "idi", "ni", "nr", "_req", "keymat", "_cookie")


class Dormant:
    _pending = None

    def __init__(self, ike):
        d = self.d = dict(ike.__dict__)     # (MicroPython's __dict__ is a read-only copy)
        for k in HANDSHAKE_ONLY:
            if k in d:
                d[k] = None
        sk = d["sk"]
        if sk is not None and "pi" in sk:
            d["sk"] = {k: sk[k] for k in sk if k != "pi" and k != "pr"}
        self.esp_in, self.esp_out, self.esp_in_old = d["esp_in"], d["esp_out"], d["esp_in_old"]
        self.data_in, self.data_out = d["data_in"], d["data_out"]
        self.state, self.spi_i = d["state"], d["spi_i"]

    def get_timer(self):
        return self.d["_live_at"]

    def datagrams_to_send(self, now):
        return ()

    def next_event(self):
        return None


def wake(dormant):
    """The ikev2.Initiator the Dormant was made of (ikev2 imported again if it was dropped)."""
    from roam6.ipsec.ikev2 import Initiator
    ike = object.__new__(Initiator)
    for k, v in dormant.d.items():
        setattr(ike, k, v)
    return ike
