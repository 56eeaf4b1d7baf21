"""report.json schema 2 (records as columns) and schema 1 (one object per
record, written by earlier versions): schema-1 files, written by the schema-1
writer before it was replaced (tests/fixtures/report_schema1), still load as
baselines and merge as job slices; schema 2 reads back exactly what was
written; a damaged schema-2 file is refused with the file and the fault."""
import copy
import io
import json
import os

import pytest
from hypothesis import given, settings, strategies as st

import report_facts as rf
from bindreport import BindReportError, build_report, load_baseline, render
from bindreport.annotate import annotate_report
from bindreport.cli import run
from bindreport.columns import Records
from bindreport.inputs import load_results, read_results
from bindreport.jsontext import loads, plain

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures",
                        "report_schema1")
FLEET1 = os.path.join(FIXTURES, "fleet.json")
SLICE1 = os.path.join(FIXTURES, "slice-b.json")
WHEN = "2026-11-26T00:00:00Z"


def schema1(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def as_schema2(path, tmp_path):
    """The same report, written again by this version (schema 2)."""
    hosts = load_results([path])
    doc = schema1(path)
    model = build_report(hosts, generated=doc["generated"], generator=doc["generator"])
    annotate_report(model, groups={n: r["groups"] for n, r in hosts.items() if r.get("groups") is not None})
    out = tmp_path / ("v2-" + os.path.basename(path))
    out.write_text(render(model, "json"))
    return str(out)


def test_fixtures_are_schema_1_files_of_the_old_layout():
    doc = schema1(FLEET1)
    assert doc["schema"] == 1 and "tables" not in doc
    db1 = next(h for h in doc["hosts"] if h["name"] == "db1")
    assert isinstance(db1["facts"]["binds"], list) and db1["facts"]["binds"][0]["schema"] == 1


def test_schema_1_hosts_read_back_complete_and_write_as_schema_2(tmp_path):
    hosts = read_results(open(FLEET1).read(), FLEET1)
    doc = schema1(FLEET1)
    assert sorted(hosts) == sorted(h["name"] for h in doc["hosts"])
    for h in doc["hosts"]:
        assert hosts[h["name"]]["facts"] == h["facts"] and hosts[h["name"]]["status"] == h["status"]
    # written again by this version: schema 2, and every host's facts the same, exactly
    v2 = as_schema2(FLEET1, tmp_path)
    data = json.loads(open(v2).read())
    # the unexpected binds and listeners are rows of the binds and listeners tables
    assert data["schema"] == 2 and set(data["tables"]) == {"binds", "listeners"}
    again = plain(loads(open(v2).read()))
    for h in doc["hosts"]:
        got = next(g for g in again["hosts"] if g["name"] == h["name"])
        assert got["facts"] == h["facts"]
        assert json.dumps(got["facts"]) == json.dumps(h["facts"])   # key order too
    assert os.path.getsize(v2) < os.path.getsize(FLEET1)


@pytest.mark.parametrize("baseline_schema", [1, 2])
def test_schema_1_and_2_baselines_give_the_same_drift(tmp_path, baseline_schema):
    path = FLEET1 if baseline_schema == 1 else as_schema2(FLEET1, tmp_path)
    baseline = load_baseline(path)
    now = copy.deepcopy(rf.fleet())
    now["db1"]["facts"]["listeners"].append(rf.listener(4242, "socat", 9999, verdict="unexpected"))
    m = build_report(now, baseline=baseline, baseline_path="b.json", generated=WHEN)
    by = {h["name"]: h for h in m["hosts"]}
    assert [(l["port"], l["comm"]) for l in by["db1"]["drift"]["new"]] == [(9999, "socat")]
    # web1's listener had host-side fields (exposure, unit...) in the fixture: drift compares
    # the listener's identity (proto, family, addr, port, comm) only
    assert by["web1"]["drift"] == {"compared": True, "why": None, "new": [], "gone": []}
    assert by["web2"]["drift"]["gone"] == []
    assert m["summary"]["drift"]["hosts_missing"] == ["kube1"]
    assert m["baseline"] == {"path": "b.json", "generated": "2026-11-25T12:00:00Z", "hosts": 8}
    other = build_report(now, baseline=load_baseline(FLEET1), baseline_path="b.json", generated=WHEN)
    assert render(m, "md") == render(other, "md")


def _merged(paths, tmp_path, name):
    out, err = io.StringIO(), io.StringIO()
    assert run(paths + ["-o", str(tmp_path / name), "--no-terminal"], out=out, err=err) == 0, err.getvalue()
    md = open(str(tmp_path / name / "report.md")).read()
    return (open(str(tmp_path / name / "report.json")).read(),
            "\n".join(l for l in md.split("\n") if not l.startswith("Generated ")))


def test_schema_1_slices_merge_and_mixed_schemas_merge_alike(tmp_path):
    v1_json, v1_md = _merged([FLEET1, SLICE1], tmp_path, "v1")
    mixed_json, mixed_md = _merged([FLEET1, as_schema2(SLICE1, tmp_path)], tmp_path, "mixed")
    v2_json, v2_md = _merged([as_schema2(FLEET1, tmp_path), as_schema2(SLICE1, tmp_path)], tmp_path, "v2")
    assert v1_md == mixed_md == v2_md

    def hosts(text):
        return {h["name"]: (h["status"], h["facts"]) for h in plain(loads(text))["hosts"]}
    assert hosts(v1_json) == hosts(mixed_json) == hosts(v2_json)
    merged = hosts(v1_json)
    assert len(merged) == 8 + 4
    for doc in (schema1(FLEET1), schema1(SLICE1)):
        for h in doc["hosts"]:
            assert merged[h["name"]][1] == h["facts"]
    # the record with a key no other record has keeps it, the others stay without it
    web0 = merged["s2-web0"][1]["binds"]
    assert web0[1]["future_field"] == {"nested": [1, 2]} and "future_field" not in web0[0]
    assert all("future_field" not in b for b in merged["s2-web1"][1]["binds"])


def test_schema_2_round_trip_is_exact_for_types_and_missing_keys():
    binds = [rf.bind(1, "a", 1, verdict="unexpected"), rf.bind(2, "b", 2), rf.bind(3, "c", 3)]
    binds[0]["extra"], binds[1]["extra"], binds[2]["extra"] = 1, 1.0, True
    binds[0]["options"]["reuseport"] = 0          # 0, not false: another mapping
    binds[1]["weird"] = {"x": [1, {"y": None}]}   # nested values, one record only
    del binds[2]["pid"]                           # a record without a key
    f = rf.facts("h", binds, [rf.listener(1, "a", 1)])
    m = build_report({"h": {"status": "ok", "facts": f}}, generated=WHEN)
    text = render(m, "json")
    got = plain(loads(text))["hosts"][0]["facts"]
    assert json.dumps(got) == json.dumps(f)
    assert [type(b["extra"]) for b in got["binds"]] == [int, float, bool]
    assert got["binds"][0]["options"]["reuseport"] == 0 and got["binds"][0]["options"]["reuseport"] is not False
    assert got["binds"][1]["options"]["reuseport"] is False
    assert "pid" not in got["binds"][2] and "weird" not in got["binds"][0]
    # and read back into a model, it writes the very same text
    again = build_report(read_results(text, "report.json"), generated=WHEN)
    assert render(again, "json") == text
    assert isinstance(again["hosts"][0]["facts"]["binds"], Records) and again == m


def _damaged(tmp_path, edit):
    m = build_report(rf.fleet(), generated=WHEN)
    doc = json.loads(render(m, "json"))
    edit(doc)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.mark.parametrize("edit, fault", [
    (lambda d: d["tables"]["binds"]["columns"]["port"]["codes"].append(0),
     "tables.binds.columns.port.codes: 15 codes for 14 rows"),
    (lambda d: d["tables"]["binds"]["columns"]["port"]["codes"].__setitem__(0, 99),
     "tables.binds.columns.port.codes: a code is past the"),
    (lambda d: d["tables"]["binds"]["columns"]["port"]["codes"].__setitem__(0, "1"),
     "tables.binds.columns.port.codes: expected codes (integers from 0) or null"),
    (lambda d: d["tables"]["listeners"].__setitem__("columns", []),
     "tables.listeners.columns: expected a mapping of columns"),
    (lambda d: d["hosts"][2]["facts"]["binds"].__setitem__("count", 999),
     "hosts[2].facts.binds: "),
    (lambda d: d["hosts"][2]["facts"]["unexpected"]["binds"].__setitem__("rows", [0, 10 ** 6]),
     "hosts[2].facts.unexpected.binds: "),
])
def test_a_damaged_schema_2_file_names_the_file_and_the_fault(tmp_path, edit, fault):
    path = _damaged(tmp_path, edit)
    with pytest.raises(BindReportError) as e:
        load_baseline(path)
    assert str(e.value).startswith("baseline %s is not a usable report (%s" % (path, fault))
    with pytest.raises(BindReportError) as e:
        load_results([path])
    assert str(e.value).startswith("%s is not a usable report.json (%s" % (path, fault))


@pytest.mark.parametrize("pid, host", [(500, "db1"), (102, "web2")])   # the first host with binds, a later one
def test_a_bad_value_in_a_schema_2_input_fails_that_host_only(tmp_path, pid, host):
    # a tampered column value reaches the same shape check as facts from a host
    def edit(doc):
        col = doc["tables"]["binds"]["columns"]["pid"]
        col["values"][col["values"].index(pid)] = "not a pid"
    path = _damaged(tmp_path, edit)
    m = build_report(load_results([path]), generated=WHEN)
    by = {h["name"]: h for h in m["hosts"]}
    assert by[host]["status"] == "failed" and by[host]["facts"] is None
    assert "binds[0].pid: expected an integer or null, got str" in by[host]["reason"]
    assert [h for h in by if by[h]["status"] == "failed"] == ["broken", host]
    assert by["web1"]["status"] == "ok" and by["web1"]["facts"]["binds"][0]["pid"] == 101
    assert "not a pid" not in render(m, "json")
    annotate_report(m)
    render(m, "html")


@pytest.mark.parametrize("split", [("broken", "db1", "evil"), ("db1", "legacy", "web2")],
                         ids=["in-order", "interleaved"])
def test_merged_slices_write_the_report_json_of_one_run(tmp_path, split):
    # whichever hosts each job slice has, the merge is the one run's file, byte for byte
    fleet = rf.fleet()
    one = render(build_report(fleet, generated=WHEN), "json")
    paths = []
    for i, names in enumerate((split, tuple(n for n in fleet if n not in split))):
        path = tmp_path / ("slice%d.json" % i)
        path.write_text(render(build_report({n: fleet[n] for n in names}, generated=WHEN), "json"))
        paths.append(str(path))
    merged = build_report(load_results(paths), generated=WHEN)
    assert render(merged, "json") == one


# any JSON value a record field may hold (no NaN: NaN != NaN), with 0/false/0.0 kept apart
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, 2.5]),
                     st.sampled_from(["", "a", "b", "1"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["x", "y", "z"]), inner, max_size=3)),
    max_leaves=6)
