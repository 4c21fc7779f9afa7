"""RFC 5176 Dynamic Authorization at the home agent: a Disconnect-Request from the AAA side ends
an NAI's binding at once (docs/CONTRACTS.md §14, field `aaa.dae_port`).

    radclient [HA]:3799 disconnect SECRET <<< 'User-Name = "board1@example.test"'

One non-blocking UDP socket (IPv6, v4-mapped too) in the HA's loop. Accepted only from the
configured RADIUS servers' addresses (plus `aaa.dae_clients`), with the shared secret's Request
Authenticator right (and the Message-Authenticator, when there is one). Then:
- a binding (or an SA from RADIUS) for User-Name exists: the MN gets a Binding Revocation
  Indication (RFC 5846, MH 16, signed like a BA; sent once), the binding ends (binding_removed,
  reason "disconnect": routes go, accounting Stop with Admin-Reset), the SA is forgotten so the
  device's next BU asks the server again (where the operator has revoked it: Reject -> 129);
  answer Disconnect-ACK;
- nothing for that NAI: Disconnect-NAK, Error-Cause 503 (Session-Context-Not-Found);
- no User-Name, or a CoA-Request: NAK 402 (Missing-Attribute) / CoA-NAK 406 (Unsupported-Extension).
Anything else (unknown client, bad authenticator, garbage) is logged once per cause and dropped.
A retransmitted request (same client, id and authenticator) gets the same answer again.
"""
import socket

from pyrad import packet as rp

from ..ha.loopsock import LoopSocket

ERROR_MISSING_ATTRIBUTE = 402
ERROR_UNSUPPORTED_EXTENSION = 406
ERROR_SESSION_NOT_FOUND = 503


class DisconnectListener(LoopSocket):
    def __init__(self, agent, port, clients, secret, log, dictionary):
        self.agent = agent
        self.port = port
        self.clients = set(clients)
        self.secret = secret
        self.log = log
        self.dict = dictionary
        self.sock = None
        self._answered = {}         # (host, id, authenticator) -> reply bytes (retransmissions)
        self.stats = {"disconnected": 0, "not_found": 0, "refused": 0}

    def open(self):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", self.port))
        s.setblocking(False)
        self.sock = s

    def _refuse(self, host, why):
        self.stats["refused"] += 1
        self.log.once(("dae_refused", host, why[:40]), "dae_refused", client=host, reason=why)

    def on_readable(self):
        for _ in range(64):
            try:
                raw, addr = self.sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            host = addr[0][7:] if addr[0].startswith("::ffff:") else addr[0]
            if host not in self.clients:
                self._refuse(host, "not one of the AAA servers (aaa.servers / aaa.dae_clients)")
                continue
            if len(raw) < 20:
                self._refuse(host, "shorter than a RADIUS header")
                continue
            key = (host, raw[1], raw[4:20])
            again = self._answered.get(key)
            if again is not None:
                self._send(again, addr)
                continue
            try:
                req = rp.CoAPacket(packet=raw, secret=self.secret, dict=self.dict)
                ok = req.VerifyCoARequest()
                if ok and req.message_authenticator:
                    ok = req.verify_message_authenticator()
                names = req.get("User-Name") or []
            except Exception as exc:          # pyrad: PacketError, KeyError, ... on garbage
                self._refuse(host, "undecodable: %s: %s" % (type(exc).__name__, exc))
                continue
            if not ok:
                self._refuse(host, "Request Authenticator or Message-Authenticator wrong (shared secret?)")
                continue
            reply = req.CreateReply()
            if req.code == rp.CoARequest:
                reply.code = rp.CoANAK
                reply["Error-Cause"] = ERROR_UNSUPPORTED_EXTENSION
            elif req.code != rp.DisconnectRequest:
                self._refuse(host, "code %d is not a Disconnect-Request" % req.code)
                continue
            elif len(names) != 1:
                reply.code = rp.DisconnectNAK
                reply["Error-Cause"] = ERROR_MISSING_ATTRIBUTE
            elif self.agent.disconnect(names[0].encode()):
                self.stats["disconnected"] += 1
                self.log("dae_disconnect", nai=names[0], client=host)
            else:
                self.stats["not_found"] += 1
                reply.code = rp.DisconnectNAK
                reply["Error-Cause"] = ERROR_SESSION_NOT_FOUND
                self.log("dae_not_found", nai=names[0], client=host)
            out = reply.ReplyPacket()
            if len(self._answered) > 256:
                self._answered.clear()
            self._answered[key] = out
            self._send(out, addr)

    def _send(self, data, addr):
        try:
            self.sock.sendto(data, addr)
        except OSError as exc:
            self.log.once(("dae_send", exc.errno), "send_error", peer=addr[0], reason=exc.strerror)
