"""Salt as a Salt user runs it: a real salt-master and salt-minion (Salt 3008.4
from PyPI, loopback, throw-away dirs and ports, started and stopped by PID),
installed by the README's master route (salt://_modules + salt://_states,
saltutil.sync_all, the project's wheel pip-installed into the minion's
Python), allow rules from pillar, the compliance state, a schedule, the job
cache, and bind-report over what Salt returns.

The workloads run in a private network namespace and every trace filters on
it (netns=INODE): the listeners other people's tests open on this machine
are outside what is judged."""
import json
import os
import re
import time

import pytest

from module_run import EXACT, LISTEN, Workload, assert_nothing_left, bpf_ids_of, free_port
from helpers.procs import descendants
from salt_master import NetNS, SaltPair, build_wheel
from salt_run import ROOT, bind_report, ensure_salt
from helpers import report_json  # noqa: E402

STATE_ID = "bindtrace_|-bind-compliance_|-bind-compliance_|-compliant"


@pytest.fixture(scope="module")
def salt():
    ensure_salt()
    pair, ns = SaltPair(), NetNS()
    try:
        pair.start()
        pair.installed = install(pair)
        pair.ns = ns
        pair.pillar("top.sls", "base:\n  '*':\n    - bindtrace\n")
        yield pair
    finally:
        pair.stop()
        ns.delete()
    assert_nothing_left()


def install(pair):
    """The README's master route -> what each step returned."""
    pair.put("_modules/bindtrace.py", os.path.join(ROOT, "modules", "bindtrace.py"))
    pair.put("_states/bindtrace.py", os.path.join(ROOT, "states", "bindtrace.py"))
    steps = {"sync": pair.salt_json("saltutil.sync_all")}
    steps["before"] = pair.salt("bindtrace.trace", "duration=1", check=False)
    wheel = build_wheel(ROOT, pair.dir)
    name = os.path.basename(wheel)
    pair.put("bindtrace/" + name, wheel)
    on_minion = os.path.join(pair.dir, "minion", name)
    steps["get"] = pair.salt_json("cp.get_file", "salt://bindtrace/" + name, on_minion)
    # jinja2 is Salt's own dependency: the minion's Python has it
    steps["pip"] = pair.salt_json("pip.install", on_minion, "target=" + pair.site, "no_deps=True",
                                  timeout=300)
    steps["resync"] = pair.salt_json("saltutil.sync_all")
    steps["functions"] = pair.salt_json("sys.list_functions", "bindtrace")
    return steps


def set_pillar(pair, rules):
    pair.pillar("bindtrace.sls", json.dumps({"bindtrace": {"allow": rules}}, indent=1))
    assert pair.salt_json("saltutil.refresh_pillar") is True


def netns_workload(pair, code, *args):
    return Workload(code, *args, prefix=pair.ns.prefix)


def wait_minion_tracer(pair, timeout=120):
    """Until a process of the minion's session holds a BPF link (the job's tracer)."""
    minion = pair.procs["minion"].pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in descendants(minion):
            if any(kind == "link_id" for kind, _ in bpf_ids_of(pid)):
                time.sleep(0.2)
                return
        time.sleep(0.05)
    raise AssertionError("the minion's tracer never attached")


