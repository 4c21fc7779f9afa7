"""IPsec in user space for the MN: X25519, the IKEv2 PRFs, ESP (RFC 4303) and an IKEv2 initiator
(RFC 7296). Imported only by boards configured for IPsec (a board that does not use it pays nothing).
Layouts and constants: docs/PROTOCOL-NOTES.md §9."""
