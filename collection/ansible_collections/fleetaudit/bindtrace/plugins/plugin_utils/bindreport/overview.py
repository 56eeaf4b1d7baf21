"""The fleet at a glance, for every format: headline numbers, the hosts that
need attention (loudest first), a host x port matrix per inventory group and
the top ports. Plain data from the model; the renderers lay it out.

Sized for 10,000 hosts: a big group's matrix has one row per distinct set of
ports (a "profile", with how many hosts share it), not one per host, and the
columns stop at MATRIX_PORTS.
"""
from . import views
from .columns import fields

MATRIX_PORTS = 30          # columns of a group's matrix
MATRIX_HOST_ROWS = 40      # groups up to this size get one row per host
MATRIX_ROWS = 60           # rows shown per group (profiles beyond are counted)
CHART_PORTS = 15
# severity order of the attention list (lower first) and its word
SEVERITY = {"unreachable": 0, "failed": 1, "unsupported": 2, "unexpected": 3, "expired": 3, "outlier": 4,
            "truncated": 5, "lost": 5}


def headline(model):
    """The numbers a reader looks at first."""
    s = model["summary"]
    unexpected_hosts = s["unexpected_listeners"]
    history = s.get("history") or {}
    drift = s.get("drift") or {}
    new = None
    if history.get("previous_run"):
        new = {"count": history["new"], "gone": history["gone"], "since": "previous run " + history["previous_run"]}
    elif s.get("drift") is not None:
        new = {"count": drift["new"], "gone": drift["gone"],
               "since": "baseline " + str((model.get("baseline") or {}).get("generated"))}
    return {
        "hosts": s["hosts"], "traced": s["traced"], "failed": s["failed"], "unreachable": s["unreachable"],
        "unsupported": s["unsupported"],
        "unexpected_listeners": sum(unexpected_hosts.values()), "unexpected_hosts": len(unexpected_hosts),
        "unexpected_binds": sum(s["unexpected_binds"].values()),
        "outliers": (s.get("outliers") or {}).get("flags") or 0,
        "new": new, "lost": s["lost"], "truncated": len(s["truncated_hosts"]),
    }


def _problems(host):
    """[(kind, text)] of one host, most severe first."""
    out = []
    if host["status"] != "ok":
        out.append((host["status"], host.get("reason") or host["status"]))
    facts = host.get("facts") or {}
    n = host["unexpected"]["listeners"]
    if n:
        out.append(("unexpected", "%d unexpected listener%s" % (n, "" if n == 1 else "s")))
    if host["unexpected"]["binds"]:
        out.append(("unexpected", "%d unexpected bind record%s" % (
            host["unexpected"]["binds"], "" if host["unexpected"]["binds"] == 1 else "s")))
    for o in host.get("outliers") or []:
        out.append(("outlier", "outlier %s %s: on %d of %d %s hosts"
                    % (o["proto"], o["port"], o["present"], o["of"], o["group"])))
    if facts.get("truncated"):
        out.append(("truncated", "records truncated (a cap or a full table)"))
    if facts.get("lost"):
        out.append(("lost", "%d events lost" % facts["lost"]))
    out.sort(key=lambda p: SEVERITY.get(p[0], 9))
    return out


def attention(model):
    """Hosts with anything to look at, loudest first: [{name, status, kind,
    problems: [(kind, text)]}]."""
    rows = []
    for i, h in enumerate(model["hosts"], 1):
        problems = _problems(h)
        if problems:
            rows.append({"name": h["name"], "status": h["status"], "kind": problems[0][0], "problems": problems,
                         "index": i})
    rows.sort(key=lambda r: (SEVERITY.get(r["kind"], 9), r["name"]))
    return rows


def _host_ports(host):
    """{(proto, port): "unexpected" | "outlier" | "on"} of a traced host."""
    cells = {}
    outliers = {(o["proto"], o["port"]) for o in host.get("outliers") or []}
    for port, proto, verdict in fields((host.get("facts") or {}).get("listeners") or [], "port", "proto", "verdict"):
        if not isinstance(port, int) or not port:
            continue
        key = (str(proto), port)
        state = "unexpected" if verdict in ("unexpected", "expired") else (
            "outlier" if key in outliers else "on")
        if cells.get(key) != "unexpected":
            cells[key] = state
    return cells