def lookup_jid(pair, jid, timeout=120):
    """salt-run jobs.lookup_jid JID --out=json, once the minion has returned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = pair.run("jobs.lookup_jid", jid)
        data = json.loads(res.stdout or "{}")
        if pair.id in data:
            return res.stdout, data
        time.sleep(1)
    raise AssertionError("job %s never returned" % jid)


def state_apply(pair, *args):
    """state.apply bindcheck ARGS --out=json -> (exit code, the state's return)."""
    res = pair.salt("state.apply", "bindcheck", *args, check=False)
    data = json.loads(res.stdout)
    return res.returncode, data[pair.id][STATE_ID]


def write_state(pair, **extra):
    lines = ["bind-compliance:", "  bindtrace.compliant:", "    - duration: 1",
             "    - netns: %d" % pair.ns.inode]
    lines += ["    - %s: %s" % (k, json.dumps(v)) for k, v in extra.items()]
    pair.put("bindcheck.sls", "\n".join(lines) + "\n")


def listener_cache(pair):
    path = os.path.join(pair.minion_cachedir, "bindtrace", "listeners-bind-compliance.json")
    with open(path, "rb") as f:
        return f.read()


def test_master_route_sync_all_then_the_wheel_into_the_minions_python(salt):
    steps = salt.installed
    assert (steps["sync"]["modules"], steps["sync"]["states"]) == (["modules.bindtrace"],
                                                                    ["states.bindtrace"])
    # synced before the library is installed: Salt says why, once, on the master
    before = steps["before"]
    assert before.returncode == 1
    reason = json.loads(before.stdout)[salt.id]
    assert reason.startswith("'bindtrace' __virtual__ returned False: the bindtrace host library "
                             "is not importable (No module named 'bindtrace'): install the project "
                             "into the minion's Python (salt-pip install")
    assert before.stdout.count("__virtual__ returned False") == 1
    assert steps["pip"]["retcode"] == 0
    assert "Successfully installed bindtrace-0.1.0" in steps["pip"]["stdout"]
    assert steps["functions"] == ["bindtrace.compliance", "bindtrace.trace"]


def test_trace_with_pillar_rules_returned_through_the_job_cache(salt, tmp_path):
    """salt --async, the workload binds in the window, salt-run jobs.lookup_jid:
    the exact binds, verdicts from the pillar's rules, result/comment naming
    what no rule allows, and bind-report over the job cache's JSON."""
    p1, p2 = free_port(), free_port()
    set_pillar(salt, [{"name": "tcp-here", "proto": "tcp", "port": p1}])
    res = salt.salt("bindtrace.trace", "duration=3", "mode=events", "netns=%d" % salt.ns.inode,
                    extra=("--async",), out="txt")
    jid = re.search(r"job ID: (\d+)", res.stdout).group(1)
    wait_minion_tracer(salt)
    work = netns_workload(salt, EXACT, p1, p2)
    try:
        text, data = lookup_jid(salt, jid)
    finally:
        work.stop()
    facts = data[salt.id]
    assert facts["policy"] == {"rules": 1}
    assert facts["filters"]["netns"] == salt.ns.inode
    assert [(b["pid"], b["proto"], b["addr"], b["port"], b["error"], b["verdict"])
            for b in facts["binds"]] == [(work.pid, "TCP", "127.0.0.1", p1, None, "expected"),
                                         (work.pid, "UDP", "::1", p2, None, "unexpected")]
    assert [(l["pid"], l["proto"], l["port"], l["inode"], l["verdict"])
            for l in facts["listeners"]] == [
        (work.pid, "TCP", p1, work.info["inodes"][0], "expected"),
        (work.pid, "UDP", p2, work.info["inodes"][1], "unexpected")]
    assert facts["result"] is True   # fail_on_unexpected is off: the job succeeds
    host = facts["host"]["hostname"]
    assert facts["comment"] == (
        "2 listeners and 2 binds on %s in the 3.0 s window; unexpected: 1 listener, 1 bind "
        "(unexpected listeners on %s: UDP [::1]:%d python3 pid %d; unexpected binds on %s: "
        "UDP [::1]:%d python3 pid %d. No allow rule matches them: stop them, or add a rule to "
        "allow (e.g. {port: N, proto: tcp, comm: NAME}))" % (host, host, p2, work.pid, host, p2,
                                                            work.pid))
    saved = tmp_path / "lookup_jid.json"
    saved.write_text(text)
    out = tmp_path / "reports"
    rep = bind_report(str(saved), "-o", str(out))
    assert rep.returncode == 0, rep.stderr
    report = report_json.load(out / "report.json")
    assert [(h["name"], h["status"]) for h in report["hosts"]] == [(salt.id, "ok")]
    assert [(l["proto"], l["port"]) for l in report["hosts"][0]["facts"]["unexpected"]["listeners"]
            ] == [("UDP", p2)]
    assert "result" not in report["hosts"][0]["facts"]


def test_fail_on_unexpected_reaches_the_master(salt, tmp_path):
    """The reason is in the return (result False, comment) and the exit code
    is 1; under --static Salt 3008.4 drops every minion's exit code, so there
    the return's result/comment carry it, and bind-report --fail-on-unexpected
    gives the pipeline its exit code."""
    p1, p2 = free_port(), free_port()
    set_pillar(salt, [{"proto": "tcp", "port": p1}])
    work = netns_workload(salt, EXACT, p1, p2)
    try:
        plain = salt.salt("bindtrace.trace", "duration=1", "netns=%d" % salt.ns.inode,
                          "fail_on_unexpected=true", check=False)
        static = salt.salt("bindtrace.trace", "duration=1", "netns=%d" % salt.ns.inode,
                           "fail_on_unexpected=true", extra=("--static",), check=False)
        # an argument overrides the pillar: no rule at all allows nothing
        override = salt.salt_json("bindtrace.trace", "duration=1", "netns=%d" % salt.ns.inode,
                                  "allow=[]")
    finally:
        work.stop()
    assert plain.returncode == 1
    assert "ERROR: Minions returned with non-zero exit code" in plain.stderr
    for facts in (json.loads(plain.stdout)[salt.id], json.loads(static.stdout)[salt.id]):
        host = facts["host"]["hostname"]
        assert facts["result"] is False
        assert facts["comment"] == (
            "unexpected listeners on %s: UDP [::1]:%d python3 pid %d. No allow rule matches "
            "them: stop them, or add a rule to allow (e.g. {port: N, proto: tcp, comm: NAME})"
            % (host, p2, work.pid))
    saved = tmp_path / "static.json"
    saved.write_text(static.stdout)
    rep = bind_report(str(saved), "-o", str(tmp_path / "reports"), "--fail-on-unexpected")
    assert rep.returncode == 1
    assert "bind-report: unexpected listeners or binds on %s" % salt.id in rep.stderr
    host = report_json.load(tmp_path / "reports" / "report.json")["hosts"][0]
    assert (host["status"], host["reason"]) == ("failed", facts["comment"])
    assert override["policy"] == {"rules": 0}
    assert [l["verdict"] for l in override["listeners"]] == ["unexpected", "unexpected"]


def test_compliance_state_fails_names_the_listener_then_passes_and_test_changes_nothing(salt):
    p1, p2, p3 = free_port(), free_port(), free_port()
    set_pillar(salt, [{"proto": "tcp", "port": p1}])
    write_state(salt)
    work = netns_workload(salt, EXACT, p1, p2)
    extra = None
    try:
        # an unexpected listener: the state fails and names it; first run records the set
        code, st = state_apply(salt)
        host = json.loads(salt.salt("grains.get", "host").stdout)[salt.id]
        assert code == 1 and st["result"] is False
        assert ("unexpected listeners on %s: UDP [::1]:%d python3 pid %d." % (host, p2, work.pid)
                in st["comment"])
        listening = ["TCP 127.0.0.1:%d python3" % p1, "UDP [::1]:%d python3" % p2]
        assert st["changes"] == {"new": listening, "gone": []}
        assert st["comment"].endswith("; first run: 2 listeners recorded")

        # the pillar allows it: the state passes, the listener set did not change
        set_pillar(salt, [{"proto": "tcp", "port": p1}, {"proto": "udp", "addr": "loopback"},
                          {"port": p3}])
        code, st = state_apply(salt)
        assert (code, st["result"], st["changes"]) == (0, True, {})
        assert st["comment"] == ("2 listeners and 0 binds on %s in the 1.0 s window, all allowed "
                                 "by the 3 allow rules" % host)

        # a new (allowed) listener: test=True predicts the drift and records nothing
        extra = netns_workload(salt, LISTEN, p3)
        before = listener_cache(salt)
        code, st = state_apply(salt, "test=True")
        new = {"new": ["TCP 127.0.0.1:%d python3" % p3], "gone": []}
        assert (code, st["result"], st["changes"]) == (0, None, new)
        assert st["comment"].endswith("(test: the listener set was not recorded)")
        assert listener_cache(salt) == before
        # the real run then records it, once
        code, st = state_apply(salt)
        assert (code, st["result"], st["changes"]) == (0, True, new)
        assert listener_cache(salt) != before
        code, st = state_apply(salt)
        assert (code, st["result"], st["changes"]) == (0, True, {})

        # state arguments override the pillar
        write_state(salt, allow=[{"port": p3}])
        code, st = state_apply(salt)
        assert (code, st["result"]) == (1, False)
        assert "TCP 127.0.0.1:%d python3 pid %d" % (p1, work.pid) in st["comment"]
    finally:
        work.stop()
        if extra is not None:
            extra.stop()


def test_state_without_any_rules_fails_without_tracing(salt):
    salt.pillar("bindtrace.sls", "bindtrace: {}\n")
    assert salt.salt_json("saltutil.refresh_pillar") is True
    write_state(salt)
    code, st = state_apply(salt)
    assert (code, st["result"], st["changes"]) == (1, False, {})
    assert st["comment"] == ("no allow rules: set the pillar key bindtrace:allow to a list of "
                             "rules, or pass allow=[...] (an empty list allows nothing)")


def test_scheduled_run_reaches_the_job_cache_and_bind_report(salt, tmp_path):
    """The README's schedule recipe: schedule.add on the minion, the returns land
    in the master's job cache; jobs.list_jobs finds them, jobs.list_job and
    jobs.lookup_jid give them to bind-report, and so does the event bus
    (salt-run state.event)."""
    p1, p2 = free_port(), free_port()
    set_pillar(salt, [{"proto": "tcp", "port": p1}])
    work = netns_workload(salt, EXACT, p1, p2)
    events = tmp_path / "events.txt"
    bus = salt.run_popen(str(events), "state.event", "salt/job/*/ret/%s" % salt.id)
    try:
        added = salt.salt_json("schedule.add", "bindtrace-audit", "function=bindtrace.trace",
                               "seconds=5", "job_kwargs={duration: 1, netns: %d}" % salt.ns.inode)
        assert added["result"] is True, added
        deadline, jid = time.monotonic() + 120, None
        while jid is None and time.monotonic() < deadline:
            time.sleep(2)
            jobs = json.loads(salt.run("jobs.list_jobs", "search_function=bindtrace.trace",
                                       "search_target=%s" % salt.id).stdout)
            scheduled = sorted(j for j, job in jobs.items()
                               if job["Arguments"] == [{"duration": 1, "netns": salt.ns.inode}])
            jid = scheduled[0] if scheduled else None
        assert jid, "no scheduled run in the job cache"
        lookup, data = lookup_jid(salt, jid)
        listed = salt.run("jobs.list_job", jid).stdout
        # what the bus printed by now, whole lines (stopping salt-run later prints a traceback)
        while '"fun": "bindtrace.trace"' not in events.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        seen = events.read_text()
        seen = seen[:seen.rindex("\n") + 1]
    finally:
        salt.salt_json("schedule.delete", "bindtrace-audit")
        work.stop()
        salt.stop_popen(bus)
    facts = data[salt.id]
    assert [(l["proto"], l["port"], l["verdict"]) for l in facts["listeners"]] == [
        ("TCP", p1, "expected"), ("UDP", p2, "unexpected")]
    # the event bus carried schedule.add's return too: bind-report takes the trace's only
    assert seen.startswith("salt/job/") and '"fun": "schedule.add"' in seen
    for name, text in (("lookup_jid.json", lookup), ("list_job.json", listed),
                       ("state_event.txt", seen)):
        saved = tmp_path / ("saved-" + name)
        saved.write_text(text)
        out = tmp_path / ("report-" + name.split(".")[0])
        rep = bind_report(str(saved), "-o", str(out))
        assert rep.returncode == 0, rep.stderr
        report = report_json.load(out / "report.json")
        assert [(h["name"], h["status"]) for h in report["hosts"]] == [(salt.id, "ok")]
        assert [(l["proto"], l["port"]) for l in
                report["hosts"][0]["facts"]["unexpected"]["listeners"]] == [("UDP", p2)]
        assert "UDP" in rep.stdout and str(p2) in rep.stdout


def test_static_with_a_30s_window_and_a_longer_timeout_returns_everything(salt):
    """The README: give -t longer than the window. salt --static -t 60 waits the
    30 s window out and prints the whole return."""
    p1, p2 = free_port(), free_port()
    set_pillar(salt, [{"proto": "tcp", "port": p1}])
    work = netns_workload(salt, EXACT, p1, p2)
    try:
        res = salt.salt("bindtrace.trace", "duration=30", "netns=%d" % salt.ns.inode,
                        timeout=60, extra=("--static",))
    finally:
        work.stop()
    facts = json.loads(res.stdout)[salt.id]
    assert facts["window"]["duration"] == 30.0
    assert [(l["proto"], l["port"], l["verdict"]) for l in facts["listeners"]] == [
        ("TCP", p1, "expected"), ("UDP", p2, "unexpected")]
    assert facts["result"] is True
