"""The fleet report model: statuses, summary, top ports, drift, baseline checks."""
import json

import pytest

import report_facts as rf
from helpers import report_rows
from bindreport import (BindReportError, build_report, classify_result, load_baseline, render)


def model(**kw):
    return build_report(rf.fleet(), generated="2026-11-25T12:00:00Z", **kw)


def test_classify_ok_failed_unsupported_unreachable():
    facts = rf.facts("h1", [rf.bind(1, "nc", 4242)])
    assert classify_result({"ansible_facts": {"bind_trace": facts}}, "ok") == {
        "status": "ok", "facts": facts, "msg": None}
    assert classify_result({"msg": "not root: run with become"}, "failed") == {
        "status": "failed", "facts": None, "msg": "not root: run with become"}
    assert classify_result({"msg": "unsupported: no BTF", "failed": True}) == {
        "status": "unsupported", "facts": None, "msg": "unsupported: no BTF"}
    assert classify_result({"msg": "Task failed: Failed to connect to the host via ssh"},
                           "unreachable") == {
        "status": "unreachable", "facts": None, "msg": "Failed to connect to the host via ssh"}
    # ok but without facts is a failure of the task, not silently an empty host
    assert classify_result({"changed": False}, "ok")["status"] == "failed"
    # fail_on_unexpected: the task failed, the facts it returned are kept
    got = classify_result({"msg": "unexpected listener", "ansible_facts": {"bind_trace": facts}},
                          "failed")
    assert got["status"] == "failed" and got["facts"] == facts


def test_hosts_sorted_with_status_and_reason():
    m = model()
    assert [(h["name"], h["status"]) for h in m["hosts"]] == [
        ("broken", "failed"), ("db1", "ok"), ("evil", "ok"), ("gone", "unreachable"),
        ("legacy", "unsupported"), ("web1", "ok"), ("web2", "ok")]
    by = {h["name"]: h for h in m["hosts"]}
    assert by["gone"]["reason"].endswith("port 9: Connection refused")
    assert by["legacy"]["reason"].startswith("unsupported: no kernel BTF")
    assert by["web1"]["reason"] is None and by["gone"]["facts"] is None
    # the facts are kept exactly as the host returned them
    assert by["db1"]["facts"] == rf.fleet()["db1"]["facts"]


def test_summary_counts():
    s = model()["summary"]
    assert (s["hosts"], s["traced"], s["failed"], s["unreachable"], s["unsupported"]) == (7, 4, 1, 1, 1)
    # binds: web 2x(2+2) + db 3+1+1+1 + evil 6x1 ; records 2+2+4+6
    assert (s["binds"], s["bind_records"]) == (20, 14)
    assert (s["listeners"], s["unique_listeners"]) == (15, 15)
    assert s["unexpected_listeners"] == {"db1": 2, "evil": 5}
    # failed binds (EADDRINUSE) have a verdict too, and count as unexpected binds
    assert s["unexpected_binds"] == {"db1": 3, "evil": 5}
    assert s["drift"] is None


def test_unique_listeners_dedup_same_socket_address():
    # two workers sharing one SO_REUSEPORT address are one listener
    f = rf.facts("h", listeners=[rf.listener(10, "w", 80), rf.listener(11, "w", 80),
                                 rf.listener(10, "w", 80, addr="::")])
    s = build_report({"h": {"status": "ok", "facts": f}})["summary"]
    assert (s["listeners"], s["unique_listeners"]) == (3, 2)


def test_top_ports_ranked_by_hosts_then_listeners_then_binds():
    top = model()["summary"]["top_ports"]
    assert [(p["proto"], p["port"], p["hosts"], p["listeners"], p["binds"]) for p in top[:5]] == [
        ("TCP", 22, 3, 3, 0), ("TCP", 80, 2, 2, 4), ("TCP", 443, 2, 2, 4), ("TCP", 4444, 1, 1, 3),
        ("TCP", 5432, 1, 1, 1)]
    assert len(top) == 10
    # a failed bind (EADDRINUSE on 5432) opened nothing: not counted
    assert next(p for p in top if p["port"] == 5432)["binds"] == 1


def test_bind_rows_sorted_by_host_then_port_and_k8s_columns_only_when_present():
    m = model()
    rows = report_rows.bind_rows(m)
    assert [(r["host"], r["port"]) for r in rows][:4] == [("db1", 4444), ("db1", 5432), ("db1", 5432),
                                                         ("db1", 8000)]
    titles = [t for t, _ in report_rows.bind_columns(rows)]
    # only plain containers here: the container name column, no other K8S.*
    assert titles == ["HOST", "VERDICT", "K8S.CONTAINERNAME", "PID", "COMM", "PROTO", "ADDR", "PORT",
                      "OPTS", "IF", "ERROR"]
    plain = build_report({"h": {"status": "ok", "facts": rf.facts("h", [rf.bind(1, "nc", 4242)])}})
    prow = report_rows.bind_rows(plain)
    assert [t for t, _ in report_rows.bind_columns(prow)] == [
        "HOST", "VERDICT", "PID", "COMM", "PROTO", "ADDR", "PORT", "OPTS", "IF"]
    k8s = {"node": "n1", "namespace": "default", "pod": "test-pod", "container": "test-pod"}
    kube = build_report({"h": {"status": "ok", "facts": rf.facts("h", [rf.bind(1, "nc", 4242, k8s=k8s)])}})
    krows = report_rows.bind_rows(kube)
    assert [t for t, _ in report_rows.bind_columns(krows)][2:6] == [
        "K8S.NODE", "K8S.NAMESPACE", "K8S.PODNAME", "K8S.CONTAINERNAME"]
    assert (krows[0]["k8s_pod"], krows[0]["k8s_container"]) == ("test-pod", "test-pod")