def _group_members(model):
    groups = {}
    for h in model["hosts"]:
        if h["status"] != "ok":
            continue
        for g in h.get("groups") or ["(no group)"]:
            groups.setdefault(g, []).append(h)
    return groups


def matrices(model):
    """One heat map per group: {group, hosts, ports: [{proto, port, hosts}],
    more_ports, rows: [{label, hosts, names, cells: [state or None]}], more_rows}."""
    out = []
    for group, members in sorted(_group_members(model).items()):
        per_host = [(h, _host_ports(h)) for h in members]
        counts = {}
        for _host, cells in per_host:
            for key in cells:
                counts[key] = counts.get(key, 0) + 1
        ranked = sorted(counts, key=lambda k: (-counts[k], k[1], k[0]))
        # a port with a finding always gets a column, before common ones are cut
        flagged = [k for k in ranked if any(c.get(k) in ("unexpected", "outlier") for _host, c in per_host)]
        columns = (flagged + [k for k in ranked if k not in flagged])[:MATRIX_PORTS]
        columns.sort(key=lambda k: (k[1], k[0]))
        if len(members) <= MATRIX_HOST_ROWS:
            rows = [{"label": h["name"], "hosts": 1, "names": [h["name"]],
                     "cells": [cells.get(k) for k in columns]} for h, cells in per_host]
        else:
            profiles = {}
            for h, cells in per_host:
                key = tuple(cells.get(k) for k in columns)
                profiles.setdefault(key, []).append(h["name"])
            rows = [{"label": "%d host%s" % (len(names), "" if len(names) == 1 else "s"), "hosts": len(names),
                     "names": names[:5], "cells": list(key)} for key, names in profiles.items()]
        rows.sort(key=lambda r: (-sum(c in ("unexpected", "outlier") for c in r["cells"] if c), -r["hosts"],
                                 r["label"]))
        out.append({"group": group, "hosts": len(members),
                    "ports": [{"proto": p, "port": n, "hosts": counts[(p, n)]} for p, n in columns],
                    "more_ports": max(0, len(ranked) - len(columns)),
                    "rows": rows[:MATRIX_ROWS], "more_rows": max(0, len(rows) - MATRIX_ROWS)})
    return out


def port_chart(model, width=560, bar_height=18, gap=6, label=90):
    """Top ports by hosts listening, as bars of an inline SVG: {width,
    height, bars: [{y, w, label, value}]}."""
    counts = {}
    for h in model["hosts"]:
        for key in _host_ports(h):
            counts[key] = counts.get(key, 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][1], kv[0][0]))[:CHART_PORTS]
    most = max([v for _key, v in top] or [1])
    room = width - label - 50
    bars = [{"y": i * (bar_height + gap), "w": max(1, round(room * v / most)), "label": "%s %d" % (k[0], k[1]),
             "value": v, "x": label, "ty": i * (bar_height + gap) + bar_height - 5, "vx": label + max(1, round(room * v / most)) + 6}
            for i, (k, v) in enumerate(top)]
    return {"width": width, "height": max(bar_height, len(bars) * (bar_height + gap)), "bar": bar_height,
            "bars": bars}


def host_rows(model):
    """One row per host for the hosts table."""
    rows = []
    for i, h in enumerate(model["hosts"], 1):
        facts = h.get("facts") or {}
        rows.append({"name": h["name"], "index": i, "status": h["status"],
                     "groups": ", ".join(h.get("groups") or []),
                     "binds": len(facts.get("binds") or []), "listeners": len(facts.get("listeners") or []),
                     "unexpected": h["unexpected"]["listeners"], "outliers": len(h.get("outliers") or []),
                     "reason": h.get("reason")})
    return rows


def not_traced(model):
    return views.not_traced(model)
