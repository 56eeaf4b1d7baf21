"""The terminal table and summary: plain text, every cell made visible
(control characters escaped) so a process name cannot drive the terminal."""
from .gcpause import gc_paused
from .sanitize import one_line, visible
from . import overview, table as bind_tables, views
from .table import bind_table, unexpected_listeners
from .window import overlap_line, window_line

MAX_CELL = 48


def _cell(value, none=""):
    text = visible(none if value is None else value)
    if len(text) > MAX_CELL:
        text = text[:MAX_CELL - 1] + "~"
    return text


def table(columns, rows):
    """Left-aligned columns, two spaces apart, widths from the data."""
    cells = [[_cell(r[key]) for _title, key in columns] for r in rows]
    widths = [len(title) for title, _key in columns]
    for line in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, line)]
    out = ["  ".join(t.ljust(w) for (t, _key), w in zip(columns, widths)).rstrip()]
    for line in cells:
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    return out


# past this many bind records the terminal shows the findings only (unexpected
# binds first, then failed ones), up to as many rows; report.json has them all
TERMINAL_BIND_ROWS = 5000
bind_tables.SELECTIONS["terminal"] = bind_tables.findings(TERMINAL_BIND_ROWS)


def selection(model):
    """None (every bind) or "terminal" (the findings, up to TERMINAL_BIND_ROWS)."""
    return "terminal" if bind_tables.bind_table_total(model) > TERMINAL_BIND_ROWS else None


def bind_lines(model, which=None):
    """The fleet's bind table as table() lays it out, built column by
    column: each distinct value is escaped and padded once. which: a
    selection of bind_table (None: every row)."""
    bt = bind_table(model, which)
    columns = bt.titles
    texts = [bt.texts(key, _cell) for _title, key in columns]
    widths = [max([len(title)] + [len(t) for t in col]) for (title, _key), col in zip(columns, texts)]
    padded = []
    for (_title, key), col, width in zip(columns, texts, widths):
        col = [t.ljust(width) for t in col]
        padded.append(map(col.__getitem__, bt.codes(key)[0]))
    out = ["  ".join(t.ljust(w) for (t, _key), w in zip(columns, widths)).rstrip()]
    out.extend(map(str.rstrip, map("  ".join, zip(*padded))))
    return out


def _summary_lines(model):
    """(text, style) pairs; style None, "unexpected", "failed", "new" or "gone"."""
    s = model["summary"]
    out = [("BIND REPORT SUMMARY", None),
           ("hosts: %d  traced: %d  failed: %d  unreachable: %d  unsupported: %d" % (
               s["hosts"], s["traced"], s["failed"], s["unreachable"], s["unsupported"]), None),
           ("binds: %d (%d records)  listeners: %d  unique listeners: %d" % (
               s["binds"], s["bind_records"], s["listeners"], s["unique_listeners"]), None)]
    hooks = views.hooks_used(model)
    if hooks:
        out.append(("hooks: " + "; ".join("%s: %d (%s%s)" % (
            _cell(hook[:20]), n, ", ".join(_cell(h) for h in first), ", ..." if n > len(first) else "")
            for hook, n, first in hooks), None))
    out.append((window_line(s.get("window")), None))
    overlap = overlap_line(s.get("window"), _cell)
    if overlap:
        out.append((overlap, "failed"))
    if s["lost"] or s["dropped"] or s["truncated_hosts"]:
        out.append(("lost events: %d  dropped: %d  truncated on: %s" % (
            s["lost"], s["dropped"], ", ".join(_cell(n) for n in s["truncated_hosts"]) or "-"), "failed"))
    not_traced = views.not_traced(model)
    if not_traced:
        out.append(("hosts not traced (loudest first):", "failed"))
    for h in sorted(not_traced, key=lambda h: (overview.SEVERITY.get(h["status"], 9), h["name"])):
        out.append(("  %s %s: %s" % (h["status"].upper(), _cell(h["name"]), one_line(h["reason"])),
                    "failed"))
    unexpected = unexpected_listeners(model)
    if unexpected:
        out.append(("unexpected listeners by host:", None))
        for name, rows in unexpected:
            out.append(("  %s: %d" % (_cell(name), len(rows)), "unexpected"))
            for r in rows:
                out.append(("    %s %s:%s %s (pid %s)" % (
                    _cell(r["proto"]), _cell(r["addr"]), _cell(r["port"]), _cell(r["comm"], "-"),
                    _cell(r["pid"], "-")), "unexpected"))
    else:
        out.append(("unexpected listeners: none", None))
    if s["unexpected_binds"]:
        out.append(("unexpected binds by host: " + ", ".join(
            "%s: %d" % (_cell(n), c) for n, c in sorted(s["unexpected_binds"].items())), None))
    out.extend(_outlier_lines(s.get("outliers")))
    if s["top_ports"]:
        out.append(("top ports:", None))
        out.extend(("  " + l, None) for l in table(
            [("PROTO", "proto"), ("PORT", "port"), ("HOSTS", "hosts"), ("LISTENERS", "listeners"),
             ("BINDS", "binds")], s["top_ports"]))
    out.extend(_history_lines(model))
    if s["drift"] is not None:
        out.append(("drift since baseline %s: %d new, %d gone" % (
            _cell((model["baseline"] or {}).get("path") or "-"), s["drift"]["new"], s["drift"]["gone"]),
            None))
        for h in model["hosts"]:
            d = h["drift"]
            if not d or not d["compared"]:
                continue
            for word, style, items in (("new since baseline", "new", d["new"]),
                                       ("gone since baseline", "gone", d["gone"])):
                for l in items:
                    out.append(("  %s %s: %s %s:%s %s" % (
                        _cell(h["name"]), word, _cell(l.get("proto")), _cell(l.get("addr")),
                        _cell(l.get("port")), _cell(l.get("comm"), "-")), style))
        for name in s["drift"]["hosts_missing"]:
            out.append(("  %s: in baseline, not in this run" % _cell(name), "gone"))
    return out