_records = st.lists(st.dictionaries(st.sampled_from(["fa", "fb", "fc", "fd"]), _values, max_size=4),
                    min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(_records, min_size=1, max_size=4))
def test_any_records_round_trip_exactly_through_the_columns(hosts):
    from bindreport.columns import Table
    from hypothesis import note
    table = Table("t")
    views = [table.add(records) for records in hosts]
    # values and their types, missing keys; a record's keys come in the table's column order
    for records, view in zip(hosts, views):
        assert json.dumps(list(view), sort_keys=True) == json.dumps(records, sort_keys=True)
    # through report.json and back, exactly
    facts = {n: {"status": "ok", "facts": rf.facts("h%d" % n, [])} for n in range(len(hosts))}
    for n, records in enumerate(hosts):
        facts[n]["facts"]["listeners"] = records
    m = build_report({"h%d" % n: r for n, r in facts.items()}, generated=WHEN)
    text = render(m, "json")
    note(text)
    back = plain(loads(text))
    for n, records in enumerate(hosts):
        assert json.dumps(back["hosts"][n]["facts"]["listeners"], sort_keys=True) == json.dumps(records, sort_keys=True)
    assert render(build_report(read_results(text, "r.json"), generated=WHEN), "json") == text


_bind = st.fixed_dictionaries({}, optional={
    "port": st.one_of(st.none(), st.sampled_from([0, 22, 80])), "proto": st.sampled_from([None, "TCP", "UDP"]),
    "count": st.one_of(st.none(), st.integers(0, 5)), "verdict": st.sampled_from([None, "unexpected", "expected"]),
    "error": st.sampled_from([None, "", "EADDRINUSE"]), "comm": st.sampled_from(["a", "b"]),
    "fa": _values})


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_bind, max_size=5), min_size=1, max_size=4))
def test_summary_from_columns_equals_the_summary_from_dicts(hosts):
    # the column paths (counts, top ports, unexpected) against the record-by-record ones
    from bindreport import model as report_model
    fleet = {"h%d" % n: {"status": "ok", "facts": rf.facts("h%d" % n, binds, binds[:2])}
             for n, binds in enumerate(hosts)}
    m = build_report(fleet, generated=WHEN)
    plain_hosts = [dict(h, facts=plain(h["facts"])) for h in m["hosts"]]
    assert m["summary"]["top_ports"] == report_model._top_ports_rows(plain_hosts)
    assert m["summary"]["binds"] == sum((b.get("count") if isinstance(b.get("count"), int) else 1)
                                        for binds in hosts for b in binds)
    assert m["summary"]["unexpected_binds"] == {"h%d" % n: c for n, c in enumerate(
        sum(1 for b in binds if b.get("verdict") == "unexpected") for binds in hosts) if c}
    assert render(build_report(read_results(render(m, "json"), "r.json"), generated=WHEN), "md") == render(m, "md")


