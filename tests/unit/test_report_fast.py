"""The fast paths of the report (records as columns, column table, paused
GC) give exactly what the straightforward per-row code gives, on hostile
fleets: names with markup, ANSI, newlines, lone surrogates, and identity
values of mixed types (1, 1.0, True, "1")."""
import copy
import gc
import json
import os
import stat

import jinja2
import pytest
from markupsafe import escape

import report_facts as rf
from helpers import report_rows
from bindreport import (BindReportError, build_report, render, render_terminal, terminal,
                        write_reports, writer)
from bindreport.factcheck import facts_problem
from bindreport.inputs import read_results
from bindreport.jsontext import loads, pretty, report_text
from bindreport.sanitize import markdown, visible

# the bind rows as the report templates wrote them before the column table
ENV = jinja2.Environment(keep_trailing_newline=True)
HTML_ROW = ENV.from_string(
    """<tr class="{{ 'unexpected' if r.unexpected else '' }}{{ ' bind-error' if r.error else '' }}">"""
    """{% for title, key in columns %}<td class="{{ key }}">{{ esc(r[key]) }}</td>{% endfor %}"""
    """<td>{{ esc(r.count) }}</td><td>{{ esc(r.user) }}</td></tr>\n""")
MD_ROW = ENV.from_string(
    """|{% for title, key in columns %} {% if r.unexpected and key == "verdict" %}**{{ md(r[key]) }}**"""
    """{% else %}{{ md(r[key]) }}{% endif %} |{% endfor %} {{ md(r.count) }} |\n""")


def hostile_fleet():
    fleet = rf.fleet()
    evil = copy.deepcopy(fleet["evil"])
    binds = evil["facts"]["binds"]
    binds[0]["comm"] = "lone\udc80surrogate"
    binds[1]["k8s"] = {"node": True, "namespace": 1, "pod": 1.0, "container": False}
    binds[2]["k8s"] = {"node": 1, "namespace": "1", "pod": True, "container": "1"}
    binds[3]["k8s"] = None
    binds[3]["container"] = {"runtime": "docker", "id": "ab" * 32, "name": "web\u202etxt", "image": "x"}
    binds[4]["port"] = None
    evil["facts"]["listeners"][0]["k8s"] = {"node": True, "namespace": 1, "pod": None, "container": 1.0}
    fleet["evil"] = evil
    # two inventory names that become one name once cleaned: their binds sort together
    fleet["twin\udc81"] = copy.deepcopy(fleet["web1"])
    fleet["twin\udc82"] = copy.deepcopy(fleet["web2"])
    return fleet


@pytest.fixture
def model():
    return build_report(hostile_fleet(), generated="2026-11-25T12:00:00Z")


def test_json_is_the_cleaned_model_and_the_cache_changes_nothing(model):
    text = render(model, "json")
    assert text == report_text(dict(model))  # a plain dict: no model tables, same file
    assert loads(text) == model
    evil = next(h for h in model["hosts"] if h["name"] == "evil")
    assert evil["facts"]["binds"][0]["comm"] == "lone\ufffdsurrogate"
    assert [h["name"] for h in model["hosts"]].count("twin\ufffd") == 2
    # schema 2: every bind once, in the columns of one table; no key repeated per record
    data = json.loads(text)
    assert data["tables"]["binds"]["rows"] == model["summary"]["bind_records"]
    # evil's unexpected binds differ from its binds (edited after the copy): a table of their own
    assert text.count('"timestamp"') == 2 and set(data["tables"]) == {
        "binds", "listeners", "unexpected.binds", "unexpected.listeners"}
    # a host's unexpected binds, copies of some of its binds, are those rows of the binds table
    clean = build_report(rf.fleet())
    data = json.loads(render(clean, "json"))
    assert set(data["tables"]) == {"binds", "listeners"} and render(clean, "json").count('"timestamp"') == 1
    db1 = next(h for h in data["hosts"] if h["name"] == "db1")
    assert db1["facts"]["unexpected"]["binds"] == {"table": "binds", "rows": [
        db1["facts"]["binds"]["start"] + i for i in (1, 2, 3)]}
    read = {h["name"]: h for h in loads(render(clean, "json"))["hosts"]}
    assert [b["verdict"] for b in read["db1"]["facts"]["unexpected"]["binds"]] == ["unexpected"] * 3


def test_bind_tables_equal_the_per_row_rendering(model):
    rows = report_rows.bind_rows(model)
    columns = report_rows.bind_columns(rows)
    html = "".join(HTML_ROW.render(r=r, columns=columns, esc=lambda v: escape(visible(v)))
                   for r in rows)
    md = "".join(MD_ROW.render(r=r, columns=columns, md=markdown) for r in rows)
    from bindreport.render import html_bind_rows, md_bind_rows
    assert html_bind_rows(model) == html and md_bind_rows(model) == md
    assert terminal.bind_lines(model) == terminal.table(columns, rows)
    # mixed-type identity values stay apart: 1.0, True and 1 are three cells
    assert '<td class="k8s_node">True</td>' in html and '<td class="k8s_node">1</td>' in html
    assert "web\\\\u202etxt" in md and "\u202e" not in md  # the escape, backslash-escaped


