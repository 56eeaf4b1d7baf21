"""Pure renderers: model -> text of report.json (jsontext) / report.md /
report.html / junit.xml (jinja2 templates next to this file). The big tables
(every bind of the fleet, each host's listeners) are built here in plain
Python from the shared column table, each distinct value escaped once; the
templates lay out the page around them."""
import base64
import hashlib
import json
import os

import jinja2
from markupsafe import Markup, escape

from . import jsontext, overview, table, views
from .gcpause import gc_paused
from .metrics import render_metrics
from .sanitize import markdown, one_line, visible
from .columns import Records
from .table import Cells, bind_table, listener_rows, unexpected_listeners, unexpected_rows
from .window import overlap_line, window_line

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
# format name -> (file name, template, autoescape, per-expression escaping)
FORMATS = {
    "json": ("report.json", None, False, None),   # jsontext: the model itself
    "md": ("report.md", "report.md.j2", False, markdown),
    "html": ("report.html", "report.html.j2", True, visible),
    "junit": ("junit.xml", "junit.xml.j2", True, visible),
    "prom": ("report.prom", None, False, None),    # metrics.py (prometheus-client)
}
_envs = {}


def _html(value):
    return str(escape(visible(value)))


def _typed(render):
    """Cells keyed by (type, value): rows of dicts mix 1, 1.0 and True."""
    return Cells(lambda tv: render(tv[1]))


# report.html's size budget: past these, the page keeps the fleet-wide views
# and the findings, and leaves the rest to report.json (see README)
HTML_BIND_ROWS = 10000      # rows of the all-binds table (~6 MB with container columns)
HTML_HOST_DETAILS = 300     # host detail sections
HTML_UNEXPECTED_ROWS = 10000   # rows of the unexpected-listeners table (~1.5 MB)


def _capped(unexpected, limit):
    """[(host, rows)] of unexpected listeners, at most limit rows in all."""
    out, room = [], limit
    for name, rows in unexpected:
        if not room:
            break
        out.append((name, rows[:room]))
        room -= len(out[-1][1])
    return out


table.SELECTIONS["html"] = table.findings(HTML_BIND_ROWS)


def html_selection(model):
    """None (the bind table has every row) or "html" (the findings only,
    unexpected binds first, then failed ones, up to the budget)."""
    return "html" if table.bind_table_total(model) > HTML_BIND_ROWS else None


def html_budget(model):
    """What report.html shows in full and what it leaves to report.json."""
    bt = bind_table(model, html_selection(model))
    hosts = model["hosts"]
    details = None
    if len(hosts) > HTML_HOST_DETAILS:
        details = {a["index"] for a in overview.attention(model)[:HTML_HOST_DETAILS]}
    return {"selection": html_selection(model), "binds_total": bt.total, "binds_shown": bt.size,
            "binds_omitted": bt.total - bt.size,
            "detail_indexes": details or set(),
            "detail_names": {hosts[i - 1]["name"] for i in details or ()}, "details_shown": len(details) if details is not None else len(hosts),
            "details_omitted": 0 if details is None else len(hosts) - len(details)}


def lazy_host_data(model, detailed=()):
    """The listeners of the hosts without a detail section, compact, for
    details built in the browser: {"cols": [...], "strings": [...], "hosts":
    [[name, status, [[cell, ...], ...]] or null, ...]}; a text cell is an index
    into strings (a fleet repeats its names). Safe inside <script
    type="application/json">."""
    cols = ("proto", "addr", "port", "state", "pid", "comm", "user", "verdict")
    strings = {}

    def code(v):   # a text's index into strings, its visible form made once
        text = visible(v)
        got = strings.get(text)
        if got is None:
            got = strings[text] = len(strings)
        return got
    codes = Cells(code)

    def cell(v):
        return codes[v if v.__class__ is str else str(v)] if isinstance(v, str) else v
    hosts = [None if i in detailed else
             [visible(h["name"]), h["status"],
              [[cell(v) for v in row]
               for row in _listener_cells((h.get("facts") or {}).get("listeners") or [], cols)]]
             for i, h in enumerate(model["hosts"], 1)]
    text = json.dumps({"cols": [c.upper() for c in cols], "text": [c in ("proto", "addr", "state", "comm", "user",
                                                                         "verdict") for c in cols],
                       "strings": list(strings), "hosts": hosts}, separators=(",", ":"))
    # no "</script>", "<!--" or U+2028/9 can end the block or confuse a parser
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
                  .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _listener_cells(listeners, cols):
    """[(value of each col) per listener], read from the columns when the
    listeners are Records."""
    if isinstance(listeners, Records):
        return list(zip(*[listeners.values(k) for k in cols]))
    return [tuple(l.get(k) for k in cols) for l in listeners]


