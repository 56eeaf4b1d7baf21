"""The terminal table and summary: plain text, every cell made visible
(control characters escaped) so a process name cannot drive the terminal."""
from .sanitize import one_line, visible
from . import views

MAX_CELL = 48


def _cell(value, none=""):
    text = visible(none if value is None else value)
    if len(text) > MAX_CELL:
        text = text[:MAX_CELL - 1] + "~"
    return text


def table(columns, rows):
    """Left-aligned columns, two spaces apart, widths from the data."""
    cells = [[_cell(r[key]) for _, key in columns] for r in rows]
    widths = [len(title) for title, _ in columns]
    for line in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, line)]
    out = ["  ".join(t.ljust(w) for (t, _), w in zip(columns, widths)).rstrip()]
    for line in cells:
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    return out


def _summary_lines(model):
    s = model["summary"]
    lines = ["BIND REPORT SUMMARY",
             "hosts: %d  traced: %d  failed: %d  unreachable: %d  unsupported: %d" % (
                 s["hosts"], s["traced"], s["failed"], s["unreachable"], s["unsupported"]),
             "binds: %d (%d records)  listeners: %d  unique listeners: %d" % (
                 s["binds"], s["bind_records"], s["listeners"], s["unique_listeners"])]
    if s["lost"] or s["dropped"] or s["truncated_hosts"]:
        lines.append("lost events: %d  dropped: %d  truncated on: %s" % (
            s["lost"], s["dropped"], ", ".join(_cell(n) for n in s["truncated_hosts"]) or "-"))
    for h in views.not_traced(model):
        lines.append("  %s %s: %s" % (h["status"].upper(), _cell(h["name"]), one_line(h["reason"])))
    unexpected = views.unexpected_listeners(model)
    if unexpected:
        lines.append("unexpected listeners by host:")
        for name, rows in unexpected:
            lines.append("  %s: %d" % (_cell(name), len(rows)))
            for r in rows:
                lines.append("    %s %s:%s %s (pid %s)" % (_cell(r["proto"]), _cell(r["addr"]),
                                                         _cell(r["port"]), _cell(r["comm"], "-"),
                                                         _cell(r["pid"], "-")))
    else:
        lines.append("unexpected listeners: none")
    if s["top_ports"]:
        lines.append("top ports:")
        lines.extend("  " + l for l in table(
            [("PROTO", "proto"), ("PORT", "port"), ("HOSTS", "hosts"), ("LISTENERS", "listeners"),
             ("BINDS", "binds")], s["top_ports"]))
    if s["drift"] is not None:
        lines.append("drift since baseline %s: %d new, %d gone" % (
            _cell((model["baseline"] or {}).get("path") or "-"), s["drift"]["new"], s["drift"]["gone"]))
        for h in model["hosts"]:
            d = h["drift"]
            if not d or not d["compared"]:
                continue
            for word, items in (("new since baseline", d["new"]), ("gone since baseline", d["gone"])):
                for l in items:
                    lines.append("  %s %s: %s %s:%s %s" % (_cell(h["name"]), word, _cell(l.get("proto")),
                                                        _cell(l.get("addr")), _cell(l.get("port")),
                                                        _cell(l.get("comm"))))
        for name in s["drift"]["hosts_missing"]:
            lines.append("  %s: in baseline, not in this run" % _cell(name))
    return lines


def render_terminal(model):
    """model -> the text printed at the end of the play."""
    rows = views.bind_rows(model)
    lines = table(views.bind_columns(rows), rows)
    lines.append("")
    lines.extend(_summary_lines(model))
    return "\n".join(lines) + "\n"
