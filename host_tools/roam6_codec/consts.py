"""Mobile IPv6 numbers (RFC 6275 and extensions; docs/PROTOCOL-NOTES.md §1-6)."""
from roam6.compat import const

# IPv6 next header values
NH_HOPOPT = const(0)
NH_IPV4 = const(4)
NH_TCP = const(6)
NH_UDP = const(17)
NH_IPV6 = const(41)
NH_ROUTING = const(43)
NH_FRAGMENT = const(44)
NH_ESP = const(50)
NH_AH = const(51)
NH_ICMPV6 = const(58)
NH_NONE = const(59)
NH_DSTOPTS = const(60)
NH_MH = const(135)

OPT_HAO = const(0xC9)  # Home Address destination option
DSMIP_PORT = const(4191)  # RFC 5555 UDP port of the HA

# MH types
MH_BRR = const(0)
MH_HOTI = const(1)
MH_COTI = const(2)
MH_HOT = const(3)
MH_COT = const(4)
MH_BU = const(5)
MH_BA = const(6)
MH_BE = const(7)
MH_EXPERIMENTAL = const(11)
MH_HA_SWITCH = const(12)
MH_HEARTBEAT = const(13)
MH_REVOCATION = const(16)

# mobility option types
MO_PAD1 = const(0)
MO_PADN = const(1)
MO_BRA = const(2)
MO_ALT_COA = const(3)
MO_NONCE_INDICES = const(4)
MO_BAD = const(5)
MO_MNP = const(6)
MO_MN_ID = const(8)
MO_AUTH = const(9)
MO_REPLAY = const(10)
MO_DNS_UPDATE = const(17)
MO_EXPERIMENTAL = const(18)
MO_VENDOR = const(19)
MO_RESTART_COUNTER = const(28)
MO_IPV4_HOA = const(29)
MO_IPV4_ACK = const(30)
MO_NAT_DETECTION = const(31)
MO_IPV4_COA = const(32)

# BU flags (16-bit word at MH offset 8)
BU_A = const(0x8000)
BU_H = const(0x4000)
BU_L = const(0x2000)
BU_K = const(0x1000)
BU_M = const(0x0800)
BU_R = const(0x0400)
BU_P = const(0x0200)
BU_F = const(0x0100)
BU_T = const(0x0080)
BU_B = const(0x0040)

# BA flags (byte at MH offset 7)
BA_K = const(0x80)
BA_R = const(0x40)
BA_P = const(0x20)
BA_T = const(0x10)
BA_B = const(0x08)

# Heartbeat flags (byte at MH offset 7), Binding Revocation flags (16-bit word at MH offset 10)
HB_U = const(0x02)
HB_R = const(0x01)
BR_P = const(0x8000)  # P V G order as in docs/PROTOCOL-NOTES.md §5
BR_V = const(0x4000)
BR_G = const(0x2000)
BR_INDICATION = const(1)
BR_ACK = const(2)

# NAT Detection option flag, DNS Update option flag, MN-ID subtype, MobilityAuth subtypes
NAT_F = const(0x8000)
DNS_R = const(0x80)
MNID_NAI = const(1)
AUTH_MN_HA = const(1)
AUTH_MN_AAA = const(2)

# BA status
BA_ACCEPTED = const(0)
BA_ACCEPTED_PREFIX_DISC = const(1)
BA_UNSPECIFIED = const(128)
BA_PROHIBITED = const(129)
BA_INSUFFICIENT = const(130)
BA_HOME_REG_NOT_SUPPORTED = const(131)
BA_NOT_HOME_SUBNET = const(132)
BA_NOT_HA_FOR_MN = const(133)
BA_DAD_FAILED = const(134)
BA_SEQ_OUT_OF_WINDOW = const(135)
BA_EXPIRED_HOME_NONCE = const(136)
BA_EXPIRED_COA_NONCE = const(137)
BA_EXPIRED_NONCES = const(138)
BA_REG_TYPE_CHANGE = const(139)
BA_ID_MISMATCH = const(144)  # RFC 4285 MIPV6-ID-MISMATCH
BA_MESG_ID_REQD = const(145)  # RFC 4285 MIPV6-MESG-ID-REQD
BA_AUTH_FAIL = const(146)  # RFC 4285 MIPV6-AUTH-FAIL
BA_INVALID_COA = const(174)

# Binding Error status
BE_UNKNOWN_BINDING = const(1)
BE_UNKNOWN_MH_TYPE = const(2)

# IPv4 Address Acknowledgement status (RFC 5555)
V4ACK_SUCCESS = const(0)
V4ACK_UNSPECIFIED = const(128)
V4ACK_PROHIBITED = const(129)
V4ACK_INCORRECT_HOA = const(130)
V4ACK_INVALID_ADDR = const(131)
V4ACK_NO_DYNAMIC = const(132)
V4ACK_PREFIX_UNAUTHORIZED = const(133)

# ICMPv6 types
ICMP6_ECHO_REQUEST = const(128)
ICMP6_ECHO_REPLY = const(129)
ICMP6_RS = const(133)
ICMP6_RA = const(134)
ICMP6_DHAAD_REQUEST = const(144)
ICMP6_DHAAD_REPLY = const(145)
ICMP6_MPS = const(146)
ICMP6_MPA = const(147)
