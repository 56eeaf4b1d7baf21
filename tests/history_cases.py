"""Three scheduled runs of a two-host fleet, recorded in a history store
and checked exactly: the same expectations for SQLite and PostgreSQL."""
from bindreport import build_report
from bindreport.history import open_store, record_and_annotate

import report_facts as rf


def _ok(facts):
    return {"status": "ok", "facts": facts, "msg": None}


def three_runs():
    """db1: sshd in every run; redis 6379 appears in run 2, gone in run 3;
    web1 unreachable in run 2."""
    sshd = rf.listener(10, "sshd", 22)
    redis = rf.listener(20, "redis-server", 6379, verdict="unexpected")
    web = rf.listener(30, "nginx", 80)
    runs = []
    for i, (db_l, web_ok) in enumerate((([sshd], True), ([sshd, redis], False), ([sshd], True))):
        hosts = {"db1": _ok(rf.facts("db1", listeners=db_l))}
        hosts["web1"] = _ok(rf.facts("web1", listeners=[web])) if web_ok else {
            "status": "unreachable", "facts": None, "msg": "ssh: timeout"}
        runs.append(build_report(hosts, generated="2026-11-%02dT03:00:00Z" % (10 + i)))
    return runs


def check_three_runs(target):
    models = three_runs()
    for m in models:
        record_and_annotate(m, target)
    first, second, third = models
    assert first["summary"]["history"]["previous_run"] is None
    assert first["summary"]["history"]["run_id"] == 1
    db1 = second["hosts"][0]["history"]
    assert second["hosts"][0]["name"] == "db1"
    assert db1["compared"] is True
    assert db1["new"] == [{"proto": "TCP", "family": 4, "addr": "0.0.0.0", "port": 6379, "comm": "redis-server"}]
    assert db1["gone"] == []
    assert second["summary"]["history"]["new"] == 1 and second["summary"]["history"]["gone"] == 0
    # web1 unreachable in run 2: not compared, nothing new or gone
    assert second["hosts"][1]["history"]["compared"] is False
    assert second["hosts"][1]["history"]["new"] == [] == second["hosts"][1]["history"]["gone"]
    db1 = third["hosts"][0]["history"]
    assert db1["new"] == []
    assert db1["gone"] == [{"proto": "TCP", "family": 4, "addr": "0.0.0.0", "port": 6379, "comm": "redis-server"}]
    seen = {l["port"]: (l["first_seen"], l["last_seen"], l["runs"]) for l in db1["listeners"]}
    assert seen == {22: ("2026-11-10T03:00:00Z", "2026-11-12T03:00:00Z", 3)}
    assert db1["trend"] == [["2026-11-10T03:00:00Z", 0], ["2026-11-11T03:00:00Z", 1], ["2026-11-12T03:00:00Z", 0]]
    web1 = third["hosts"][1]["history"]
    # run 3 compares web1 with run 2, where it was not traced
    assert web1["compared"] is False
    assert web1["trend"] == [["2026-11-10T03:00:00Z", 0], ["2026-11-11T03:00:00Z", None],
                             ["2026-11-12T03:00:00Z", 0]]
    assert {l["port"]: (l["first_seen"], l["last_seen"], l["runs"]) for l in web1["listeners"]} == {
        80: ("2026-11-10T03:00:00Z", "2026-11-12T03:00:00Z", 2)}
    with open_store(target) as store:
        rows = store.search(port=6379)
        assert [(r["host"], r["first_seen"], r["last_seen"], r["runs"], r["verdict"], r["comm"]) for r in rows] == [
            ("db1", "2026-11-11T03:00:00Z", "2026-11-11T03:00:00Z", 1, "unexpected", "redis-server")]
        assert [r["host"] for r in store.search(port=22)] == ["db1"]
        assert store.search(port=6379, since="2026-11-12") == []
        assert len(store.runs()) == 3
    return models
