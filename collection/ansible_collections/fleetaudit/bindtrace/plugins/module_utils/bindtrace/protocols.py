"""IP protocol numbers -> names, as IG's trace bind (Linux in.h; 0 is "IP")."""
PROTO_NAMES = {
    0: "IP", 1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 8: "EGP", 12: "PUP", 17: "UDP",
    22: "IDP", 29: "TP", 33: "DCCP", 41: "IPV6", 46: "RSVP", 47: "GRE", 50: "ESP", 51: "AH",
    58: "ICMPV6", 92: "MTP", 94: "BEETPH", 98: "ENCAP", 103: "PIM", 108: "COMP", 115: "L2TP",
    132: "SCTP", 136: "UDPLITE", 137: "MPLS", 143: "ETHERNET", 255: "RAW", 262: "MPTCP",
}


def proto_name(number):
    return PROTO_NAMES.get(number, "UNKNOWN")