def _no_twins():
    fleet = hostile_fleet()   # two names that clean to one are two hosts in a model, one in a {host: result}
    del fleet["twin\udc82"]
    return fleet


@pytest.mark.parametrize("fleet", [_no_twins, rf.fleet], ids=["needs-cleaning", "clean"])
def test_a_report_from_its_own_report_json_is_identical(fleet):
    # hosts read back from report.json (schema 2: records copied column by column
    # into the new model) render exactly as the hosts' facts did
    m = build_report(fleet(), generated="2026-11-25T12:00:00Z")
    again = build_report(read_results(render(m, "json"), "report.json"), generated="2026-11-25T12:00:00Z")
    assert again == m
    assert ([render_terminal(again)] + [render(again, f) for f in ("json", "md", "html", "junit")] ==
            [render_terminal(m)] + [render(m, f) for f in ("json", "md", "html", "junit")])


def test_gc_state_is_restored():
    assert gc.isenabled()
    build_report(rf.fleet())
    assert gc.isenabled()
    gc.disable()
    try:
        render_terminal(build_report(rf.fleet()))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_shape_check_fast_path_still_refuses_and_names_the_record():
    f = rf.facts("h", [rf.bind(1, "a", 1), rf.bind(2, "b", 2)])
    assert facts_problem(f) is None
    f["binds"][1]["pid"] = True
    assert facts_problem(f) == "binds[1].pid: expected an integer or null, got bool"
    f["binds"][1]["pid"] = 2
    f["binds"][1]["k8s"] = {"node": ["x"]}
    assert facts_problem(f) == "binds[1].k8s.node: expected a plain value, got list"

    class Pid(int):
        pass
    f["binds"][1]["k8s"] = None
    f["binds"][1]["pid"] = Pid(2)   # not the exact type: the per-record check accepts it
    assert facts_problem(f) is None


def test_pretty_keeps_the_diffable_layout():
    assert pretty({"a": [{"b": 1}, {"c": [2]}], "d": {}, "e": [1, 2]}) == (
        '{\n  "a": [\n    {"b": 1},\n    {"c": [2]}\n  ],\n  "d": {},\n  "e": [1, 2]\n}')


def _files(d):
    return {n: open(os.path.join(d, n), "rb").read() for n in sorted(os.listdir(d))}


def test_writer_writes_what_render_gives(tmp_path):
    m = build_report(hostile_fleet(), generated="2026-11-25T12:00:00Z")
    write_reports(m, str(tmp_path / "r"))
    files = _files(str(tmp_path / "r"))
    assert files["report.json"] == report_text(dict(m)).encode("utf-8") == render(m, "json").encode("utf-8")
    assert files["report.html"] == render(m, "html").encode("utf-8")
    assert sorted(files) == ["junit.xml", "report.html", "report.json", "report.md"]
    for name in os.listdir(str(tmp_path / "r")):
        assert stat.S_IMODE(os.stat(str(tmp_path / "r" / name)).st_mode) == 0o640


@pytest.mark.parametrize("broken", ["html", "json"])
def test_a_failed_format_leaves_old_reports_and_no_temp_files(tmp_path, monkeypatch, broken):
    write_reports(build_report(rf.fleet()), str(tmp_path))
    before = _files(str(tmp_path))
    real = writer.render_parts

    def render_parts(model, fmt):
        if fmt == broken:
            raise RuntimeError("template broke on " + fmt)
        return real(model, fmt)
    monkeypatch.setattr(writer, "render_parts", render_parts)
    with pytest.raises(RuntimeError, match="template broke on " + broken):
        write_reports(build_report({}), str(tmp_path))
    assert _files(str(tmp_path)) == before   # nothing replaced, no .tmp left


def test_a_full_disk_names_the_file_and_leaves_old_reports(tmp_path, monkeypatch):
    write_reports(build_report(rf.fleet()), str(tmp_path))
    before = _files(str(tmp_path))
    real = writer._write_temp

    def write_temp(path, parts):
        if path.endswith("report.md"):
            raise OSError(28, "No space left on device")
        return real(path, parts)
    monkeypatch.setattr(writer, "_write_temp", write_temp)
    with pytest.raises(BindReportError, match=r"cannot write .*report\.md \(No space left on device\)"):
        write_reports(build_report({}), str(tmp_path))
    assert _files(str(tmp_path)) == before
