"""IKEv2's numbers by their RFC 7296 §3 names, for host tools and tests (`ikev2.PL_SA` reaches
here through ikev2's module __getattr__). The MN never imports this module: ikev2 holds the same
values as `_X = const(N)`, folded by mpy-cross, so these names are not interned on a board
(tests/firmware/test_ipsec_ikev2.py checks the two agree).
"""
IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL = 34, 35, 36, 37
PL_SA, PL_KE, PL_IDI, PL_IDR, PL_AUTH, PL_NONCE, PL_NOTIFY, PL_DELETE = 33, 34, 35, 36, 39, 40, 41, 42
PL_TSI, PL_TSR, PL_SK, PL_CP = 44, 45, 46, 47
CFG_REQUEST, CFG_REPLY, INTERNAL_IP6_ADDRESS = 1, 2, 8
N_INVALID_SYNTAX, N_NO_PROPOSAL_CHOSEN, N_INVALID_KE, N_AUTH_FAILED = 7, 14, 17, 24
N_TS_UNACCEPTABLE = 38
N_NAT_D_SRC, N_NAT_D_DST, N_COOKIE, N_USE_TRANSPORT_MODE = 16388, 16389, 16390, 16391
N_REKEY_SA = 16393
F_I, F_R = 0x08, 0x20
GROUP_CURVE25519 = 31
ID_RFC822_ADDR, ID_FQDN, AUTH_PSK = 3, 2, 2
TS_IPV4, TS_IPV6 = 7, 8
ENCR_AES_CBC = 12
ENCR_AES_GCM_16 = 20
MAX_DATAGRAM = 3000
KNOWN = (33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48)