def html_bind_rows(model, selection=None):
    """Every <tr> of the #binds table (as the template wrote them), built
    column by column: each distinct value escaped once. selection: of
    bind_table (None: every row)."""
    bt = bind_table(model, selection)
    cols = [bt.rendered(key, lambda v, key=key: '<td class="%s">%s</td>' % (key, _html(v)))
            for _title, key in bt.titles]
    cols.append(bt.rendered("count", lambda v: "<td>%s</td>" % _html(v)))
    cols.append(bt.rendered("user", lambda v: "<td>%s</td>" % _html(v)))
    classes = {(False, False): '<tr class="">', (True, False): '<tr class="unexpected">',
               (False, True): '<tr class=" bind-error">', (True, True): '<tr class="unexpected bind-error">'}
    starts = [classes[u, bool(e)] for u, e in zip(bt.unexpected, bt.columns["error"])]
    ends = ["</tr>\n"] * bt.size
    return "".join(map("".join, zip(starts, *cols + [ends])))


def _md_cell(value):
    return " %s |" % markdown(value)


def _md_verdict(value):
    return (" **%s** |" if value == "unexpected" else " %s |") % markdown(value)


def md_bind_rows(model, selection=None):
    """Every row of the Markdown bind table, column by column (selection: of bind_table)."""
    bt = bind_table(model, selection)
    cols = [["|"] * bt.size]
    cols.extend(bt.rendered(key, _md_verdict if key == "verdict" else _md_cell) for _title, key in bt.titles)
    cols.append(bt.rendered("count", lambda v: " %s |\n" % markdown(v)))
    return "".join(map("".join, zip(*cols)))


def _listener_body(fmt):
    """Rows of one host's listener table, as the templates wrote them."""
    if fmt == "html":
        cells = _typed(_html)

        def row(r, cols):
            return ('<tr class="%s">' % ("unexpected" if r["unexpected"] else "")
                    + "".join('<td class="%s">%s</td>' % (key, cells[type(r[key]), r[key]])
                              for _title, key in cols) + "</tr>\n")
    else:
        cells = _typed(markdown)

        def row(r, cols):
            return "|" + "".join(
                (" **%s** |" if r["unexpected"] and key == "verdict" else " %s |")
                % cells[type(r[key]), r[key]] for _title, key in cols) + "\n"

    def body(rows, cols):
        return Markup("".join(row(r, cols) for r in rows))
    return body


UNEXPECTED_KEYS = ("proto", "addr", "port", "pid", "comm", "user")


def _unexpected_body(fmt):
    """Rows of the unexpected-listeners table, as the templates wrote them."""
    cells = _typed(_html if fmt == "html" else markdown)
    if fmt == "html":
        start, sep, end = '<tr class="unexpected"><td>', "</td><td>", "</td></tr>\n"
    else:
        start, sep, end = "| ", " | ", " |\n"

    def body(unexpected):
        return Markup("".join(
            start + sep.join([cells[type(name), name]] + [cells[type(r[k]), r[k]] for k in UNEXPECTED_KEYS])
            + end for name, rows in unexpected for r in rows))
    return body


def _finalizer(escape):
    def finalize(value):
        # Markup is already safe markup built by the template itself
        if escape is None or isinstance(value, Markup):
            return "" if value is None else value
        return escape(value)
    return finalize


def _env(fmt):
    if fmt not in _envs:
        _name, _template, autoescape, escape = FORMATS[fmt]
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=autoescape,
                                 finalize=_finalizer(escape), undefined=jinja2.ChainableUndefined,
                                 keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
        env.filters.update(json=jsontext.pretty, one_line=one_line, visible=visible, md=markdown)
        _envs[fmt] = env
    return _envs[fmt]


def _asset(name):
    with open(os.path.join(TEMPLATES, name), encoding="utf-8") as f:
        return f.read()


def _csp_hash(text):
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def _listener_text(r):
    return "%s %s:%s %s (pid %s)" % (visible(r["proto"]), visible(r["addr"]), r["port"],
                                     visible(r["comm"]) or "-", "-" if r["pid"] is None else r["pid"])


