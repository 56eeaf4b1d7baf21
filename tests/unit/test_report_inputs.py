"""bindreport.inputs and bindreport.cli: saved Salt output / report.json ->
host results -> report files. The Salt texts are the ones Salt 3008 returns
(salt/minion.py "ERROR: ...", loader "__virtual__ returned False: ...",
client "Minion did not return. [No response]...")."""
import io
import json
import os
import sys

import pytest

from bindreport import BindReportError, build_report, render
from bindreport.cli import run
from bindreport.inputs import json_documents, load_results, read_results, salt_result

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import report_facts as rf  # noqa: E402
from helpers import report_json  # noqa: E402

NO_RETURN = ("Minion did not return. [No response]\nThe minions may not have all finished running "
             "and any remaining minions will return upon completion. To look up the return data "
             "for this job later, run the following command:\n\nsalt-run jobs.lookup_jid 2026")


def test_concatenated_documents_as_salt_prints_them_without_static():
    web1, db1 = rf.fleet()["web1"]["facts"], rf.fleet()["db1"]["facts"]
    text = json.dumps({"web1": web1}, indent=4) + "\n" + json.dumps({"db1": db1}) + "\n\n"
    assert json_documents(text, "run.json") == [{"web1": web1}, {"db1": db1}]
    assert read_results(text, "run.json") == {
        "web1": {"status": "ok", "facts": web1, "msg": None},
        "db1": {"status": "ok", "facts": db1, "msg": None}}


@pytest.mark.parametrize("value, status, msg", [
    ("ERROR: tracefs is not mounted: mount it", "failed", "tracefs is not mounted: mount it"),
    ("ERROR: unsupported: no usable backend", "unsupported", "unsupported: no usable backend"),
    ("'bindtrace' __virtual__ returned False: unsupported: no usable backend (no BTF)",
     "unsupported", "unsupported: no usable backend (no BTF)"),
    ("'bindtrace' __virtual__ returned False: not root: loading eBPF programs needs root",
     "failed", "not root: loading eBPF programs needs root"),
    ("'bindtrace.trace' is not available.", "failed", "'bindtrace.trace' is not available."),
    (NO_RETURN, "unreachable", NO_RETURN),
    ("Minion did not return. [Not connected]", "unreachable", "Minion did not return. [Not connected]"),
    (False, "failed", "false"),
    ({"retcode": 1}, "failed", '{"retcode": 1}'),
])
def test_salt_texts_classified_like_ansible_results(value, status, msg):
    assert salt_result(value) == {"status": status, "facts": None, "msg": msg}


def test_salt_call_local_takes_the_facts_hostname_or_the_file_name():
    facts = rf.facts("web7")
    assert read_results(json.dumps({"local": facts}), "/x/any.json") == {
        "web7": {"status": "ok", "facts": facts, "msg": None}}
    assert read_results(json.dumps({"local": "ERROR: boom"}), "/saved/db3.json") == {
        "db3": {"status": "failed", "facts": None, "msg": "boom"}}


def test_a_report_json_gives_back_its_hosts():
    model = build_report(rf.fleet())
    text = render(model, "json")   # schema 2: records as columns
    hosts = read_results(text, "report.json")
    assert sorted(hosts) == sorted(rf.fleet())
    assert hosts["gone"] == {"status": "unreachable", "facts": None,
                             "msg": rf.fleet()["gone"]["msg"]}
    again = build_report(hosts, generated=model["generated"], generator=model["generator"])
    assert again == model


@pytest.mark.parametrize("text, message", [
    ("", "in.json holds no JSON: a failed salt-call prints its error on stderr, not as JSON; save "
         "the output of a run that returned"),
    ("{\"a\": ", "in.json is not Salt JSON output or a report.json (Expecting value: line 1 "
                 "column 7 (char 6))"),
    ("[1, 2]", "in.json: expected a JSON object of {minion: result}, got list"),
    ('{"kind": "bindtrace-fleet-report", "schema": 9, "hosts": []}',
     "in.json has report schema 9, this version reads schemas 1 and 2"),
])
def test_unreadable_inputs_name_the_file_and_the_fix(text, message):
    with pytest.raises(BindReportError) as e:
        read_results(text, "in.json")
    assert str(e.value).startswith(message)


def test_a_host_in_two_inputs_is_an_error(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"web1": rf.facts("web1")}))
    b.write_text(json.dumps({"local": rf.facts("web1")}))
    with pytest.raises(BindReportError) as e:
        load_results([str(a), str(b)])
    assert str(e.value) == ("host 'web1' is in both %s and %s: give each host's result once" % (a, b))


