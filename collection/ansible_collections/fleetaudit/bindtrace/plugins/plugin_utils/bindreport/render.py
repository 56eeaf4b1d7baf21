"""Pure renderers: model -> text of report.json / report.md / report.html /
junit.xml, each from a jinja2 template next to this file."""
import base64
import hashlib
import json
import os

import jinja2
from markupsafe import Markup

from .sanitize import markdown, one_line, visible
from . import views

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
# format name -> (file name, template, autoescape, per-expression escaping)
FORMATS = {
    "json": ("report.json", "report.json.j2", False, None),
    "md": ("report.md", "report.md.j2", False, markdown),
    "html": ("report.html", "report.html.j2", True, visible),
    "junit": ("junit.xml", "junit.xml.j2", True, visible),
}
_envs = {}


def _compact(value):
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _json(value, level=0):
    """Readable, diffable JSON: objects expanded, and every element of a list
    of objects (a bind, a listener) on one line; continuation lines indented
    to `level` steps."""
    pad = "  " * (level + 1)
    if isinstance(value, dict) and value:
        items = [pad + _compact(k) + ": " + _json(v, level + 1) for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(pad + _compact(v) for v in value) + "\n" + "  " * level + "]"
    return _compact(value)


def _finalizer(escape):
    def finalize(value):
        # Markup is already safe markup built by the template itself
        if escape is None or isinstance(value, Markup):
            return "" if value is None else value
        return escape(value)
    return finalize


def _env(fmt):
    if fmt not in _envs:
        _, _, autoescape, escape = FORMATS[fmt]
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=autoescape,
                                 finalize=_finalizer(escape), undefined=jinja2.ChainableUndefined,
                                 keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
        env.filters.update(json=_json, one_line=one_line, visible=visible, md=markdown)
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
    for host in model["hosts"]:
        facts = host["facts"] or {}
        unexpected = [r for r in views.listener_rows(host) if r["unexpected"]]
        case = {"name": host["name"], "kind": None, "type": None, "message": None, "body": [],
                "time": (facts.get("window") or {}).get("duration") or 0,
                "out": ["status: " + host["status"],
                        "binds: %d" % len(facts.get("binds") or []),
                        "listeners: %d" % len(facts.get("listeners") or []),
                        "unexpected listeners: %d" % len(unexpected)]}
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
        if case["kind"]:
            case["body"] = [case["message"]] + lines
        cases.append(case)
    return cases


def render(model, fmt):
    """model -> text of one format ("json", "md", "html", "junit")."""
    if fmt not in FORMATS:
        raise ValueError("unknown report format %r: use one of %s" % (fmt, ", ".join(FORMATS)))
    rows = views.bind_rows(model)
    context = {"model": model, "rows": rows, "columns": views.bind_columns(rows), "views": views}
    if fmt == "html":
        script, style = _asset("report.js"), _asset("report.css")
        context.update(script=Markup(script), style=Markup(style), script_hash=_csp_hash(script),
                       style_hash=_csp_hash(style))
    if fmt == "junit":
        cases = junit_cases(model)
        context.update(cases=cases, failures=sum(1 for c in cases if c["kind"] == "failure"),
                       errors=sum(1 for c in cases if c["kind"] == "error"))
    return _env(fmt).get_template(FORMATS[fmt][1]).render(context)
