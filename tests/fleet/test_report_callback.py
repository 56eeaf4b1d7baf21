"""The bind_report callback under real ansible-playbook runs over several hosts.

The trace task here is a STAND-IN (fixtures/standin/library/trace_bind.py)
returning canned facts, so the test knows exactly what each host's facts held;
the hosts are localhost aliases (local connection) plus one real unreachable
ssh host (a closed loopback port). The real module end to end:
test_report_e2e.py.
"""
import copy
import os
import re
import stat
import xml.etree.ElementTree as ET

import pytest

from report_run import read, report_facts as rf, run_standin
from helpers import report_json  # noqa: E402

FILES = ["junit.xml", "report.html", "report.json", "report.md"]
REASONS = {"broken": "tracefs is not mounted at /sys/kernel/tracing",
           "legacy": "unsupported: no kernel BTF",
           # Ansible's own words for an ssh port nobody listens on (2.17+; 2.16 with pipelining)
           "gone": ("Connection refused", "Broken pipe")}


def reasons(host):
    return (REASONS[host],) if isinstance(REASONS[host], str) else REASONS[host]


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("report-fleet"))
    fleet = rf.fleet()
    proc = run_standin(work, fleet)
    return work, fleet, proc


def test_run_writes_all_four_private_files(fleet_run):
    work, _, proc = fleet_run
    # ansible-playbook's own rc: failed hosts (2) and an unreachable one (4)
    assert proc.returncode == 4, proc.stderr
    outdir = os.path.join(work, "reports")  # the default: ./reports
    assert sorted(os.listdir(outdir)) == FILES
    for name in FILES:
        assert stat.S_IMODE(os.stat(os.path.join(outdir, name)).st_mode) == 0o640
    assert "bind_report: wrote " + ", ".join(os.path.join(outdir, n) for n in (
        "report.json", "report.md", "report.html", "junit.xml")) in proc.stdout


def test_json_lists_exactly_each_hosts_binds(fleet_run):
    work, fleet, _ = fleet_run
    report = report_json.parse(read(os.path.join(work, "reports", "report.json")))
    assert (report["schema"], report["kind"]) == (2, "bindtrace-fleet-report")
    assert report["generator"] == "fleetaudit.bindtrace.bind_report"
    got = {h["name"]: h for h in report["hosts"]}
    assert sorted(got) == sorted(fleet)
    for name, r in fleet.items():
        assert got[name]["status"] == r["status"]
        if r["status"] == "ok":
            # exactly the facts the host returned, bind for bind
            assert got[name]["facts"]["binds"] == r["facts"]["binds"]
            assert got[name]["facts"] == r["facts"]
        else:
            assert got[name]["facts"] is None
            assert any(r in got[name]["reason"] for r in reasons(name))
    s = report["summary"]
    assert (s["hosts"], s["traced"], s["failed"], s["unreachable"], s["unsupported"]) == (7, 4, 1, 1, 1)
    assert s["unexpected_listeners"] == {"db1": 2, "evil": 5}


def test_junit_fails_exactly_unexpected_and_failed_hosts(fleet_run):
    work, _, _ = fleet_run
    suite = ET.parse(os.path.join(work, "reports", "junit.xml")).getroot().find("testsuite")
    verdicts = {c.get("name"): [ch.tag + ":" + ch.get("type") for ch in c if ch.tag in ("failure", "error")]
                for c in suite.findall("testcase")}
    assert verdicts == {"broken": ["failure:trace-failed"], "db1": ["failure:unexpected-listener"],
                        "evil": ["failure:unexpected-listener"], "gone": ["error:unreachable"],
                        "legacy": ["failure:trace-unsupported"], "web1": [], "web2": []}


def test_failed_and_unreachable_hosts_named_with_reason_everywhere(fleet_run):
    work, _, proc = fleet_run
    texts = {name: read(os.path.join(work, "reports", name)) for name in FILES}
    texts["terminal"] = proc.stdout[proc.stdout.index("HOST  VERDICT"):]
    for fmt, text in texts.items():
        for host in REASONS:
            assert host in text and any(r in text for r in reasons(host)), (fmt, host)
    assert re.search(r"  UNREACHABLE gone: (Failed to connect to the host via ssh|Data could not be sent to "
                     r"remote host)", texts["terminal"]), texts["terminal"][-2000:]