def test_cli_writes_the_chosen_files_and_warns_on_a_missing_baseline(tmp_path):
    src = tmp_path / "salt.json"
    src.write_text(json.dumps({"web1": rf.fleet()["web1"]["facts"], "broken": "ERROR: boom"}))
    out, err = io.StringIO(), io.StringIO()
    rc = run([str(src), "-o", str(tmp_path / "r"), "-f", "junit,json", "--no-terminal",
              "--baseline", str(tmp_path / "nope.json")], out=out, err=err)
    assert rc == 0
    assert sorted(os.listdir(str(tmp_path / "r"))) == ["junit.xml", "report.json"]
    assert err.getvalue() == ("bind-report: warning: baseline %s does not exist: give the "
                              "report.json of an earlier run, or unset the baseline option; the "
                              "report has no drift section\n" % (tmp_path / "nope.json"))
    # in the order asked for
    assert out.getvalue() == "bind-report: wrote %s, %s\n" % (tmp_path / "r" / "junit.xml",
                                                             tmp_path / "r" / "report.json")
    report = report_json.load(tmp_path / "r" / "report.json")
    assert report["generator"] == "bind-report" and report["baseline"] is None
    assert [(h["name"], h["status"], h["reason"]) for h in report["hosts"]] == [
        ("broken", "failed", "boom"), ("web1", "ok", None)]


def test_cli_reads_standard_input(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"web1": rf.facts("web1")})))
    out, err = io.StringIO(), io.StringIO()
    assert run(["-", "-o", str(tmp_path), "-f", "md"], out=out, err=err) == 0
    assert out.getvalue().startswith("HOST  VERDICT")
    assert "| web1 |" in (tmp_path / "report.md").read_text()


def test_salt_result_and_comment_are_read_and_dropped():
    """bindtrace.trace's result/comment: result false is a failed host whose
    reason is the comment, facts kept; neither key enters the facts."""
    facts = rf.fleet()["web1"]["facts"]
    ok = dict(facts, result=True, comment="2 listeners and 3 binds on web1 in the 10 s window")
    assert salt_result(ok) == {"status": "ok", "facts": facts, "msg": None}
    why = "unexpected listeners on web1: TCP 0.0.0.0:8080 nc pid 7. No allow rule matches them"
    assert salt_result(dict(facts, result=False, comment=why)) == {
        "status": "failed", "facts": facts, "msg": why}


# what Salt 3008.4 prints for one scheduled run (trimmed to the keys read)
def _list_job(facts):
    return {"jid": "20261201150712345678", "Function": "bindtrace.trace",
            "Arguments": [{"duration": 1}], "Target": "web1", "Target-type": "glob",
            "User": "root", "StartTime": "2026, Dec 01 15:07:12.345678",
            "Minions": ["web1"], "Result": {"web1": {"return": facts, "retcode": 0,
                                                     "success": True}}}


def _event(minion, facts):
    return {"cmd": "_return", "id": minion, "fun": "bindtrace.trace", "fun_args": [],
            "schedule": "bindtrace-audit", "jid": "20261201150712345678", "pid": 77,
            "return": facts, "retcode": 0, "success": True,
            "_stamp": "2026-12-01T15:07:13.000000"}


def test_jobs_list_job_output():
    facts = rf.fleet()["web1"]["facts"]
    text = json.dumps(_list_job(facts), indent=4)
    assert read_results(text, "list_job.json") == {"web1": {"status": "ok", "facts": facts,
                                                            "msg": None}}


def test_event_bus_returns_as_state_event_prints_them_one_host_or_many():
    web1, db1 = rf.fleet()["web1"]["facts"], rf.fleet()["db1"]["facts"]
    lines = ["salt/job/20261201150712345678/ret/%s\t%s" % (m, json.dumps(_event(m, f)))
             for m, f in (("web1", web1), ("db1", db1))]
    other = dict(_event("web1", {"comment": "Added job", "result": True}), fun="schedule.add")
    lines.insert(0, "salt/job/20261201150700000000/ret/web1\t%s" % json.dumps(other))
    assert read_results("\n".join(lines) + "\n", "events.txt") == {
        "web1": {"status": "ok", "facts": web1, "msg": None},
        "db1": {"status": "ok", "facts": db1, "msg": None}}
    # the event's data alone (an event returner, or --out=json of one event)
    assert read_results(json.dumps(_event("web1", "ERROR: tracefs is not mounted")), "e.json") == {
        "web1": {"status": "failed", "facts": None, "msg": "tracefs is not mounted"}}