def _outlier_lines(o):
    if not o or not o.get("groups"):
        return []
    out = [("fleet outliers (listeners on <= %g%% of a group's hosts): %d" % (o["threshold"] * 100, o["flags"]),
            "unexpected" if o["flags"] else None)]
    for g in o["groups"]:
        for r in g["outliers"]:
            out.append(("  %s: %s %s on %d of %d hosts (%s): %s" % (
                _cell(g["group"]), _cell(r["proto"]), r["port"], r["present"], r["of"],
                _cell(", ".join(r["comms"]) or "-"), _cell(", ".join(r["hosts"]))), "unexpected"))
    return out


def _history_lines(model):
    h = model["summary"].get("history")
    if not h:
        return []
    if not h["previous_run"]:
        return [("history %s: run %d, no earlier run" % (_cell(h["store"]), h["run_id"]), None)]
    out = [("since the previous run (%s): %d new, %d gone [history %s, %d runs]" % (
        h["previous_run"], h["new"], h["gone"], _cell(h["store"]), h["runs"]), None)]
    for host in model["hosts"]:
        entry = host.get("history") or {}
        for word, style, items in (("new since previous run", "new", entry.get("new") or []),
                                   ("gone since previous run", "gone", entry.get("gone") or [])):
            for l in items:
                out.append(("  %s %s: %s %s:%s %s" % (_cell(host["name"]), word, _cell(l.get("proto")),
                                                      _cell(l.get("addr")), _cell(l.get("port")),
                                                      _cell(l.get("comm"), "-")), style))
    return out


@gc_paused()
def terminal_lines(model):
    """model -> [(text, style)]: the table (unexpected rows styled) and the
    summary, for front-ends that colour lines; text is already inert."""
    which = selection(model)
    lines = bind_lines(model, which)
    out = [(lines[0], None)]
    styles = [None, "unexpected"]
    bt = bind_table(model, which)
    out.extend(zip(lines[1:], [styles[u] for u in bt.unexpected]))
    if which is not None:
        out.append(("(%d of %d bind records shown: the unexpected and failed ones%s; report.json has them all)"
                    % (bt.size, bt.total, ", unexpected first, up to %d" % TERMINAL_BIND_ROWS
                       if bt.size == TERMINAL_BIND_ROWS else ""), None))
    out.append(("", None))
    out.extend(_summary_lines(model))
    return out


@gc_paused()
def render_terminal(model):
    """model -> the plain text printed at the end of the play."""
    return "\n".join(text for text, _style in terminal_lines(model)) + "\n"
