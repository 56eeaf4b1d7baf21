"""Checks that a rendered report or terminal text is valid and inert: the
markup is only the report's own, names are text, no control characters reach
a terminal. Shared by the fuzz tests and the real hostile-name runs."""
import json
import os
import re
import xml.etree.ElementTree as ET

from hostile_util import ROOT

from helpers import report_json
from helpers.html import Collector

TEMPLATES = os.path.join(ROOT, "collection/ansible_collections/fleetaudit/bindtrace/plugins/"
                         "plugin_utils/bindreport/templates")
# C0 but newline, DEL, C1, bidi embeddings/overrides/isolates, line/paragraph separators,
# lone surrogates: nothing of that may reach a terminal or a human format
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029"
                     "\ud800-\udfff]")


def template_tags():
    """Every tag report.html.j2 itself writes; any other tag came from data."""
    with open(os.path.join(TEMPLATES, "report.html.j2"), encoding="utf-8") as f:
        return set(re.findall(r"<([a-z][a-z0-9]*)", f.read()))


def check_html(text):
    """-> the visible text. Only the template's tags, no event-handler or
    javascript: attributes, one script and it is report.js."""
    assert not CONTROL.search(text)
    p = Collector()
    p.feed(text)
    p.close()
    assert set(p.tags) <= template_tags(), set(p.tags) - template_tags()
    assert p.tags.count("script") == 1
    with open(os.path.join(TEMPLATES, "report.js"), encoding="utf-8") as f:
        assert "".join(p.scripts).strip() == f.read().strip()
    for name, value in p.attrs:
        assert not name.startswith("on"), (name, value)
        assert not (value or "").strip().lower().startswith(("javascript:", "data:")), value
    return "".join(p.text)


def check_junit(text):
    assert not CONTROL.search(text)
    return ET.fromstring(text.encode("utf-8"))


def check_json(text):
    json.loads(text)                  # plain JSON for any reader
    return report_json.parse(text)    # records as dicts, whatever the schema


def _cells(line):
    """Cells of a Markdown table row: split at pipes that are not escaped."""
    return re.split(r"(?<!\\)\|", line)


def check_markdown(text):
    """No raw HTML, no control characters, every table row as wide as its header."""
    assert not CONTROL.search(text)
    assert "<" not in text and ">" not in text.replace("&gt;", "")
    width = None
    for line in text.splitlines():
        if not line.startswith("|"):
            width = None
            continue
        if width is None:
            width = len(_cells(line))
        assert len(_cells(line)) == width, line
    return text


def check_terminal(text):
    assert not CONTROL.search(text), CONTROL.search(text)
    return text


def check_report_dir(report_dir):
    """Every file of a report directory: valid UTF-8, valid format, inert ->
    {format: parsed or text}."""
    out = {}
    for name, check in (("report.json", check_json), ("junit.xml", check_junit),
                        ("report.html", check_html), ("report.md", check_markdown)):
        with open(os.path.join(str(report_dir), name), encoding="utf-8", errors="strict") as f:
            out[name] = check(f.read())
    return out
