"""Issue 7 through the fleet: a containerised listener seen by the module on a
test host (an sshd host of the fleet, reached over ssh) shows in the fleet
report with its container's name. The fleet host shares this kernel, so with
`netns: all` its tracer sees the container's bind; `containername` keeps only
that container (ig's -c)."""
import os
import sys

import pytest

from conftest import run_playbook

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "kernel"))
from dockerimg import docker, ensure_images, remove  # noqa: E402
from helpers import report_json  # noqa: E402

pytestmark = [pytest.mark.fleet, pytest.mark.docker, pytest.mark.slow]

NAME = "bt-fleet-listener"
PORT = 4291


@pytest.fixture
def late_listener():
    bb, _ = ensure_images()
    remove(NAME)
    # listens afresh every second, so binds fall inside the play's window however
    # long ansible takes to start on a loaded machine
    docker("run", "-d", "--name", NAME, bb, "sh", "-c",
           "while :; do timeout 1 nc -l -p %d; done" % PORT)
    cid = docker("inspect", "-f", "{{.Id}}", NAME).stdout.strip()
    yield cid
    remove(NAME)


def test_container_listener_in_the_fleet_report(fleet, late_listener, tmp_path):
    host = fleet.host("h2")["name"]
    report_dir = str(tmp_path / "reports")
    proc = run_playbook(fleet, report_dir, extra_vars={
        "target": host, "bindtrace_duration": 6, "bindtrace_netns": "all",
        "bindtrace_containername": NAME, "bindtrace_allow": [{"port": 22, "comm": "sshd"}]})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = report_json.load(os.path.join(report_dir, "report.json"))
    hosts = {h["name"]: h for h in report["hosts"]}
    assert list(hosts) == [host]
    binds = hosts[host]["facts"]["binds"]
    assert binds  # one summary record per nc process of the window
    assert {(b["comm"], b["proto"], b["addr"], b["port"], b["opts"], b["verdict"])
            for b in binds} == {("nc", "TCP", "::", PORT, ".R...", "unexpected")}
    assert {(b["container"]["name"], b["container"]["id"], b["container"]["runtime"])
            for b in binds} == {(NAME, late_listener, "docker")}
    # the terminal table shows the container column with its name, on the host's row
    rows = [l for l in proc.stdout.splitlines() if l.startswith(host) and str(PORT) in l]
    assert rows and all(NAME in r for r in rows), proc.stdout[-3000:]
    with open(os.path.join(report_dir, "report.html")) as f:
        assert NAME in f.read()
