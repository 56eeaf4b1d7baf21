"""Fleet outliers: within each inventory group, listeners that only a few of
the group's traced hosts have ("1 of 200 web hosts listens on 6379").

A listener is compared across hosts by (proto, port): addresses differ from
host to host (each binds its own IP) and a restart changes the pid. A group
needs at least MIN_HOSTS traced hosts before anything in it can be odd.
"""
from .columns import fields
from .model import BindReportError

DEFAULT_THRESHOLD = 0.2
MIN_HOSTS = 3
IGNORED_GROUPS = ("all", "ungrouped")


def parse_threshold(value):
    """A share of the group's hosts, 0 < t < 0.5: "0.2", "20%" or a number."""
    if value is None or value == "":
        return DEFAULT_THRESHOLD
    text = str(value).strip()
    try:
        t = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        t = None
    if t is None or not 0 < t < 0.5:
        raise BindReportError("outlier threshold %r is not a share of a group's hosts between 0 and 0.5 "
                              "(e.g. 0.2 or 20%%): a listener on at most that share of a group's hosts "
                              "is flagged" % (value,))
    return t


def set_groups(model, groups):
    """groups: {host: [group, ...]} (inventory membership) -> each host's
    sorted "groups"; hosts not named keep what they have (an earlier
    report.json carries its hosts' groups)."""
    for h in model["hosts"]:
        names = groups.get(h["name"])
        if names is not None:
            h["groups"] = sorted({str(g) for g in names if g not in IGNORED_GROUPS})
        elif not isinstance(h.get("groups"), list):
            h["groups"] = []
    return model


def _ports(facts):
    out = {}
    for port, proto, comm in fields(facts.get("listeners") or [], "port", "proto", "comm"):
        if isinstance(port, int) and port:
            out.setdefault((str(proto), port), set()).add(str(comm or ""))
    return out


def find_outliers(model, threshold=DEFAULT_THRESHOLD, min_hosts=MIN_HOSTS):
    """Flag rare listeners per group: summary["outliers"] and each host's
    "outliers" list. Returns the number of (group, listener, host) flags."""
    members = {}
    traced = {}
    for h in model["hosts"]:
        h["outliers"] = []
        if h["status"] != "ok" or not isinstance(h.get("facts"), dict):
            continue
        traced[h["name"]] = (h, _ports(h["facts"]))
        for g in h.get("groups") or []:
            members.setdefault(g, []).append(h["name"])
    groups, flags = [], 0
    for group in sorted(members):
        names = members[group]
        if len(names) < min_hosts:
            continue
        present = {}
        for name in names:
            for key, comms in traced[name][1].items():
                entry = present.setdefault(key, {"hosts": [], "comms": set()})
                entry["hosts"].append(name)
                entry["comms"] |= comms
        limit = threshold * len(names)
        rare = []
        for (proto, port), entry in sorted(present.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            if len(entry["hosts"]) > limit:
                continue
            rare.append({"proto": proto, "port": port, "present": len(entry["hosts"]), "of": len(names),
                         "hosts": sorted(entry["hosts"]), "comms": sorted(c for c in entry["comms"] if c)})
            for name in entry["hosts"]:
                traced[name][0]["outliers"].append({"group": group, "proto": proto, "port": port,
                                                    "present": len(entry["hosts"]), "of": len(names)})
                flags += 1
        groups.append({"group": group, "hosts": len(names), "outliers": rare})
    model["summary"]["outliers"] = {
        "threshold": threshold, "min_hosts": min_hosts, "flags": flags,
        "hosts": sorted(n for n, (h, _groups) in traced.items() if h["outliers"]),
        "groups": groups,
    }
    return flags
