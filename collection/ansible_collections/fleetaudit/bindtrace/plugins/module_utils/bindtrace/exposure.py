"""How reachable a bound address is: loopback | address | wildcard, and over
which IP families. An AF_INET6 socket bound to :: with IPV6_V6ONLY off also
accepts IPv4 (as ::ffff:a.b.c.d), so it is a wildcard for both families; an
IPv4-mapped address is an IPv4 address."""
import ipaddress


def exposure(family, addr, v6only=None):
    """-> (kind, [families]). v6only None (not known, e.g. read from /proc/net)
    counts as off for ::, the kernel's default (net.ipv6.bindv6only=0): a
    wildcard that may be reachable over IPv4 is reported as such."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None, []
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    if ip.is_unspecified:
        if ip.version == 6 and family == 6 and not v6only:
            return "wildcard", [4, 6]
        return "wildcard", [ip.version]
    if ip.is_loopback:
        return "loopback", [ip.version]
    return "address", [ip.version]


def annotate(rec):
    """Set exposure / exposure_families on a bind or listener dict in place. A
    failed bind opened nothing: it is judged by what it asked for."""
    addr = rec.get("requested_addr") if rec.get("error") else rec.get("addr")
    kind, families = exposure(rec.get("family"), addr, rec.get("v6only"))
    rec["exposure"], rec["exposure_families"] = kind, families
    return rec