def test_history_records_schema_1_and_2_inputs_alike(tmp_path):
    from bindreport.history import open_store
    tables = ("runs", "run_hosts", "listeners", "unexpected_binds", "listener_seen")

    def recorded(paths, name):
        db = str(tmp_path / (name + ".db"))
        out, err = io.StringIO(), io.StringIO()
        assert run(paths + ["-o", str(tmp_path / name), "--no-terminal", "--history", db],
                   out=out, err=err) == 0, err.getvalue()
        with open_store(db) as store:
            return {t: sorted(map(str, (tuple(r.values())[1:] if t != "listener_seen" else tuple(r.values())
                                        for r in store.query("SELECT * FROM " + t))))
                    for t in tables}
    v1 = recorded([FLEET1, SLICE1], "v1")
    v2 = recorded([as_schema2(FLEET1, tmp_path), as_schema2(SLICE1, tmp_path)], "v2")
    for t in tables:
        if t == "runs":   # recorded and generated times differ; the counts do not
            assert [r.split(", ", 3)[-1] for r in v1[t]] == [r.split(", ", 3)[-1] for r in v2[t]]
        elif t != "listener_seen":
            assert v1[t] == v2[t], t
    assert len(v1["unexpected_binds"]) == 3 + 5 + 1 + 3   # db1, evil, kube1, s2-web0..2
    assert len(v1["listeners"]) == 17 + 3


