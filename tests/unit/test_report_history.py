"""History store (SQLite here; PostgreSQL in tests/fleet/test_history_postgres.py),
fleet outliers, metrics and retention, on generated facts."""
import io
import json
import os
import sqlite3

import pytest

from bindreport import build_report
from bindreport.annotate import annotate_report
from bindreport.cli import run as cli_run
from bindreport.history import SCHEMA_VERSION, open_store, redact_target
from bindreport.history_cli import prune_reports
from bindreport.metrics import render_metrics
from bindreport.model import BindReportError
from bindreport.outliers import find_outliers, parse_threshold, set_groups
from bindreport.render import render
from bindreport.terminal import render_terminal

import report_facts as rf
from history_cases import check_three_runs
from helpers import report_json  # noqa: E402

class Cli(object):
    """bind-report run in this process, its output captured (its default
    streams are bound at import, so cli cannot see them)."""

    def __init__(self):
        self.out, self.err = io.StringIO(), io.StringIO()

    def run(self, argv):
        return cli_run(argv, out=self.out, err=self.err)

    def readouterr(self):
        out, err = self.out.getvalue(), self.err.getvalue()
        for stream in (self.out, self.err):
            stream.seek(0)
            stream.truncate()
        return type("Captured", (), {"out": out, "err": err})


@pytest.fixture
def cli():
    return Cli()


def _ok(facts):
    return {"status": "ok", "facts": facts, "msg": None}


def test_three_runs_sqlite(tmp_path):
    models = check_three_runs(str(tmp_path / "h.db"))
    text = render_terminal(models[1])
    assert "since the previous run (2026-11-10T03:00:00Z): 1 new, 0 gone" in text
    assert "db1 new since previous run: TCP 0.0.0.0:6379 redis-server" in text
    md = render(models[2], "md")
    assert "| db1 | gone since previous run | TCP | 0.0.0.0 | 6379 | redis-server |" in md
    assert "| db1 | 0 1 0 |" in md
    html = render(models[2], "html")
    assert '<span id="sum-history-gone">1</span>' in html
    report = json.loads(render(models[2], "json"))
    assert report["summary"]["history"]["runs"] == 3
    assert report["hosts"][0]["history"]["gone"][0]["port"] == 6379


def test_history_cli_sqlite(tmp_path, cli):
    db = str(tmp_path / "h.db")
    check_three_runs(db)
    assert cli.run(["history", "--history", db, "--port", "6379", "-o", "json"]) == 0
    rows = json.loads(cli.readouterr().out)
    assert [(r["host"], r["port"], r["first_seen"], r["last_seen"], r["runs"]) for r in rows] == [
        ("db1", 6379, "2026-11-11T03:00:00Z", "2026-11-11T03:00:00Z", 1)]
    assert cli.run(["history", "--history", db, "--host", "web1"]) == 0
    out = cli.readouterr().out.splitlines()
    assert out[0].split() == ["HOST", "PROTO", "ADDR", "PORT", "COMM", "EXE", "UNIT", "CONTAINER", "FIRST",
                              "SEEN", "LAST", "SEEN", "RUNS", "VERDICT"]
    assert out[1].split() == ["web1", "TCP", "0.0.0.0", "80", "nginx", "2026-11-10T03:00:00Z",
                              "2026-11-12T03:00:00Z", "2"]
    assert cli.run(["history", "--history", db, "--runs", "-o", "json"]) == 0
    runs = json.loads(cli.readouterr().out)
    assert [(r["id"], r["unexpected_listeners"], r["unreachable"]) for r in runs] == [(1, 0, 0), (2, 1, 1), (3, 0, 0)]
    assert cli.run(["history", "--history", db, "--until", "2026-11-10", "--port", "22", "-o", "json"]) == 0
    assert [r["runs"] for r in json.loads(cli.readouterr().out)] == [1]


