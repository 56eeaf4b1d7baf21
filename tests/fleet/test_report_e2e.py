"""End to end with the real module: `ansible-playbook playbooks/trace_bind.yml`
against localhost (real eBPF) while a Python workload binds, then the same
playbook through ansible-runner. The report must list exactly the binds the
host's facts held, and those are exactly the workload's binds.
"""
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from report_run import ROOT, VENV_BIN, closed_port, env, read
from helpers import report_json

PLAYBOOK = os.path.join(ROOT, "playbooks", "trace_bind.yml")
WINDOW = 3

# Binds in a loop until killed: TCP 127.0.0.1:P1 listening (SO_REUSEADDR),
# UDP [::1]:P2, TCP 0.0.0.0:P3 (SO_REUSEADDR + SO_REUSEPORT); plus one TCP
# listener on 127.0.0.1:P4 bound before the window and held throughout.
WORKLOAD = r"""
import socket, sys, time
p1, p2, p3, p4 = map(int, sys.argv[1:5])
held = socket.socket()
held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
held.bind(("127.0.0.1", p4))
held.listen()
print("ready", flush=True)
while True:
    a = socket.socket()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    a.bind(("127.0.0.1", p1))
    a.listen()
    b = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    b.bind(("::1", p2))
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    c.bind(("0.0.0.0", p3))
    time.sleep(0.2)
    for s in (a, b, c):
        s.close()
    time.sleep(0.05)
"""