def _baseline_from(fleet):
    """An earlier run's report.json, as the callback wrote it."""
    return json.loads(render(build_report(fleet, generated="2026-11-24T12:00:00Z"), "json"))


def test_drift_new_and_gone_per_host(tmp_path):
    before = rf.fleet()
    db = before["db1"]["facts"]
    # the baseline had a redis listener that is gone now, and lacked nc on 4444
    db["listeners"] = [l for l in db["listeners"] if l["port"] != 4444]
    db["listeners"].append(rf.listener(700, "redis-server", 6379, addr="127.0.0.1", verdict="expected"))
    path = tmp_path / "report.json"
    path.write_text(json.dumps(_baseline_from(before)))
    m = model(baseline=load_baseline(str(path)), baseline_path=str(path))
    by = {h["name"]: h for h in m["hosts"]}
    d = by["db1"]["drift"]
    assert [(l["proto"], l["addr"], l["port"], l["comm"]) for l in d["new"]] == [
        ("TCP", "0.0.0.0", 4444, "nc")]
    assert [(l["proto"], l["addr"], l["port"], l["comm"]) for l in d["gone"]] == [
        ("TCP", "127.0.0.1", 6379, "redis-server")]
    assert by["web1"]["drift"] == {"compared": True, "why": None, "new": [], "gone": []}
    assert by["gone"]["drift"]["compared"] is False
    assert m["summary"]["drift"] == {"new": 1, "gone": 1, "hosts_missing": []}
    assert m["baseline"] == {"path": str(path), "generated": "2026-11-24T12:00:00Z", "hosts": 7}


def test_drift_restart_with_new_pid_is_not_drift_but_new_program_is():
    before = {"h": {"status": "ok", "facts": rf.facts("h", listeners=[rf.listener(10, "sshd", 22),
                                                                       rf.listener(11, "nginx", 80)])}}
    now = {"h": {"status": "ok", "facts": rf.facts("h", listeners=[rf.listener(99, "sshd", 22),
                                                                    rf.listener(12, "evil", 80)])},
           "newhost": {"status": "ok", "facts": rf.facts("newhost", listeners=[rf.listener(5, "x", 1)])}}
    m = build_report(now, baseline=_baseline_from(dict(before, old={"status": "unreachable",
                                                                     "msg": "down"})))
    by = {h["name"]: h for h in m["hosts"]}
    assert [(l["port"], l["comm"]) for l in by["h"]["drift"]["new"]] == [(80, "evil")]
    assert [(l["port"], l["comm"]) for l in by["h"]["drift"]["gone"]] == [(80, "nginx")]
    assert by["newhost"]["drift"]["why"] == "host not in baseline"
    assert [l["port"] for l in by["newhost"]["drift"]["new"]] == [1]
    assert m["summary"]["drift"]["hosts_missing"] == ["old"]


def test_baseline_errors_name_cause_and_fix(tmp_path):
    with pytest.raises(BindReportError, match="does not exist: give the report.json"):
        load_baseline(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BindReportError, match="not a readable JSON report"):
        load_baseline(str(bad))
    other = tmp_path / "other.json"
    other.write_text('{"hosts": []}')
    with pytest.raises(BindReportError, match="not a bindtrace fleet report.json"):
        load_baseline(str(other))
    future = tmp_path / "future.json"
    future.write_text('{"kind": "bindtrace-fleet-report", "schema": 99}')
    with pytest.raises(BindReportError, match="schema 99, this version reads schemas 1 and 2"):
        load_baseline(str(future))


def test_unknown_status_rejected():
    with pytest.raises(BindReportError, match="status 'weird'"):
        build_report({"h": {"status": "weird"}})


def test_lone_surrogates_become_replacement_characters():
    # undecodable bytes smuggled as surrogates must not break UTF-8 output
    f = rf.facts("h", [rf.bind(1, "a\udcffb", 1)])
    m = build_report({"h\udcfe": {"status": "ok", "facts": f}})
    assert m["hosts"][0]["name"] == "h\ufffd"
    assert m["hosts"][0]["facts"]["binds"][0]["comm"] == "a\ufffdb"
    render(m, "json").encode("utf-8")