def test_store_errors(tmp_path, cli):
    bad = tmp_path / "not.db"
    bad.write_text("this is not sqlite " * 100)
    with pytest.raises(BindReportError, match="is not usable"):
        open_store(str(bad))
    newer = str(tmp_path / "newer.db")
    open_store(newer).close()
    with sqlite3.connect(newer) as c:
        c.execute("INSERT INTO bindtrace_schema VALUES (?, 'x')", (SCHEMA_VERSION + 1,))
    with pytest.raises(BindReportError, match="schema version %d, this bindtrace knows up to %d: upgrade"
                       % (SCHEMA_VERSION + 1, SCHEMA_VERSION)):
        open_store(newer)
    assert cli.run(["history", "--port", "1"]) == 2
    assert "no history store: give --history" in cli.readouterr().err
    assert redact_target("postgresql://audit:s3cret@127.0.0.1:5433/bt") == "postgresql://audit:***@127.0.0.1:5433/bt"


def _group_fleet(extra_on="web3"):
    hosts = {}
    for i in range(1, 6):
        name = "web%d" % i
        ls = [rf.listener(10, "sshd", 22), rf.listener(11, "nginx", 80)]
        if name == extra_on:
            ls.append(rf.listener(12, "redis-server", 6379, addr="10.0.0.3"))
        hosts[name] = _ok(rf.facts(name, listeners=ls))
    hosts["db1"] = _ok(rf.facts("db1", listeners=[rf.listener(10, "sshd", 22), rf.listener(13, "postgres", 5432)]))
    groups = {"web%d" % i: ["all", "web"] for i in range(1, 6)}
    groups["db1"] = ["db"]
    return hosts, groups


def test_outliers_one_of_five():
    hosts, groups = _group_fleet()
    model = build_report(hosts)
    annotate_report(model, groups=groups)
    o = model["summary"]["outliers"]
    assert o["flags"] == 1 and o["hosts"] == ["web3"]
    assert o["groups"] == [{"group": "web", "hosts": 5, "outliers": [
        {"proto": "TCP", "port": 6379, "present": 1, "of": 5, "hosts": ["web3"], "comms": ["redis-server"]}]}]
    by_name = {h["name"]: h for h in model["hosts"]}
    assert by_name["web3"]["outliers"] == [{"group": "web", "proto": "TCP", "port": 6379, "present": 1, "of": 5}]
    assert all(not h["outliers"] for n, h in by_name.items() if n != "web3")
    assert by_name["web1"]["groups"] == ["web"]   # "all" is not a group to compare in
    assert "web: TCP 6379 on 1 of 5 hosts (redis-server): web3" in render_terminal(model)
    # not a failure unless asked for
    junit = render(model, "junit")
    assert "fleet-outlier" not in junit
    model["summary"]["outliers"]["fail"] = True
    assert 'type="fleet-outlier"' in render(model, "junit")


def test_outlier_threshold_and_small_groups():
    hosts, groups = _group_fleet()
    model = build_report(hosts)
    set_groups(model, groups)
    assert find_outliers(model, threshold=0.1) == 0           # 1 of 5 = 20% > 10%
    assert find_outliers(model, threshold=0.2, min_hosts=6) == 0
    assert parse_threshold("25%") == 0.25 and parse_threshold(None) == 0.2
    for bad in ("0", "0.5", "x", "-1"):
        with pytest.raises(BindReportError, match="between 0 and 0.5"):
            parse_threshold(bad)