def test_terminal_table_is_inert_and_sorted(fleet_run):
    _, _, proc = fleet_run
    assert "\x1b" not in proc.stdout
    table = proc.stdout[proc.stdout.index("HOST  VERDICT"):proc.stdout.index("BIND REPORT SUMMARY")]
    rows = [l.split()[0] for l in table.strip().splitlines()[1:]]
    assert rows == sorted(rows) and rows.count("evil") == 6 and rows.count("web1") == 2
    assert "<script>alert(1)</script>" in table and "\\x1b[31mred\\x1b[0m" in table


def test_hostile_names_valid_files(fleet_run):
    work, _, _ = fleet_run
    html = read(os.path.join(work, "reports", "report.html"))
    assert "<script>alert(1)</script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    ET.parse(os.path.join(work, "reports", "junit.xml"))
    report_json.parse(read(os.path.join(work, "reports", "report.json")))


def test_drift_against_baseline(tmp_path):
    """Baseline = the same fleet with one listener removed (nc 4444 on db1, so
    it is new now) and one added (redis 6379 on web1, so it is gone now)."""
    before = rf.fleet()
    db = before["db1"]["facts"]
    db["listeners"] = [l for l in db["listeners"] if l["port"] != 4444]
    before["web1"]["facts"]["listeners"].append(rf.listener(700, "redis-server", 6379, addr="127.0.0.1"))
    base_dir = tmp_path / "base"
    base_dir.mkdir()
    first = run_standin(str(base_dir), before, BIND_REPORT_FORMATS="json")
    assert sorted(os.listdir(str(base_dir / "reports"))) == ["report.json"], first.stdout
    baseline = str(base_dir / "reports" / "report.json")

    outdir = str(tmp_path / "now")
    proc = run_standin(str(tmp_path), rf.fleet(), BIND_REPORT_BASELINE=baseline, BIND_REPORT_DIR=outdir)
    report = report_json.parse(read(os.path.join(outdir, "report.json")))
    assert report["baseline"]["path"] == baseline
    drift = {h["name"]: h["drift"] for h in report["hosts"]}
    assert [(l["proto"], l["addr"], l["port"], l["comm"]) for l in drift["db1"]["new"]] == [
        ("TCP", "0.0.0.0", 4444, "nc")]
    assert [(l["proto"], l["addr"], l["port"], l["comm"]) for l in drift["web1"]["gone"]] == [
        ("TCP", "127.0.0.1", 6379, "redis-server")]
    changed = sorted(n for n, d in drift.items() if d and (d["new"] or d["gone"]))
    assert changed == ["db1", "web1"]
    assert report["summary"]["drift"] == {"new": 1, "gone": 1, "hosts_missing": []}
    md = read(os.path.join(outdir, "report.md"))
    assert "| db1 | new since baseline | TCP | 0.0.0.0 | 4444 | nc |" in md
    assert "| web1 | gone since baseline | TCP | 127.0.0.1 | 6379 | redis-server |" in md
    html = read(os.path.join(outdir, "report.html"))
    assert re.search(r"<td>db1</td><td>new since baseline</td><td>TCP</td><td>0\.0\.0\.0</td>"
                     r"<td>4444</td><td>nc</td>", html)
    assert "  web1 gone since baseline: TCP 127.0.0.1:6379 redis-server" in proc.stdout
    assert "  db1 new since baseline: TCP 0.0.0.0:4444 nc" in proc.stdout


