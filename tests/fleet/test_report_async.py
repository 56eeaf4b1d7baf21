"""The bind_report callback reads each host's result where it arrives when the
trace is launched with async + poll 0 and collected with async_status (the
collection playbook's shape), and states the fleet window in every format.

The trace task is the canned STAND-IN (fixtures/standin/library/trace_bind.py)
so the exact facts are known; the real module and playbook over the sshd
fleet: test_fleet_window.py."""
import os
import xml.etree.ElementTree as ET

import pytest

from report_run import HERE, read, report_facts as rf, run_standin
from helpers import report_json  # noqa: E402

ASYNC_PLAYBOOK = os.path.join(HERE, "fixtures", "standin", "standin_async.yml")


def late_fleet():
    """rf.fleet() (windows 12:00:00-12:00:02) with web2 tracing 12:00:05-12:00:07."""
    fleet = rf.fleet()
    fleet["web2"]["facts"]["window"] = {"start": "2026-11-25T12:00:05Z",
                                        "end": "2026-11-25T12:00:07Z", "duration": 2.0}
    return fleet


@pytest.fixture(scope="module")
def async_run(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("report-async"))
    fleet = late_fleet()
    proc = run_standin(work, fleet, playbook=ASYNC_PLAYBOOK, BIND_REPORT_FORMATS="json,md,html,junit,prom")
    return work, fleet, proc


def test_results_collected_by_async_status_are_the_hosts_results(async_run):
    work, fleet, proc = async_run
    assert proc.returncode == 4, proc.stderr   # failed hosts and an unreachable one
    report = report_json.parse(read(os.path.join(work, "reports", "report.json")))
    got = {h["name"]: h for h in report["hosts"]}
    assert sorted(got) == sorted(fleet)
    for name, r in fleet.items():
        assert got[name]["status"] == r["status"], name
        if r["status"] == "ok":
            assert got[name]["facts"] == r["facts"]
        else:
            assert got[name]["facts"] is None and r["msg"].split(":")[0] in got[name]["reason"]


def test_fleet_window_and_the_late_host_in_every_format(async_run):
    work, _, proc = async_run
    report = report_json.parse(read(os.path.join(work, "reports", "report.json")))
    assert report["summary"]["window"] == {
        "start": "2026-11-25T12:00:00Z", "end": "2026-11-25T12:00:07Z", "start_spread": 5.0,
        "common": None, "hosts": 4, "not_overlapping": ["web2"]}
    line = ("fleet window: 2026-11-25T12:00:00Z .. 2026-11-25T12:00:07Z, start spread 5.000 s "
            "over 4 hosts")
    flag = "window did not overlap the fleet's on 1 host: web2"
    assert line + "\n" in proc.stdout and flag in proc.stdout
    md = read(os.path.join(work, "reports", "report.md"))
    assert line in md and "**" + flag in md
    html = read(os.path.join(work, "reports", "report.html"))
    assert '<p class="meta" id="sum-window">%s</p>' % line in html
    assert '<p class="meta unexpected" id="sum-not-overlapping">' + flag.replace("'", "&#39;") in html
    suite = ET.parse(os.path.join(work, "reports", "junit.xml")).getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert (props["fleet_window_start"], props["fleet_window_end"], props["fleet_window_start_spread"],
            props["fleet_window_not_overlapping"]) == (
        "2026-11-25T12:00:00Z", "2026-11-25T12:00:07Z", "5.0", "web2")
    outs = {c.get("name"): c.find("system-out").text for c in suite.findall("testcase")}
    assert "window: 2026-11-25T12:00:05Z .. 2026-11-25T12:00:07Z" in outs["web2"]
    assert "window did not overlap the fleet's" in outs["web2"]
    assert "window did not overlap" not in outs["web1"]
    prom = read(os.path.join(work, "reports", "report.prom"))
    assert "bindtrace_fleet_window_start_spread_seconds 5.0\n" in prom
    assert 'bindtrace_host_window_outside_fleet{host="web2"} 1.0\n' in prom
    assert 'bindtrace_host_window_outside_fleet{host="web1"} 0.0\n' in prom


def test_launched_but_never_collected_is_a_failure_saying_so(tmp_path):
    run_standin(str(tmp_path), late_fleet(), playbook=ASYNC_PLAYBOOK, extra_args=["-e", "collect=false"])
    report = report_json.parse(read(os.path.join(str(tmp_path), "reports", "report.json")))
    got = {h["name"]: (h["status"], h["reason"]) for h in report["hosts"]}
    assert got.pop("gone")[0] == "unreachable"
    assert sorted(got) == ["broken", "db1", "evil", "legacy", "web1", "web2"]
    for name, (status, reason) in got.items():
        assert status == "failed", name
        assert reason.startswith("the trace was launched as job j") and \
            "its result was never collected" in reason, reason
    assert report["summary"]["window"] is None
