"""Renderers over generated facts, with hostile process and container names:
every format stays valid, names stay inert, failed hosts carry their reasons."""
import re
import xml.etree.ElementTree as ET
from helpers.html import Collector

import report_facts as rf
from bindreport import build_report, render, render_terminal
from bindreport.render import TEMPLATES
from bindreport.jsontext import loads
from bindreport.sanitize import markdown, visible

REASONS = {"broken": "tracefs is not mounted", "legacy": "unsupported: no kernel BTF",
           "gone": "port 9: Connection refused"}


def model():
    return build_report(rf.fleet(), generated="2026-11-25T12:00:00Z")


def test_json_is_the_model_and_lists_every_bind():
    m = model()
    text = render(m, "json")
    data = loads(text)   # report.json read back (schema 2: columns) is the model
    assert data == m
    assert (data["schema"], data["kind"]) == (2, "bindtrace-fleet-report")
    evil = next(h for h in data["hosts"] if h["name"] == "evil")
    # hostile names kept exactly in the machine-readable report
    assert [b["comm"] for b in evil["facts"]["binds"]][:5] == list(rf.HOSTILE_NAMES)
    # control characters are JSON escapes, never raw bytes
    assert "\x1b" not in text and "\\u001b[31m" in text


def test_junit_parses_fails_unexpected_and_failed_hosts_errors_unreachable():
    root = ET.fromstring(render(model(), "junit").encode("utf-8"))
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("7", "4", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert sorted(cases) == ["broken", "db1", "evil", "gone", "legacy", "web1", "web2"]
    outcome = {n: [(ch.tag, ch.get("type")) for ch in c if ch.tag in ("failure", "error")]
               for n, c in cases.items()}
    assert outcome == {
        "broken": [("failure", "trace-failed")], "db1": [("failure", "unexpected-listener")],
        "evil": [("failure", "unexpected-listener")], "gone": [("error", "unreachable")],
        "legacy": [("failure", "trace-unsupported")], "web1": [], "web2": []}
    for name, reason in REASONS.items():
        node = cases[name].find("failure") if name != "gone" else cases[name].find("error")
        assert reason in node.get("message") and reason in node.text
    db = cases["db1"].find("failure")
    assert db.get("message") == ("2 unexpected listener(s): TCP 0.0.0.0:4444 nc (pid 666); "
                                 "UDP :::8000 python3 (pid 667)")
    evil = cases["evil"].find("failure").text
    # the XML parser gives back the text: names arrive as text, escapes visible
    assert "TCP 0.0.0.0:7000 <script>alert(1)</script> (pid 900)" in evil
    assert "\\x1b[31mred\\x1b[0m" in evil and "two\\nlines" in evil and "\x1b" not in evil


def test_html_hostile_names_are_text_never_markup():
    text = render(model(), "html")
    p = Collector()
    p.feed(text)
    p.close()
    # the only elements are the template's own; one script: the report's JS
    assert set(p.tags) <= {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3",
                           "h4", "p", "code", "section", "dl", "dt", "dd", "table", "thead", "tbody",
                           "tr", "th", "td", "a", "span", "ul", "li", "div", "label", "input", "script",
                           "nav", "small", "br", "svg", "g", "rect", "text"}   # the overview's chart
    assert "img" not in p.tags and p.tags.count("script") == 1
    with open(TEMPLATES + "/report.js", encoding="utf-8") as f:
        assert p.scripts == [f.read()]
    assert not [name for name, _ in p.attrs if name.startswith("on")]
    body = "".join(p.text)
    for name in (rf.HOSTILE_SCRIPT, rf.HOSTILE_ATTR, "\\x1b[31mred\\x1b[0m", "two\\nlines", "bad\ufffd\ufffdname"):
        assert name in body
    assert "\x1b" not in text
    # the container name (an attribute breaker) is a cell's text
    assert '<td class="k8s_container">&#34;&gt;&lt;img src=x onerror=alert(1)&gt;</td>' in text
    # CSP: only this file's own script and style may run; nothing external
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1)
    assert csp.startswith("default-src 'none'; style-src 'sha256-") and "script-src 'sha256-" in csp
    assert not re.search(r'(src|href)="(https?:)?//', text)


