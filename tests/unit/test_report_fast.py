"""The fast paths of the report (column table, cached facts JSON, forked
halves, paused GC) give exactly what the straightforward per-row code gives,
on hostile fleets: names with markup, ANSI, newlines, lone surrogates, and
identity values of mixed types (1, 1.0, True, "1")."""
import copy
import errno
import gc
import json
import os
import re
import stat

import jinja2
import pytest
from markupsafe import escape

import report_facts as rf
from helpers import report_rows
from bindreport import (BindReportError, build_report, parallel, render, render_terminal, terminal,
                        write_reports, writer)
from bindreport.factcheck import facts_problem
from bindreport.jsontext import Segment, pretty, report_text
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


@pytest.fixture(params=[True, False], ids=["forked", "serial"])
def model(request, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    monkeypatch.setattr(parallel, "ENABLED", request.param)
    return build_report(hostile_fleet(), generated="2026-11-25T12:00:00Z")


def test_json_is_the_cleaned_model_and_the_cache_changes_nothing(model):
    text = render(model, "json")
    assert text == report_text(dict(model))  # a plain dict: no cached facts text
    assert json.loads(text) == model
    evil = next(h for h in model["hosts"] if h["name"] == "evil")
    assert evil["facts"]["binds"][0]["comm"] == "lone\ufffdsurrogate"
    assert [h["name"] for h in model["hosts"]].count("twin\ufffd") == 2
    # every bind on one line, the layout of earlier report.json files
    assert len(re.findall(r'\n +\{"schema": 1, ', text)) == model["summary"]["bind_records"] + sum(
        len(h["facts"]["unexpected"]["binds"]) for h in model["hosts"] if h["facts"])


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


@pytest.mark.parametrize("fleet", [hostile_fleet, rf.fleet], ids=["needs-cleaning", "clean"])
def test_forked_and_serial_reports_are_identical(monkeypatch, fleet):
    # forked: the child encodes the later hosts; "evil" (lone surrogate) is one of them
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    out = {}
    for enabled in (True, False):
        monkeypatch.setattr(parallel, "ENABLED", enabled)
        m = build_report(fleet(), generated="2026-11-25T12:00:00Z")
        out[enabled] = [render_terminal(m)] + [render(m, f) for f in ("json", "md", "html", "junit")]
    assert out[True] == out[False]


def test_a_failing_child_is_recomputed_here(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    parent = os.getpid()

    def square(x):
        if os.getpid() != parent:
            raise RuntimeError("child broke")
        return x * x
    assert parallel.map_split(square, range(10)) == [x * x for x in range(10)]
    # and the child's result is used when it works
    assert parallel.map_split(lambda x: (x, os.getpid() == parent), range(4))[2:] == (
        [(2, not parallel.can_fork()), (3, not parallel.can_fork())])


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


@pytest.mark.parametrize("sendfile", [True, False], ids=["sendfile", "copy"])
def test_forked_writer_writes_the_same_files(tmp_path, monkeypatch, sendfile):
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    m = build_report(hostile_fleet(), generated="2026-11-25T12:00:00Z")
    if parallel.can_fork():   # the child's hosts went to the spill file, copied from there
        assert any(isinstance(t, Segment) for _, t in m.cache["facts_text"].values())
    if not sendfile:
        def no_sendfile(*args):
            raise OSError(errno.EINVAL, "Invalid argument")
        monkeypatch.setattr(writer.os, "sendfile", no_sendfile)
    for enabled in (True, False):
        monkeypatch.setattr(parallel, "ENABLED", enabled)
        # single-threaded here: the forked path is the one taken on a multi-core machine
        assert parallel.can_fork() == (enabled and parallel._cpus() > 1)
        write_reports(m, str(tmp_path / str(enabled)))
    assert _files(str(tmp_path / "True")) == _files(str(tmp_path / "False"))
    # the copied segments make the same file as encoding the plain model
    assert _files(str(tmp_path / "True"))["report.json"] == report_text(dict(m)).encode("utf-8")
    assert sorted(_files(str(tmp_path / "True"))) == ["junit.xml", "report.html", "report.json", "report.md"]
    for name in os.listdir(str(tmp_path / "True")):
        assert stat.S_IMODE(os.stat(str(tmp_path / "True" / name)).st_mode) == 0o640


@pytest.mark.parametrize("enabled", [True, False], ids=["forked", "serial"])
@pytest.mark.parametrize("broken", ["html", "json"])
def test_a_failed_format_leaves_old_reports_and_no_temp_files(tmp_path, monkeypatch, enabled, broken):
    monkeypatch.setattr(parallel, "ENABLED", enabled)
    write_reports(build_report(rf.fleet()), str(tmp_path))
    before = _files(str(tmp_path))
    real = writer.render_parts

    def render_parts(model, fmt):   # in the forked child too: it inherits the patch
        if fmt == broken:
            raise RuntimeError("template broke on " + fmt)
        return real(model, fmt)
    monkeypatch.setattr(writer, "render_parts", render_parts)
    with pytest.raises(RuntimeError, match="template broke on " + broken):
        write_reports(build_report({}), str(tmp_path))
    assert _files(str(tmp_path)) == before   # nothing replaced, no .tmp left


@pytest.mark.parametrize("enabled", [True, False], ids=["forked", "serial"])
def test_a_full_disk_names_the_file_and_leaves_old_reports(tmp_path, monkeypatch, enabled):
    monkeypatch.setattr(parallel, "ENABLED", enabled)
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


def test_a_child_reaped_by_someone_else_still_counts(monkeypatch):
    # a host program's SIGCHLD handler may reap our child before we wait for it
    real = os.waitpid

    def reaped(pid, flags):
        real(pid, flags)
        raise ChildProcessError(10, "No child processes")
    monkeypatch.setattr(parallel.os, "waitpid", reaped)
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    parent = os.getpid()
    got = parallel.map_split(lambda x: (x, os.getpid() == parent), range(4))
    assert got == [(0, True), (1, True), (2, not parallel.can_fork()), (3, not parallel.can_fork())]


def test_a_full_temporary_directory_falls_back_to_memory(monkeypatch):
    from bindreport import jsontext, model as report_model
    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)

    def full(facts_list, file):   # in the forked child too
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(report_model, "spill_texts", full)
    m = build_report(hostile_fleet(), generated="2026-11-25T12:00:00Z")
    assert not any(isinstance(t, jsontext.Segment) for _, t in m.cache["facts_text"].values())
    assert render(m, "json") == report_text(dict(m))