def test_missing_baseline_warns_and_still_reports(tmp_path):
    proc = run_standin(str(tmp_path), {"web1": rf.fleet()["web1"]},
                       BIND_REPORT_BASELINE=str(tmp_path / "nope.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # (Ansible wraps warnings at the terminal's width)
    assert "does not exist: give the report.json of an earlier run" in " ".join((proc.stdout + proc.stderr).split())
    assert report_json.parse(read(str(tmp_path / "reports" / "report.json")))["baseline"] is None


def test_ini_options_and_formats(tmp_path):
    """[bind_report] in ansible.cfg: output_dir (relative to the cfg file) and formats."""
    cfg = tmp_path / "ansible.cfg"
    repo_cfg = read(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "ansible.cfg"))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    repo_cfg = repo_cfg.replace("./collection", os.path.join(root, "collection"))
    repo_cfg = re.sub(r"(?m)^inventory = .*$", "", repo_cfg)
    cfg.write_text(repo_cfg + "\n[bind_report]\noutput_dir = ./ini-out\nformats = junit, md\n"
                   "terminal = false\n")
    work = tmp_path / "work"
    work.mkdir()
    proc = run_standin(str(work), {"web1": rf.fleet()["web1"]}, ANSIBLE_CONFIG=str(cfg))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(os.listdir(str(tmp_path / "ini-out"))) == ["junit.xml", "report.md"]
    assert "HOST  VERDICT" not in proc.stdout
    assert not os.path.exists(str(work / "reports"))


def test_no_trace_task_no_report(tmp_path):
    """The callback is enabled repo-wide: other playbooks must not get reports."""
    play = tmp_path / "ping.yml"
    play.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n")
    proc = run_standin(str(tmp_path), {"web1": rf.fleet()["web1"]}, playbook=str(play))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not os.path.exists(str(tmp_path / "reports"))
    assert "BIND REPORT" not in proc.stdout


def test_host_failing_before_the_trace_is_reported(tmp_path):
    play = tmp_path / "pre.yml"
    play.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.command: /bin/false\n      when: inventory_hostname == 'web2'\n"
        "    - trace_bind:\n        canned: \"{{ canned_dir }}/{{ inventory_hostname }}.json\"\n")
    os.symlink(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "standin", "library"),
               str(tmp_path / "library"))
    fleet = {k: copy.deepcopy(v) for k, v in rf.fleet().items() if k in ("web1", "web2")}
    proc = run_standin(str(tmp_path), fleet, playbook=str(play))
    report = report_json.parse(read(str(tmp_path / "reports" / "report.json")))
    got = {h["name"]: (h["status"], h["reason"]) for h in report["hosts"]}
    assert got["web1"] == ("ok", None)
    assert got["web2"][0] == "failed" and got["web2"][1].startswith("task 'ansible.builtin.command': ")
    assert "web2" in proc.stdout


def test_colour_marks_unexpected_rows_and_names_cannot_add_escapes(tmp_path):
    proc = run_standin(str(tmp_path), rf.fleet(), ANSIBLE_FORCE_COLOR="1", ANSIBLE_NOCOLOR="0",
                       BIND_REPORT_FORMATS="json")
    out = proc.stdout[proc.stdout.index("HOST  VERDICT"):]
    red, reset = "\x1b[0;31m", "\x1b[0m"
    lines = out.splitlines()
    for line in lines:
        if "\x1b" in line:
            # Ansible's colour around the whole line, and no other escape in it
            assert line.startswith(red) and line.endswith(reset), repr(line)
            assert line.count("\x1b") == 2, repr(line)
    rows = lines[1:15]
    assert [l.startswith(red) for l in rows] == [
        True, False, True, True, True, True, True, True, True, False, False, False, False, False]
    assert red + "evil  unexpected" in out and "\\x1b[31mred\\x1b[0m" in out


def test_run_never_overwrites_the_baseline_it_reads(tmp_path):
    """The daily job's obvious form: baseline reports/report.json, default output
    directory ./reports. The callback says so when the trace starts and again at
    the end, prints the table (drift included) and writes no file."""
    first = run_standin(str(tmp_path), {"web1": rf.fleet()["web1"]})
    assert first.returncode == 0, first.stdout + first.stderr
    reports = tmp_path / "reports"
    before = {p.name: p.read_bytes() for p in reports.iterdir()}
    proc = run_standin(str(tmp_path), {"web1": rf.fleet()["web1"]}, BIND_REPORT_BASELINE="reports/report.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = ("the baseline %s is the report.json this run would write in %s, and a run never overwrites "
            "the report it compares against: write each run to its own directory (e.g. "
            "BIND_REPORT_DIR=reports/$(date +%%F)) or keep the baseline elsewhere (e.g. cp %s baseline.json, "
            "then BIND_REPORT_BASELINE=baseline.json)" % (reports / "report.json", reports, reports / "report.json"))
    # Ansible wraps long error lines (2.16 also after a hyphen): compare without whitespace
    text = "".join((proc.stdout + proc.stderr).split())
    # when the trace starts (before its window), and at the end
    for line in ("bind_report: %s; this run will write no report files" % said,
                 "bind_report: no report files written: %s" % said):
        assert "".join(line.split()) in text, (proc.stdout + proc.stderr)[-3000:]
    assert "BIND REPORT SUMMARY" in proc.stdout and "bind_report: wrote" not in proc.stdout
    assert {p.name: p.read_bytes() for p in reports.iterdir()} == before
