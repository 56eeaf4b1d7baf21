"""The scheduling recipe for real: contrib/schedule/bindtrace-audit runs the
trace_bind playbook through ansible-runner (localhost, the real module and
callback) into dated report directories with a history store; run 2 sees a
listener that appeared since run 1; retention keeps the newest run only.
The systemd units are checked with systemd-analyze verify."""
import glob
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from helpers import report_json

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEDULE = os.path.join(ROOT, "contrib", "schedule")
COLLECTIONS = os.path.join(ROOT, "collection")
VENV_BIN = os.path.dirname(sys.executable)


def _runner_dir(base):
    """An ansible-runner private data dir: the collection's playbook on localhost."""
    project = os.path.join(base, "project")
    os.makedirs(project)
    with open(os.path.join(project, "trace_bind.yml"), "w") as f:
        f.write("- ansible.builtin.import_playbook: fleetaudit.bindtrace.trace_bind\n")
    os.makedirs(os.path.join(base, "inventory"))
    with open(os.path.join(base, "inventory", "hosts"), "w") as f:
        f.write("[web]\nlocalhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    os.makedirs(os.path.join(base, "env"))
    with open(os.path.join(base, "env", "envvars"), "w") as f:
        json.dump({"ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
                   "ANSIBLE_CALLBACKS_ENABLED": "fleetaudit.bindtrace.bind_report",
                   "BIND_REPORT_TERMINAL": "false"}, f)
    with open(os.path.join(base, "env", "extravars"), "w") as f:
        json.dump({"bindtrace_duration": 1, "bindtrace_ports": "1-65535", "bindtrace_listeners": True}, f)
    return base


def _audit(runner, reports, history, keep):
    env = dict(os.environ, BINDTRACE_RUNNER_DIR=runner, BINDTRACE_REPORTS=reports, BINDTRACE_HISTORY=history,
               BINDTRACE_KEEP=str(keep), PATH=VENV_BIN + ":" + os.environ["PATH"])
    return subprocess.run([os.path.join(SCHEDULE, "bindtrace-audit")], env=env, capture_output=True,
                          text=True, timeout=300)


def _dated(reports):
    return sorted(n for n in os.listdir(reports) if n != "latest")


def _listeners(report, port):
    host = report["hosts"][0]
    return [l for l in host["facts"]["listeners"] if l["port"] == port]


@pytest.mark.slow
def test_two_scheduled_runs_and_retention(tmp_path):
    runner = _runner_dir(str(tmp_path / "runner"))
    reports, history = str(tmp_path / "reports"), str(tmp_path / "history.db")
    steady = socket.socket(socket.AF_INET, socket.SOCK_STREAM)   # listens through both runs
    steady.bind(("127.0.0.1", 0))
    steady.listen(1)
    steady_port = steady.getsockname()[1]
    try:
        _two_runs(runner, reports, history, steady_port)
    finally:
        steady.close()


def _two_runs(runner, reports, history, steady_port):
    first = _audit(runner, reports, history, keep=5)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    [run1] = _dated(reports)
    assert os.readlink(os.path.join(reports, "latest")) == run1
    report1 = report_json.load(os.path.join(reports, run1, "report.json"))
    assert report1["summary"]["history"]["run_id"] == 1 and report1["summary"]["history"]["previous_run"] is None
    assert report1["hosts"][0]["groups"] == ["web"]

    # a listener appears between the runs
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        second = _audit(runner, reports, history, keep=1)
    finally:
        srv.close()
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    [run2] = _dated(reports)                 # keep=1: run 1's directory is gone
    assert run2 > run1
    assert os.readlink(os.path.join(reports, "latest")) == run2
    report2 = report_json.load(os.path.join(reports, run2, "report.json"))
    # baseline = run 1's report.json, history = the store: both say "new"
    assert report2["baseline"]["generated"] == report1["generated"]
    h = report2["hosts"][0]
    # (other listeners on this shared machine may come and go between the runs too)
    assert [(l["proto"], l["addr"]) for l in h["history"]["new"] if l["port"] == port] == [("TCP", "127.0.0.1")]
    assert [(l["proto"], l["addr"]) for l in h["drift"]["new"] if l["port"] == port] == [("TCP", "127.0.0.1")]
    assert not [l for l in h["history"]["gone"] + h["history"]["new"] if l["port"] == steady_port]
    [kept] = [l for l in h["history"]["listeners"] if l["port"] == steady_port]
    assert (kept["first_seen"], kept["last_seen"], kept["runs"]) == (report1["generated"], report2["generated"], 2)
    [seen] = [l for l in h["history"]["listeners"] if l["port"] == port]
    assert (seen["first_seen"], seen["last_seen"], seen["runs"]) == (report2["generated"],) * 2 + (1,)
    assert _listeners(report2, port)[0]["pid"] == os.getpid()
    assert report2["summary"]["history"]["previous_run"] == report1["generated"]
    assert "removed 1 report directorie(s): %s" % run1 in second.stdout
    # retention also pruned the history store and the runner's artifacts to one run
    out = subprocess.run([os.path.join(VENV_BIN, "bind-report"), "history", "--history", history, "--runs",
                          "-o", "json"], capture_output=True, text=True, check=True).stdout
    assert [r["generated"] for r in json.loads(out)] == [report2["generated"]]
    assert sorted(os.listdir(os.path.join(runner, "artifacts"))) == [run2]
    for name in ("report.json", "report.md", "report.html", "junit.xml"):
        assert oct(os.stat(os.path.join(reports, run2, name)).st_mode & 0o777) == "0o640"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed here")
def test_units_verify(tmp_path):
    """systemd-analyze verify on the units as installed (ExecStart must exist)."""
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    script = str(tmp_path / "bindtrace-audit")
    shutil.copy(os.path.join(SCHEDULE, "bindtrace-audit"), script)
    env_file = str(tmp_path / "audit.env")
    shutil.copy(os.path.join(SCHEDULE, "audit.env.example"), env_file)
    for name in ("bindtrace-audit.service", "bindtrace-audit.timer"):
        text = open(os.path.join(SCHEDULE, name)).read()
        text = text.replace("/usr/local/bin/bindtrace-audit", script).replace("/etc/bindtrace/audit.env", env_file)
        (unit_dir / name).write_text(text)
    res = subprocess.run(["systemd-analyze", "verify", "--man=no"] + sorted(glob.glob(str(unit_dir / "*"))),
                         capture_output=True, text=True)
    problems = [l for l in res.stderr.splitlines() if "bindtrace-audit" in l]
    assert res.returncode == 0 and not problems, res.stderr