@pytest.fixture
def workloads():
    """start() -> (pid, [P1, P2, P3, P4]) of a new workload on free ports."""
    procs, used = [], set()

    def start():
        ports = []
        while len(ports) < 4:
            p = closed_port()
            if p not in used:
                used.add(p)
                ports.append(p)
        proc = subprocess.Popen(["/usr/bin/python3", "-c", WORKLOAD] + [str(p) for p in ports],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline() == "ready\n"
        return proc.pid, ports

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.fixture
def workload(workloads):
    return workloads()


def extra_vars(pid, ports):
    p1, p2, p3, p4 = ports
    return {
        "bindtrace_duration": WINDOW, "bindtrace_pid": pid, "bindtrace_ports": ports,
        # P2 (udp) and P4 (tcp) are allowed; P1 and P3 nobody expected
        "bindtrace_allow": [{"name": "dns-ish", "port": p2, "proto": "udp"},
                            {"name": "held", "port": p4, "proto": "tcp", "addr": "loopback"}],
    }


def cached_facts(cache_dir, host="localhost"):
    """bind_trace as Ansible's jsonfile fact cache stored it for host
    (ansible-core 2.19 names the file s1_<host> and wraps it in __payload__)."""
    name = next(n for n in os.listdir(cache_dir) if n in (host, "s1_" + host))
    with open(os.path.join(cache_dir, name), encoding="utf-8") as f:
        data = json.load(f)
    if "__payload__" in data:
        data = json.loads(data["__payload__"])
    return data["bind_trace"]


def check_report(report, facts, pid, ports):
    """report.json holds exactly the facts, and the facts exactly the workload."""
    p1, p2, p3, p4 = ports
    assert [h["name"] for h in report["hosts"]] == ["localhost"]
    host = report["hosts"][0]
    assert (host["status"], host["reason"]) == ("ok", None)
    assert host["facts"] == facts
    binds = sorted((b["proto"], b["addr"], b["port"], b["opts"], b["pid"], b["comm"], b["verdict"])
                   for b in facts["binds"])
    assert binds == sorted([
        ("TCP", "127.0.0.1", p1, ".R...", pid, "python3", "unexpected"),
        ("UDP", "::1", p2, ".....", pid, "python3", "expected"),
        ("TCP", "0.0.0.0", p3, "rR...", pid, "python3", "unexpected"),
    ])
    # summary mode: one record per bind identity, counted
    assert all(b["count"] >= 1 for b in facts["binds"])
    assert report["summary"]["bind_records"] == 3
    assert report["summary"]["binds"] == sum(b["count"] for b in facts["binds"])
    held = [l for l in facts["listeners"] if l["port"] == p4]
    assert [(l["proto"], l["addr"], l["pid"], l["comm"], l["verdict"]) for l in held] == [
        ("TCP", "127.0.0.1", pid, "python3", "expected")]


def test_playbook_against_localhost_reports_exactly_the_workload_binds(tmp_path, workload):
    pid, ports = workload
    outdir, cache = str(tmp_path / "reports"), str(tmp_path / "facts")
    # the jsonfile fact cache keeps the module's facts as Ansible received them,
    # independently of the callback
    proc = subprocess.run(
        [os.path.join(VENV_BIN, "ansible-playbook"), PLAYBOOK, "-e", json.dumps(extra_vars(pid, ports))],
        cwd=str(tmp_path), env=env(BIND_REPORT_DIR=outdir, ANSIBLE_CACHE_PLUGIN="jsonfile",
                                   ANSIBLE_CACHE_PLUGIN_CONNECTION=cache),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    facts = cached_facts(cache)
    report = report_json.parse(read(os.path.join(outdir, "report.json")))
    check_report(report, facts, pid, ports)

    p1, p2, p3, p4 = ports
    # the terminal table: sorted by port, HOST and VERDICT first
    table = proc.stdout[proc.stdout.index("HOST       VERDICT"):proc.stdout.index("BIND REPORT SUMMARY")]
    rows = [l.split() for l in table.strip().splitlines()[1:]]
    assert [(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows] == [
        ("localhost", v, str(pid), "python3", proto, addr, str(port), opts)
        for port, proto, addr, opts, v in sorted([
            (p1, "TCP", "127.0.0.1", ".R...", "unexpected"), (p2, "UDP", "::1", ".....", "expected"),
            (p3, "TCP", "0.0.0.0", "rR...", "unexpected")])]
    suite = ET.parse(os.path.join(outdir, "junit.xml")).getroot().find("testsuite")
    assert [c.get("name") for c in suite.findall("testcase")] == ["localhost"]
    assert sorted(os.listdir(outdir)) == ["junit.xml", "report.html", "report.json", "report.md"]


def test_ansible_runner_leaves_report_in_artifacts(tmp_path, workload):
    """The same playbook through ansible-runner (a private data dir, no output
    dir option): the report lands in the job's artifacts directory."""
    pid, ports = workload
    pdd = tmp_path / "runner"
    (pdd / "env").mkdir(parents=True)
    (pdd / "env" / "extravars").write_text(json.dumps(extra_vars(pid, ports)))
    (pdd / "env" / "envvars").write_text(json.dumps({"ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg")}))
    e = env()
    proc = subprocess.run(
        [os.path.join(VENV_BIN, "ansible-runner"), "run", str(pdd), "--project-dir",
         os.path.join(ROOT, "playbooks"), "-p", "trace_bind.yml", "--ident", "audit1"],
        cwd=str(tmp_path), env=e, capture_output=True, text=True, timeout=300)
    artifacts = pdd / "artifacts" / "audit1"
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert read(str(artifacts / "rc")) == "0" and read(str(artifacts / "status")) == "successful"
    for name in ("junit.xml", "report.html", "report.json", "report.md"):
        assert (artifacts / name).is_file()
    assert not (tmp_path / "reports").exists() and not os.path.exists(os.path.join(ROOT, "playbooks", "reports"))
    # ansible-runner keeps a jsonfile fact cache of its own in the artifacts
    facts = cached_facts(str(artifacts / "fact_cache"))
    check_report(report_json.parse(read(str(artifacts / "report.json"))), facts, pid, ports)
    # the table went to the job's stdout too
    assert "BIND REPORT SUMMARY" in read(str(artifacts / "stdout"))


def test_fail_on_unexpected_host_keeps_its_facts_in_the_report(tmp_path, workload):
    """With fail_on_unexpected the task fails, yet the report keeps that host's
    trace and the JUnit case fails on the unexpected listener it names."""
    pid, ports = workload
    p1, p2, p3, p4 = ports
    outdir = str(tmp_path / "reports")
    extra = dict(extra_vars(pid, ports), bindtrace_fail_on_unexpected=True,
                 bindtrace_allow=[{"port": p2, "proto": "udp"}])  # the held P4 listener is unexpected
    proc = subprocess.run(
        [os.path.join(VENV_BIN, "ansible-playbook"), PLAYBOOK, "-e", json.dumps(extra)],
        cwd=str(tmp_path), env=env(BIND_REPORT_DIR=outdir), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    host = report_json.parse(read(os.path.join(outdir, "report.json")))["hosts"][0]
    assert host["status"] == "failed"
    assert "TCP 127.0.0.1:%d python3 pid %d" % (p4, pid) in host["reason"]
    held = [l for l in host["facts"]["listeners"] if l["port"] == p4]
    assert [(l["pid"], l["verdict"]) for l in held] == [(pid, "unexpected")]
    assert host["unexpected"]["listeners"] >= 1
    case = ET.parse(os.path.join(outdir, "junit.xml")).getroot().find("testsuite/testcase")
    failure = case.find("failure")
    assert failure.get("type") == "unexpected-listener"
    assert "unexpected listener: TCP 127.0.0.1:%d python3 (pid %d)" % (p4, pid) in failure.text


def test_real_module_over_several_hosts(tmp_path, workloads):
    """Four inventory hosts: alpha and beta are local aliases each tracing its
    own workload (pid filter) for real; beta's policy leaves its held listener
    unexpected; gamma's trace fails on a bad argument; delta is unreachable."""
    (pid_a, ports_a), (pid_b, ports_b) = workloads(), workloads()
    everything = [{"port": "1-65535"}]
    but_b4 = [{"port": "1-%d" % (ports_b[3] - 1)}, {"port": "%d-65535" % (ports_b[3] + 1)}]
    local = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
             "bindtrace_duration": WINDOW}
    inventory = {"all": {"hosts": {
        "alpha": dict(local, bindtrace_pid=pid_a, bindtrace_ports=ports_a, bindtrace_allow=everything),
        "beta": dict(local, bindtrace_pid=pid_b, bindtrace_ports=ports_b, bindtrace_allow=but_b4),
        "gamma": dict(local, bindtrace_ports="abc"),
        "delta": {"ansible_host": "127.0.0.1", "ansible_port": closed_port(), "ansible_user": "nobody",
                  "ansible_ssh_common_args": "-o ControlMaster=no -o ConnectTimeout=5"},
    }}}
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps(inventory))
    outdir, cache = str(tmp_path / "reports"), str(tmp_path / "facts")
    proc = subprocess.run(
        [os.path.join(VENV_BIN, "ansible-playbook"), "-i", str(inv), PLAYBOOK], cwd=str(tmp_path),
        env=env(BIND_REPORT_DIR=outdir, ANSIBLE_CACHE_PLUGIN="jsonfile",
                ANSIBLE_CACHE_PLUGIN_CONNECTION=cache),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4, proc.stdout + proc.stderr  # a failed and an unreachable host
    assert sorted(os.listdir(outdir)) == ["junit.xml", "report.html", "report.json", "report.md"]
    report = report_json.parse(read(os.path.join(outdir, "report.json")))
    hosts = {h["name"]: h for h in report["hosts"]}
    assert {n: h["status"] for n, h in hosts.items()} == {
        "alpha": "ok", "beta": "ok", "gamma": "failed", "delta": "unreachable"}
    for name, pid, ports in (("alpha", pid_a, ports_a), ("beta", pid_b, ports_b)):
        facts = cached_facts(cache, name)
        assert hosts[name]["facts"] == facts
        p1, p2, p3, p4 = ports
        assert sorted((b["proto"], b["addr"], b["port"], b["pid"]) for b in facts["binds"]) == sorted([
            ("TCP", "127.0.0.1", p1, pid), ("UDP", "::1", p2, pid), ("TCP", "0.0.0.0", p3, pid)])
    assert "abc" in hosts["gamma"]["reason"] and hosts["gamma"]["facts"] is None
    assert "Connection refused" in hosts["delta"]["reason"]
    # only beta's held listener is unexpected in the whole fleet
    assert report["summary"]["unexpected_listeners"] == {"beta": 1}
    [held] = [l for l in hosts["beta"]["facts"]["listeners"] if l["verdict"] == "unexpected"]
    assert (held["addr"], held["port"], held["pid"]) == ("127.0.0.1", ports_b[3], pid_b)
    suite = ET.parse(os.path.join(outdir, "junit.xml")).getroot().find("testsuite")
    verdicts = {c.get("name"): [ch.tag + ":" + ch.get("type") for ch in c if ch.tag in ("failure", "error")]
                for c in suite.findall("testcase")}
    assert verdicts == {"alpha": [], "beta": ["failure:unexpected-listener"],
                        "delta": ["error:unreachable"], "gamma": ["failure:trace-failed"]}
    for fmt in ("report.md", "report.html", "junit.xml"):
        text = read(os.path.join(outdir, fmt))
        assert hosts["gamma"]["reason"][:40] in text.replace("&#39;", "'").replace("&#34;", '"')
        assert "Connection refused" in text


LAUNCH_ONLY = """
- hosts: localhost
  gather_facts: false
  become: true
  tasks:
    - name: Launch, never collect
      fleetaudit.bindtrace.trace_bind:
        duration: 1
        detach: true
        listeners: false
      register: launched
    - name: Collect only when asked
      fleetaudit.bindtrace.trace_bind_collect:
        job: "{{ launched.bindtrace_job }}"
      when: collect | bool
"""


@pytest.mark.parametrize("pipelining", ["True", "False"], ids=["fast-launch", "module-launch"])
def test_detached_launch_collected_or_never_collected(tmp_path, pipelining):
    # pipelining on: the action plugin pipes the library to python3 -c; off: the
    # module itself launches (AnsiballZ), pre-importing what the window needs
    play = tmp_path / "launch.yml"
    play.write_text(LAUNCH_ONLY)
    reports = {}
    for collect in ("false", "true"):
        outdir = str(tmp_path / ("reports-" + collect))
        proc = subprocess.run(
            [os.path.join(VENV_BIN, "ansible-playbook"), str(play), "-e", "collect=" + collect],
            cwd=str(tmp_path), env=env(BIND_REPORT_DIR=outdir, ANSIBLE_PIPELINING=pipelining),
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        reports[collect] = report_json.parse(read(os.path.join(outdir, "report.json")))
    [never] = reports["false"]["hosts"]
    jid = never["reason"].split("launched as job ", 1)[1].split(" ", 1)[0]
    assert (never["name"], never["status"], never["reason"]) == ("localhost", "failed", (
        "the trace was launched as job %s but its result was never collected (the play ended "
        "before its collecting task); the job stops by itself at the end of its window" % jid))
    [done] = reports["true"]["hosts"]
    assert (done["name"], done["status"], done["facts"]["window"]["duration"]) == (
        "localhost", "ok", 1)
    # the uncollected job ends by itself and leaves its result for a day, nothing else
    path = "/run/bindtrace/jobs/%s.json" % jid
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.2)
    with open(path) as f:
        left = json.load(f)
    os.unlink(path)
    assert left["ansible_facts"]["bind_trace"]["window"]["duration"] == 1