def test_a_lone_surrogate_in_a_schema_2_input_is_cleaned_for_its_host_only(tmp_path):
    # "\udcff" in a report.json (a JSON escape) is what undecodable bytes look like: it becomes
    # U+FFFD for the host whose record holds it, as facts from a host are cleaned
    def edit(doc):
        col = doc["tables"]["binds"]["columns"]["comm"]
        col["values"][col["values"].index("postgres")] = "post\udcffgres"
    path = _damaged(tmp_path, edit)
    m = build_report(load_results([path]), generated=WHEN)
    by = {h["name"]: h for h in m["hosts"]}
    assert [h for h in by if by[h]["status"] == "failed"] == ["broken"]
    assert by["db1"]["facts"]["binds"][0]["comm"] == "post\ufffdgres"
    assert by["web1"]["facts"]["binds"][0]["comm"] == "nginx"
    render(m, "json").encode("utf-8")


@pytest.mark.parametrize("inputs", ["facts", "report.json"])
def test_columns_of_nearly_distinct_values_go_plain_with_the_same_report(tmp_path, monkeypatch, inputs):
    # a field with a new value in most records (a timestamp per record) is kept as its values come,
    # without an index: the same records, the same pages
    from bindreport import columns
    fleet = rf.fleet()
    if inputs == "facts":
        def hosts():
            return fleet
    else:
        def hosts():
            return load_results([FLEET1, SLICE1])
    normal = build_report(hosts(), generated=WHEN)
    monkeypatch.setattr(columns, "PLAIN_VALUES", 0)
    m = build_report(hosts(), generated=WHEN)
    assert any(c.plain for t in m.tables.values() for c in t.columns)
    assert plain(loads(render(m, "json"))) == plain(loads(render(normal, "json")))
    assert [render(m, f) for f in ("md", "html", "junit")] == [render(normal, f) for f in ("md", "html", "junit")]
    again = build_report(read_results(render(m, "json"), "r.json"), generated=WHEN)
    assert plain(loads(render(again, "json"))) == plain(loads(render(normal, "json")))
