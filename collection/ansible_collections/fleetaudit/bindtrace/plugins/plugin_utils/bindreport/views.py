"""Table rows derived from the model, shared by every renderer.

Rows keep raw values; each renderer escapes for its own format.
"""
# OPTIONAL_COLUMNS: the table reads it here
from .fields import CELLS, COLUMNS, OPTIONAL_COLUMNS  # noqa: F401 pylint: disable=unused-import

# (title, row key); the seed's columns of `ig trace bind` plus HOST and VERDICT.
K8S_COLUMNS = (("K8S.NODE", "k8s_node"), ("K8S.NAMESPACE", "k8s_namespace"),
               ("K8S.PODNAME", "k8s_pod"))
CONTAINER_COLUMN = ("K8S.CONTAINERNAME", "k8s_container")
SEED_COLUMNS = COLUMNS  # PID COMM PROTO ADDR PORT OPTS IF, from the record's fields
LISTENER_COLUMNS = (("PROTO", "proto"), ("ADDR", "addr"), ("PORT", "port"), ("STATE", "state"),
                    ("PID", "pid"), ("COMM", "comm"), ("USER", "user"))
# shown when some listener has a value (facts from hosts running this version)
LISTENER_OPTIONAL = (("EXPOSURE", "exposure"), ("LISTENED", "listened"), ("SEEN", "seen"),
                     ("EXE", "exe"), ("UNIT", "unit"), ("PACKAGE", "package"), ("RULE", "rule"))
FAILING = ("unexpected", "expired")


def _identity(record):
    """k8s and container identity of one bind/listener, as IG shows it: the
    container name also fills K8S.CONTAINERNAME outside Kubernetes."""
    k8s = record.get("k8s") or {}
    container = record.get("container") or {}
    return {
        "k8s_node": k8s.get("node"), "k8s_namespace": k8s.get("namespace"),
        "k8s_pod": k8s.get("pod"),
        "k8s_container": k8s.get("container") or container.get("name"),
    }


def _verdict(record):
    return record.get("verdict") or "-"


def _sort_key(row):
    return (row["host"], row["port"] if isinstance(row["port"], int) else -1, str(row["proto"]),
            str(row["addr"]), row["pid"] if isinstance(row["pid"], int) else -1, str(row["comm"]))


def listener_rows(host):
    rows = []
    for l in (host["facts"] or {}).get("listeners") or []:
        row = {"host": host["name"], "verdict": _verdict(l), "proto": l.get("proto"),
               "addr": l.get("addr"), "port": l.get("port"), "state": l.get("state"),
               "pid": l.get("pid"), "comm": l.get("comm"), "user": l.get("user"),
               "unexpected": l.get("verdict") in FAILING,
               "exposure": _exposure(l), "listened": CELLS["listened"](l), "seen": l.get("seen"),
               "exe": l.get("exe"), "unit": CELLS["unit"](l), "package": l.get("package"),
               "rule": _rule(l)}
        row.update(_identity(l))
        rows.append(row)
    rows.sort(key=_sort_key)
    return rows


def identity_columns(rows):
    """K8S.* columns only when some row has them (the container name column
    also when only plain containers are present)."""
    cols = []
    if any(r["k8s_node"] or r["k8s_namespace"] or r["k8s_pod"] for r in rows):
        cols.extend(K8S_COLUMNS)
    if any(r["k8s_container"] for r in rows):
        cols.append(CONTAINER_COLUMN)
    return cols


def listener_columns(rows):
    return ([("VERDICT", "verdict")] + identity_columns(rows) + list(LISTENER_COLUMNS) +
            [c for c in LISTENER_OPTIONAL if any(r.get(c[1]) for r in rows)])


def _exposure(rec):
    """'wildcard v4+v6', 'loopback v4', or None."""
    if not rec.get("exposure"):
        return None
    fams = rec.get("exposure_families") or []
    return "%s %s" % (rec["exposure"], "+".join("v%s" % f for f in fams)) if fams else (
        rec["exposure"])


def _rule(rec):
    """The deciding rule, for people: 'rule 1 "web" (owner alice, ticket OPS-1, expires ...)'."""
    about = rec.get("rule")
    if not isinstance(about, dict):
        return None
    text = "rule %s" % about.get("index")
    if about.get("name"):
        text += ' "%s"' % about["name"]
    extra = ["%s %s" % (k, about[k]) for k in ("owner", "ticket", "expires") if about.get(k)]
    return text + (" (%s)" % ", ".join(extra) if extra else "")


def not_traced(model):
    """Hosts without a trace (or whose task failed), with their reasons."""
    return [h for h in model["hosts"] if h["status"] != "ok"]


def hooks_used(model, names=5):
    """[(hook, host count, first host names)]: which kernel hook traced each host
    (the facts' host.hook; '?' from a host that did not say), most used first."""
    by = {}
    for host in model["hosts"]:
        facts = host.get("facts") if host["status"] == "ok" else None
        if not facts:
            continue
        hook = (facts.get("host") or {}).get("hook")
        by.setdefault(hook if isinstance(hook, str) and hook else "?", []).append(host["name"])
    return [(hook, len(hosts), hosts[:names])
            for hook, hosts in sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