def junit_cases(model):
    """One test case per host: a failed or unsupported trace or an
    unexpected listener is a failure, an unreachable host an error."""
    cases = []
    for host, unexpected in zip(model["hosts"], unexpected_rows(model)):
        facts = host["facts"] or {}
        case = {"name": host["name"], "kind": None, "type": None, "message": None, "body": [],
                "time": (facts.get("window") or {}).get("duration") or 0,
                "out": ["status: " + host["status"],
                        "binds: %d" % len(facts.get("binds") or []),
                        "listeners: %d" % len(facts.get("listeners") or []),
                        "unexpected listeners: %d" % len(unexpected)]}
        window = facts.get("window") or {}
        if window.get("start"):
            case["out"].append("window: %s .. %s" % (window.get("start"), window.get("end")))
        if host["name"] in ((model["summary"].get("window") or {}).get("not_overlapping") or ()):
            case["out"].append("window did not overlap the fleet's")
        lines = ["unexpected listener: " + _listener_text(r) for r in unexpected]
        if host["status"] == "unreachable":
            case.update(kind="error", type="unreachable", message="unreachable: " + one_line(host["reason"]))
        elif host["status"] == "failed" and unexpected:
            # the trace worked and the task failed on policy (fail_on_unexpected)
            case.update(kind="failure", type="unexpected-listener",
                        message="%d unexpected listener(s); task failed: %s" % (
                            len(unexpected), one_line(host["reason"])))
        elif host["status"] in ("failed", "unsupported"):
            reason = one_line(host["reason"])
            case.update(kind="failure", type="trace-" + host["status"],
                        message=reason if reason.startswith("unsupported:") else "trace failed: " + reason)
        elif unexpected:
            case.update(kind="failure", type="unexpected-listener",
                        message="%d unexpected listener(s): %s" % (
                            len(unexpected), "; ".join(_listener_text(r) for r in unexpected)))
        elif host.get("outliers") and (model["summary"].get("outliers") or {}).get("fail"):
            case.update(kind="failure", type="fleet-outlier",
                        message="fleet outlier: " + "; ".join(
                            "%s %s on %d of %d %s hosts" % (visible(o["proto"]), o["port"], o["present"],
                                                            o["of"], visible(o["group"]))
                            for o in host["outliers"]))
        if case["kind"]:
            case["body"] = [case["message"]] + lines
        cases.append(case)
    return cases


@gc_paused()
def render_parts(model, fmt):
    """render() as a list of pieces whose concatenation is the text."""
    if fmt == "json":
        return jsontext.report_parts(model)
    return [render(model, fmt)]


@gc_paused()
def render(model, fmt):
    """model -> text of one format ("json", "md", "html", "junit")."""
    if fmt not in FORMATS:
        raise ValueError("unknown report format %r: use one of %s" % (fmt, ", ".join(FORMATS)))
    if fmt == "json":
        return jsontext.report_text(model)
    if fmt == "prom":
        return render_metrics(model)
    window = model["summary"].get("window")
    context = {"model": model, "views": views, "window_line": window_line(window),
               "overlap_line": overlap_line(window)}
    if fmt in ("html", "md"):
        budget = html_budget(model)
        rows = html_bind_rows if fmt == "html" else md_bind_rows
        unexpected = unexpected_listeners(model)
        shown = _capped(unexpected, HTML_UNEXPECTED_ROWS)
        budget.update(unexpected_total=sum(len(r) for _n, r in unexpected),
                      unexpected_shown=sum(len(r) for _n, r in shown))
        context.update(columns=bind_table(model, budget["selection"]).titles,
                       unexpected_listeners=shown,
                       listener_rows=listener_rows(model), listener_body=_listener_body(fmt),
                       unexpected_body=_unexpected_body(fmt), attention=overview.attention(model),
                       budget=budget, bind_rows=lambda: Markup(rows(model, budget["selection"])))
    if fmt == "html":
        script, style = _asset("report.js"), _asset("report.css")
        context.update(script=Markup(script), style=Markup(style), script_hash=_csp_hash(script),
                       style_hash=_csp_hash(style),
                       lazy_data=(lazy_host_data(model, budget["detail_indexes"])
                                  if budget["details_omitted"] else ""),
                       overview={"headline": overview.headline(model), "matrices": overview.matrices(model),
                                 "chart": overview.port_chart(model), "hosts": overview.host_rows(model)})
    if fmt == "junit":
        cases = junit_cases(model)
        context.update(cases=cases, failures=sum(1 for c in cases if c["kind"] == "failure"),
                       errors=sum(1 for c in cases if c["kind"] == "error"))
    return _env(fmt).get_template(FORMATS[fmt][1]).render(context)