def test_metrics_parse_exact():
    from prometheus_client.parser import text_string_to_metric_families
    hosts, groups = _group_fleet()
    hosts["db2"] = {"status": "unreachable", "facts": None, "msg": "timeout"}
    hosts["web2"]["facts"]["listeners"][1]["verdict"] = "unexpected"
    hosts["web2"]["facts"]["lost"] = 7
    model = build_report(hosts, generated="2026-11-25T12:00:00Z")
    annotate_report(model, groups=groups)
    samples = {}
    for family in text_string_to_metric_families(render_metrics(model)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert samples[("bindtrace_report_generated_timestamp_seconds", ())] == 1795608000.0
    assert samples[("bindtrace_hosts", (("status", "ok"),))] == 6
    assert samples[("bindtrace_hosts", (("status", "unreachable"),))] == 1
    assert samples[("bindtrace_host_up", (("host", "db2"),))] == 0
    assert samples[("bindtrace_host_status", (("host", "db2"), ("status", "unreachable")))] == 1
    assert samples[("bindtrace_host_unexpected_listeners", (("host", "web2"),))] == 1
    assert samples[("bindtrace_host_unexpected_listeners", (("host", "web1"),))] == 0
    assert samples[("bindtrace_host_lost_events", (("host", "web2"),))] == 7
    assert samples[("bindtrace_host_outlier_listeners", (("host", "web3"),))] == 1
    assert samples[("bindtrace_port_hosts", (("port", "22"), ("proto", "TCP")))] == 6
    assert samples[("bindtrace_port_hosts", (("port", "80"), ("proto", "TCP")))] == 5
    assert samples[("bindtrace_port_hosts", (("port", "6379"), ("proto", "TCP")))] == 1


def test_prune_dated_dirs(tmp_path):
    names = ["20261101T030000Z", "20261102T030000Z", "20261103T030000Z", "20261104T030000Z"]
    for n in names:
        (tmp_path / n).mkdir()
        (tmp_path / n / "report.json").write_text("{}")
    (tmp_path / "keepme").mkdir()
    os.symlink("20261101T030000Z", str(tmp_path / "latest"))   # latest is never removed
    assert prune_reports(str(tmp_path), 2) == ["20261102T030000Z"]
    assert sorted(os.listdir(str(tmp_path))) == ["20261101T030000Z", "20261103T030000Z", "20261104T030000Z",
                                                 "keepme", "latest"]


def test_prune_history(tmp_path, cli):
    db = str(tmp_path / "h.db")
    check_three_runs(db)
    assert cli.run(["prune", "--history", db, "--keep", "2"]) == 0
    assert "removed 1 history run(s): 1" in cli.readouterr().out
    with open_store(db) as store:
        assert [r["id"] for r in store.runs()] == [2, 3]
        # first seen now means within the history kept
        assert [(r["first_seen"], r["runs"]) for r in store.search(port=22)] == [("2026-11-11T03:00:00Z", 2)]
    assert cli.run(["prune", "--history", db, "--keep", "0"]) == 2
    assert "--keep must be at least 1" in cli.readouterr().err


def test_cli_groups_outliers_and_exit(tmp_path, cli):
    hosts, groups = _group_fleet()
    results = {name: entry["facts"] for name, entry in hosts.items()}   # salt --out=json --static shape
    run = tmp_path / "run.json"
    run.write_text(json.dumps(results))
    inv = tmp_path / "inv.json"   # ansible-inventory --list shape, with a child group
    inv.write_text(json.dumps({"_meta": {"hostvars": {}}, "all": {"children": ["ungrouped", "fleet"]},
                               "fleet": {"children": ["web"]},
                               "web": {"hosts": ["web%d" % i for i in range(1, 6)]}, "db": {"hosts": ["db1"]}}))
    out = str(tmp_path / "out")
    assert cli.run([str(run), "--groups", str(inv), "-o", out, "--no-terminal", "-f", "json,prom"]) == 0
    report = report_json.load(os.path.join(out, "report.json"))
    assert report["summary"]["outliers"]["hosts"] == ["web3"]
    # "fleet" holds the same five web hosts (through its child): both groups flag web3
    assert [g["group"] for g in report["summary"]["outliers"]["groups"]] == ["fleet", "web"]
    assert os.path.exists(os.path.join(out, "report.prom"))
    cli.readouterr()
    assert cli.run([str(run), "--groups", str(inv), "-o", out, "--no-terminal", "--fail-on-outlier"]) == 1
    assert "bind-report: 2 fleet outlier(s) on web3" in cli.readouterr().err
    # a report.json input keeps its hosts' groups: re-rendering flags the same host
    out2 = str(tmp_path / "out2")
    assert cli.run([os.path.join(out, "report.json"), "-o", out2, "--no-terminal", "-f", "json"]) == 0
    again = report_json.load(os.path.join(out2, "report.json"))
    assert again["summary"]["outliers"] == report["summary"]["outliers"]
