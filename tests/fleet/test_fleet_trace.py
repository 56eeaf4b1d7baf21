"""End to end over the fleet: the real playbooks/trace_bind.yml, the real
fleetaudit.bindtrace.trace_bind module (real eBPF on this kernel) on 5 sshd
hosts, the real bind_report callback writing report.json / junit.xml.

Every host shares this kernel, so the play runs the module with `netns: host`:
each host's tracer keeps only binds made inside its own network namespace,
which is how each host reports exactly its own binds.
"""
import os
import xml.etree.ElementTree as ET

import pytest

from controller import connection_param
from conftest import run_playbook
from helpers import report_json  # noqa: E402

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

CONNECTIONS = ["ssh", connection_param("paramiko_ssh")]   # paramiko_ssh: ansible-core <= 2.20
WINDOW = 5

SSH_RULE = {"name": "ssh", "port": 22, "proto": "tcp", "comm": "sshd"}
POLICY = {
    "web": [SSH_RULE, {"name": "web apps", "port": "18000-18999", "proto": "tcp", "comm": "python3"}],
    "db": [SSH_RULE, {"name": "databases", "port": "15000-15999", "proto": "tcp", "comm": "python3"}],
}
# host -> TCP binds its workload makes. web = h1, h3, h5; db = h2, h4.
# h3 (web) also binds a database port its group's policy does not allow.
WORKLOADS = {
    "h1": [("0.0.0.0", 18081)],
    "h2": [("0.0.0.0", 15432)],
    "h3": [("0.0.0.0", 18083), ("0.0.0.0", 15433)],
    "h4": [("own", 15434)],   # the host's own address
    "h5": [("127.0.0.1", 18085)],
}
UNEXPECTED = {("h3", 15433)}


@pytest.fixture
def policy(fleet):
    for group, rules in POLICY.items():
        fleet.write_group_vars(group, {"bindtrace_allow": rules})
    yield POLICY
    for group in POLICY:
        os.unlink(os.path.join(fleet.state, "group_vars", group + ".yml"))


def binds_of(fleet, short):
    return [(fleet.host(short)["addr"] if a == "own" else a, p) for a, p in WORKLOADS[short]]


@pytest.fixture
def workloads(fleet, binders):
    return {short: binders(fleet, short, binds_of(fleet, short)) for short in WORKLOADS}


def trace(fleet, tmp_path, connection=None):
    report_dir = str(tmp_path / "reports")
    proc = run_playbook(fleet, report_dir, connection=connection,
                        extra_vars={"bindtrace_duration": WINDOW, "bindtrace_netns": "host"})
    report = report_json.load(os.path.join(report_dir, "report.json"))
    junit = ET.parse(os.path.join(report_dir, "junit.xml")).getroot()
    return proc, report, junit, report_dir


def junit_outcomes(junit):
    """testcase name -> None (passed) or (element tag, type attribute)."""
    out = {}
    for case in junit.iter("testcase"):
        bad = [c for c in case if c.tag in ("failure", "error")]
        out[case.get("name")] = (bad[0].tag, bad[0].get("type")) if bad else None
    return out