def test_html_names_failed_hosts_with_reasons_and_highlights_unexpected():
    text = render(model(), "html")
    for reason in REASONS.values():
        assert reason in text
    # rows: hosts table 2 (db1, evil) + unexpected-listener table 7 + bind rows 7 + listener rows 7
    assert text.count('<tr class="unexpected">') == 2 + 7 + 7 + 7
    # + the failed (EADDRINUSE) unexpected bind, greyed
    assert text.count('<tr class="unexpected bind-error">') == 1


def test_terminal_has_no_control_characters_and_names_every_host():
    out = render_terminal(model())
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f]", out)
    lines = out.splitlines()
    assert lines[0].split() == ["HOST", "VERDICT", "K8S.CONTAINERNAME", "PID", "COMM", "PROTO", "ADDR",
                                "PORT", "OPTS", "IF", "ERROR"]
    # sorted by host then port (fixed-width columns: IF is empty for unbound devices)
    at = lines[0].index("PORT")
    assert [(l.split()[0], l[at:].split()[0]) for l in lines[1:5]] == [
        ("db1", "4444"), ("db1", "5432"), ("db1", "5432"), ("db1", "8000")]
    assert "evil  unexpected" in out and "\\x1b[31mred\\x1b[0m" in out and "two\\nlines" in out
    assert "hosts: 7  traced: 4  failed: 1  unreachable: 1  unsupported: 1" in out
    assert "  FAILED broken: tracefs is not mounted" in out
    assert "  UNREACHABLE gone: Failed to connect" in out
    assert "  UNSUPPORTED legacy: unsupported: no kernel BTF" in out
    assert "unexpected listeners by host:\n  db1: 2\n    TCP 0.0.0.0:4444 nc (pid 666)\n" in out
    assert "  TCP    22    3      3          0" in out
    assert "unexpected binds by host: db1: 3, evil: 5" in out


def test_terminal_bidi_override_and_long_names():
    f = rf.facts("h", [rf.bind(1, "abc\u202etxt.exe", 1), rf.bind(2, "x" * 200, 2)])
    out = render_terminal(build_report({"h": {"status": "ok", "facts": f}}))
    assert "\u202e" not in out and "abc\\u202etxt.exe" in out
    assert "x" * 47 + "~" in out and "x" * 49 not in out


def test_markdown_escapes_markup_and_table_syntax():
    text = render(model(), "md")
    assert "<script>" not in text and "<img" not in text
    assert "| evil | TCP | 0.0.0.0 | 7000 | 900 | &lt;script&gt;alert(1)&lt;/script&gt; | root |" in text
    assert "\x1b" not in text
    assert markdown("a|b [x](javascript:y) `c`") == "a\\|b \\[x\\](javascript:y) \\`c\\`"
    for reason in REASONS.values():
        assert reason in text
    # every table row keeps its column count despite hostile names
    for block in re.findall(r"((?:^\|.*\|$\n)+)", text, re.M):
        widths = {len(re.split(r"(?<!\\)\|", row)) for row in block.strip().splitlines()}
        assert len(widths) == 1, block


def test_xml_stays_valid_for_noncharacters_from_utf8_comm():
    # b"\xef\xbf\xbe" is valid UTF-8 for U+FFFE, which XML 1.0 forbids
    comm = b"x\xef\xbf\xbey\x01".decode("utf-8", "replace")
    f = rf.facts("h", listeners=[rf.listener(7, comm, 4444, verdict="unexpected")])
    text = render(build_report({"h": {"status": "ok", "facts": f}}), "junit")
    failure = ET.fromstring(text.encode("utf-8")).find("testsuite/testcase/failure")
    assert "x\\ufffey\\x01 (pid 7)" in failure.get("message")


def test_visible():
    assert visible("a\x1b[31mb\x00\x7f\x9b\n\t") == "a\\x1b[31mb\\x00\\x7f\\x9b\\n\\t"
    assert visible(None) == "" and visible(42) == "42"


def test_junit_policy_failure_with_facts_is_an_unexpected_listener_failure():
    f = rf.facts("h", listeners=[rf.listener(7, "nc", 4444, verdict="unexpected")])
    m = build_report({"h": {"status": "failed", "facts": f,
                            "msg": "unexpected listeners on h: TCP 0.0.0.0:4444 nc pid 7"}})
    failure = ET.fromstring(render(m, "junit")).find("testsuite/testcase/failure")
    assert failure.get("type") == "unexpected-listener"
    assert failure.get("message") == ("1 unexpected listener(s); task failed: unexpected listeners on h: "
                                      "TCP 0.0.0.0:4444 nc pid 7")
