"""IPsec on the host side: drivers for the MN's sans-IO IKEv2 initiator (roam6.ipsec) over real
UDP sockets, and a private strongSwan (charon) in a network namespace as the independent peer.
The HA's responder will live here too (not yet: docs/ARCHITECTURE.md "IPsec")."""