def check_traced_host(fleet, host, entry, workload):
    """A host's report entry holds exactly its workload's binds and
    listeners, with the verdicts of its group's policy."""
    name = host["name"]
    assert entry["status"] == "ok", entry
    facts = entry["facts"]
    assert facts["host"]["hostname"] == name
    assert facts["filters"]["netns"] == "host"
    assert facts["lost"] == 0
    short = host["short"]
    want_binds = {("TCP", addr, port, "python3", workload.pid, "r....",
                   "unexpected" if (short, port) in UNEXPECTED else "expected")
                  for addr, port in binds_of(fleet, short)}
    got_binds = {(b["proto"], b["addr"], b["port"], b["comm"], b["pid"], b["opts"], b["verdict"])
                 for b in facts["binds"]}
    assert got_binds == want_binds, name
    assert len(facts["binds"]) == len(want_binds)  # one summary record per bind identity
    for b in facts["binds"]:
        assert b["netns"] == fleet.netns_inode(name)
        assert b["error"] is None and b["count"] >= 1
    want_listeners = {("TCP", host["addr"], 22, "LISTEN", "sshd", host["pid"], "expected")}
    want_listeners |= {("TCP", addr, port, "LISTEN", "python3", workload.pid, v)
                       for _, addr, port, _, _, _, v in want_binds}
    got_listeners = {(l["proto"], l["addr"], l["port"], l["state"], l["comm"], l["pid"], l["verdict"])
                     for l in facts["listeners"]}
    assert got_listeners == want_listeners, name
    assert len(facts["listeners"]) == len(want_listeners)
    n_unexp = sum(1 for s, _ in UNEXPECTED if s == short)
    assert entry["unexpected"] == {"binds": n_unexp, "listeners": n_unexp}


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_five_hosts_report_exactly_their_own_binds(fleet, policy, workloads, tmp_path, connection):
    proc, report, junit, report_dir = trace(fleet, tmp_path, connection)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hosts = {h["name"]: h for h in report["hosts"]}
    assert sorted(hosts) == sorted(h["name"] for h in fleet.hosts)
    for h in fleet.hosts:
        check_traced_host(fleet, h, hosts[h["name"]], workloads[h["short"]])
    n = {h["short"]: h["name"] for h in fleet.hosts}
    s = report["summary"]
    assert (s["hosts"], s["traced"], s["failed"], s["unreachable"]) == (5, 5, 0, 0)
    # exactly one unexpected listener in the whole fleet: h3's 15433
    assert s["unexpected_listeners"] == {n["h3"]: 1}
    assert s["unexpected_binds"] == {n["h3"]: 1}
    unexpected = [(h["name"], l["port"]) for h in report["hosts"] for l in h["facts"]["listeners"]
                  if l["verdict"] == "unexpected"]
    assert unexpected == [(n["h3"], 15433)]
    # JUnit: one case per host, exactly h3 fails
    assert junit_outcomes(junit) == {
        n["h1"]: None, n["h2"]: None, n["h3"]: ("failure", "unexpected-listener"),
        n["h4"]: None, n["h5"]: None}
    suite = junit.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "1", "0")
    # the terminal table names the one unexpected listener
    assert n["h3"] + ": 1" in proc.stdout
    assert sorted(os.listdir(report_dir)) == ["junit.xml", "report.html", "report.json", "report.md"]


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_host_with_killed_sshd_is_unreachable_others_complete(fleet, policy, workloads, tmp_path,
                                                             connection, restore_sshd):
    n = {h["short"]: h["name"] for h in fleet.hosts}
    fleet.kill_sshd("h4")
    proc, report, junit, _ = trace(fleet, tmp_path, connection)
    assert proc.returncode == 4, proc.stdout + proc.stderr  # 4: some host unreachable
    hosts = {h["name"]: h for h in report["hosts"]}
    assert sorted(hosts) == sorted(h["name"] for h in fleet.hosts)
    dead = hosts.pop(n["h4"])
    assert dead["status"] == "unreachable"
    assert dead["facts"] is None
    assert fleet.host("h4")["addr"] in dead["reason"] and "22" in dead["reason"], dead["reason"]  # names where
    for h in fleet.hosts:
        if h["short"] != "h4":
            check_traced_host(fleet, h, hosts[h["name"]], workloads[h["short"]])
    s = report["summary"]
    assert (s["hosts"], s["traced"], s["failed"], s["unreachable"]) == (5, 4, 0, 1)
    assert s["unexpected_listeners"] == {n["h3"]: 1}
    assert junit_outcomes(junit) == {
        n["h1"]: None, n["h2"]: None, n["h3"]: ("failure", "unexpected-listener"),
        n["h4"]: ("error", "unreachable"), n["h5"]: None}
    assert "unreachable: 1" in proc.stdout
