"""fleetaudit.bindtrace.trace_bind through the real `ansible-playbook` against
localhost (local connection) on the real kernel: exact binds, the CLI's fields,
summary and events modes, listeners, policy, async, and cleanup after every run."""
import glob
import json
import os
import signal
import subprocess

import pytest

from bindtrace.listeners import LISTENER_KEYS
from bindtrace.record import BIND_FACT_KEYS
from controller import core_version
from module_run import (EXACT, LISTEN, LOOP, ROOT, VENV_BIN, Play, Workload, ansible_env,
                        assert_nothing_left, free_port, run, trace_bind_cli, trace_task, wait_attached)

FACT_KEYS = {"schema", "host", "window", "mode", "filters", "binds", "listeners", "lost",
             "dropped", "truncated", "summary_full", "unexpected", "counts", "missing_fields",
             "policy", "snapshot", "listens_full"}
SNAPSHOT_NEW_KEYS = LISTENER_KEYS[LISTENER_KEYS.index("verdict") + 1:]


def facts_of(result):
    assert "ansible_facts" in result, result
    return result["ansible_facts"]["bind_trace"]


def test_localhost_facts_hold_exactly_the_workloads_binds_with_the_cli_fields():
    p1, p2 = free_port(), free_port()
    ports = "%d,%d" % (p1, p2)
    play = Play([trace_task(duration=6, mode="events", ports=[p1, p2], ignore_errors=False)])
    cli_ids = set()
    cli = trace_bind_cli(play.tag + "-cli", "--ports", ports, "-i=false", "--timeout", "300")
    wait_attached(play.tag + "-cli", cli, cli_ids)
    play.wait_attached()
    work = Workload(EXACT, p1, p2)
    try:
        play.wait()
        assert play.proc.returncode == 0, play.err + play.out[-3000:]
        res = play.results()["trace"]
    finally:
        work.stop()
    cli.send_signal(signal.SIGINT)       # the CLI's window ends after the module's
    cli_out, _ = cli.communicate(timeout=60)
    assert cli.returncode == 0
    facts = facts_of(res)
    assert res["changed"] is False
    assert set(facts) == FACT_KEYS
    assert facts["schema"] == 1 and facts["mode"] == "events"
    assert facts["host"]["backend"] == "core"
    assert facts["filters"] == {"pid": None, "ports": ports if p1 < p2 else "%d,%d" % (p2, p1),
                                "ignore_errors": False, "comm": None, "uid": None,
                                "netns": "all", "containername": None, "scope": "all"}
    binds = facts["binds"]
    w = work.info
    assert w["err"] == "EADDRINUSE"
    assert [(b["pid"], b["tid"], b["ppid"], b["proto"], b["family"], b["addr"], b["port"],
             b["requested_addr"], b["requested_port"], b["error"], b["ret"], b["opts"], b["comm"],
             b["uid"], b["user"], b["netns"], b["mntns"], b["verdict"]) for b in binds] == [
        (w["pid"], w["pid"], w["ppid"], "TCP", 4, "127.0.0.1", p1, "127.0.0.1", p1, None, 0,
         ".....", "python3", 0, "root", w["netns"], w["mntns"], None),
        (w["pid"], w["pid"], w["ppid"], "UDP", 6, "::1", p2, "::1", p2, None, 0,
         ".....", "python3", 0, "root", w["netns"], w["mntns"], None),
        # a failed bind leaves the socket unbound: addr/port are the socket's, 0.0.0.0:0
        (w["pid"], w["pid"], w["ppid"], "TCP", 4, "0.0.0.0", 0, "127.0.0.1", p1, "EADDRINUSE",
         -98, ".....", "python3", 0, "root", w["netns"], w["mntns"], None)]
    # the CLI saw the same binds: same fields, same values (each tracer stamps its own time)
    cli_events = [json.loads(line) for line in cli_out.splitlines()]
    assert len(cli_events) == 3
    for fact, ev in zip(binds, cli_events):
        assert set(fact) == set(ev) | set(BIND_FACT_KEYS)
        strip = lambda d: {k: v for k, v in d.items()   # noqa: E731
                           if k != "timestamp" and k not in BIND_FACT_KEYS}
        assert strip(fact) == strip(ev)
        assert (fact["exe"], fact["exposure"]) == (w["exe"], "loopback")
    assert facts["counts"] == {"binds": 3, "records": 3, "listeners": len(facts["listeners"]),
                               "client_binds": 0, "unexpected_binds": 0,
                               "unexpected_listeners": 0, "omitted_binds": 0,
                               "omitted_listeners": 0, "lost": 0, "dropped": 0}
    assert (facts["lost"], facts["dropped"], facts["truncated"]) == (0, 0, False)
    assert facts["unexpected"] == {"binds": [], "listeners": []}
    assert facts["policy"] == {"rules": 0}
    # the snapshot at the end of the window has the workload's two sockets
    mine = [l for l in facts["listeners"] if l["pid"] == w["pid"]]
    # beyond the /proc/net fields: exposure, identity, from socket diagnostics
    assert facts["snapshot"]["source"] == "sock_diag"
    NEW = [{k: l[k] for k in l if k in SNAPSHOT_NEW_KEYS} for l in mine]
    assert [(n["v6only"], n["exposure"], n["exposure_families"], n["exe"], n["seen"],
             n["listened"]) for n in NEW] == [
        (None, "loopback", [4], w["exe"], "snapshot", True),   # it listened within the window
        (True, "loopback", [6], w["exe"], "snapshot", None)]   # UDP: no listen()
    assert mine == [
        {"proto": "TCP", "family": 4, "addr": "127.0.0.1", "port": p1, "state": "LISTEN",
         "inode": w["inodes"][0], "uid": 0, "user": "root", "pid": w["pid"], "comm": "python3",
         "netns": w["netns"], "container": mine[0]["container"], "k8s": mine[0]["k8s"],
         "verdict": None, **NEW[0]},
        {"proto": "UDP", "family": 6, "addr": "::1", "port": p2, "state": "UNCONN",
         "inode": w["inodes"][1], "uid": 0, "user": "root", "pid": w["pid"], "comm": "python3",
         "netns": w["netns"], "container": mine[1]["container"], "k8s": mine[1]["k8s"],
         "verdict": None, **NEW[1]}]
    assert_nothing_left(play)


def test_summary_100000_binds_one_record_under_async_poll():
    port = free_port()
    n = 100000
    task = trace_task(duration=20, ports=str(port))
    task.update({"async": 120, "poll": 1})
    play = Play([task])
    play.wait_attached()
    work = Workload(LOOP, port, n)
    work.stop()
    play.wait()
    assert play.proc.returncode == 0, play.err + play.out[-2000:]
    facts = facts_of(play.results()["trace"])
    assert facts["mode"] == "summary"
    assert len(facts["binds"]) == 1
    rec = facts["binds"][0]
    assert (rec["pid"], rec["tid"], rec["count"], rec["port"], rec["addr"], rec["opts"],
            rec["options"]["reuseaddr"], rec["error"]) == (
        work.pid, None, n, port, "127.0.0.1", ".R...", True, None)
    assert rec["first_seen"] <= rec["last_seen"]
    assert facts["counts"]["binds"] == n and facts["counts"]["records"] == 1
    assert (facts["lost"], facts["dropped"], facts["truncated"]) == (0, 0, False)
    assert_nothing_left(play)


def test_events_max_events_truncates_with_exact_dropped_count():
    port = free_port()
    n = 57
    play = Play([trace_task(duration=5, mode="events", max_events=10, ports=port)])
    play.wait_attached()
    work = Workload(LOOP, port, n)
    work.stop()
    play.wait()
    assert play.proc.returncode == 0, play.err
    facts = facts_of(play.results()["trace"])
    assert len(facts["binds"]) == 10
    assert all((b["pid"], b["port"], b["opts"]) == (work.pid, port, ".R...") for b in facts["binds"])
    assert (facts["truncated"], facts["dropped"], facts["lost"]) == (True, n - 10, 0)
    assert facts["counts"]["dropped"] == n - 10 and facts["counts"]["records"] == 10
    assert_nothing_left(play)


def test_module_deploys_itself_on_a_host_without_the_project(tmp_path):
    # The module's interpreter runs in a private mount namespace where the
    # project checkout is an empty tmpfs: everything the tracer needs, the BPF
    # object included, must arrive in the AnsiballZ payload.
    wrapper = tmp_path / "python-without-project"
    wrapper.write_text("#!/bin/sh\nexec unshare -m --propagation private -- sh -c "
                       "'mount -t tmpfs -o size=1m hidden \"$0\" && test ! -e \"$0/bpf\" && "
                       "exec /usr/bin/python3 \"$@\"' %s \"$@\"\n" % ROOT)
    os.chmod(str(wrapper), 0o755)
    port = free_port()
    play = Play([trace_task(duration=4, ports=port, listeners=False)], interpreter=str(wrapper))
    play.wait_attached()
    work = Workload(LISTEN, port)
    work.stop()
    play.wait()
    assert play.proc.returncode == 0, play.out[-3000:]
    facts = facts_of(play.results()["trace"])
    assert facts["host"]["backend"] == "core"
    assert [(b["pid"], b["port"]) for b in facts["binds"]] == [(work.pid, port)]
    assert_nothing_left(play)


def test_listener_from_before_the_window_in_check_mode():
    port = free_port()
    before = Workload(LISTEN, port)
    try:
        task = trace_task(duration=1, ports=port)
        task["check_mode"] = True
        play = run([task])
    finally:
        before.stop()
    assert play.proc.returncode == 0, play.err
    res = play.results()["trace"]
    facts = facts_of(res)
    assert res["changed"] is False
    assert facts["binds"] == []          # it bound before the window opened
    found = [l for l in facts["listeners"] if l["inode"] == before.info["inode"]]
    assert [(l["proto"], l["addr"], l["port"], l["state"], l["pid"], l["comm"], l["user"])
            for l in found] == [("TCP", "127.0.0.1", port, "LISTEN", before.pid, "python3", "root")]
    assert_nothing_left(play)


def test_unexpected_bind_fails_the_task_naming_the_listener():
    port = free_port()
    allow = [{"name": "below", "port": "1-%d" % (port - 1)},
             {"name": "above", "port": "%d-65535" % (port + 1)}]
    play = Play([trace_task(duration=4, ports=port, allow=allow, fail_on_unexpected=True),
                 {"name": "after", "debug": {"msg": "not reached"}}])
    play.wait_attached()
    work = Workload(LISTEN, port)
    try:
        play.wait()
    finally:
        work.stop()
    assert play.proc.returncode == 2
    res = play.results()["trace"]
    assert res["failed"] is True
    facts = facts_of(res)       # the facts come back with the failure
    host = facts["host"]["hostname"]
    me = "TCP 127.0.0.1:%d python3 pid %d" % (port, work.pid)
    assert res["msg"] == ("unexpected listeners on %s: %s; unexpected binds on %s: %s. No allow "
                          "rule matches them: stop them, or add a rule to allow (e.g. {port: N, "
                          "proto: tcp, comm: NAME})" % (host, me, host, me))
    assert [(l["port"], l["pid"], l["verdict"]) for l in facts["unexpected"]["listeners"]] == [
        (port, work.pid, "unexpected")]
    assert [(b["port"], b["pid"], b["verdict"]) for b in facts["binds"]] == [
        (port, work.pid, "unexpected")]
    assert all(l["verdict"] == "expected" for l in facts["listeners"] if l["port"] != port)
    assert facts["policy"] == {"rules": 2}
    assert "after" not in play.results()
    assert_nothing_left(play)


def test_allowed_bind_passes_with_fail_on_unexpected():
    port = free_port()
    play = Play([trace_task(duration=3, ports=port, fail_on_unexpected=True,
                            allow=[{"port": "1-65535", "proto": ["tcp", "udp"]}])])
    play.wait_attached()
    work = Workload(LISTEN, port)
    try:
        play.wait()
    finally:
        work.stop()
    assert play.proc.returncode == 0, play.out[-2000:]
    facts = facts_of(play.results()["trace"])
    assert [(b["pid"], b["port"], b["verdict"]) for b in facts["binds"]] == [
        (work.pid, port, "expected")]
    assert facts["unexpected"] == {"binds": [], "listeners": []}
    assert_nothing_left(play)


BAD = [
    ({"ports": 0}, "invalid ports entry '0': expected port numbers 1-65535 or ranges like "
                   "8000-8100, comma separated"),
    ({"ports": 70000}, "invalid ports entry '70000': expected port numbers 1-65535 or ranges like "
                       "8000-8100, comma separated"),
    ({"ports": "abc"}, "invalid ports entry 'abc': expected port numbers 1-65535 or ranges like "
                       "8000-8100, comma separated"),
    ({"ports": [22, 70000]}, "invalid ports entry '70000': expected port numbers 1-65535 or "
                             "ranges like 8000-8100, comma separated"),
    ({"duration": 0}, "invalid duration 0: expected seconds, more than 0 and at most 3600 (use "
                      "async for long windows)"),
    ({"duration": -1}, "invalid duration -1: expected seconds, more than 0 and at most 3600 (use "
                       "async for long windows)"),
    ({"duration": 99999}, "invalid duration 99999: expected seconds, more than 0 and at most 3600 "
                          "(use async for long windows)"),
    ({"duration": "abc"}, "invalid duration 'abc': expected seconds, more than 0 and at most 3600 "
                          "(use async for long windows)"),
    ({"pid": "x"}, "invalid pid 'x': expected a process id 1-4194304"),
    ({"uid": "root"}, "invalid uid 'root': expected a user id"),
    ({"max_events": -5, "mode": "events"}, "invalid max_events -5: expected a positive number "
                                           "of events, or unlimited"),
    ({"max_records": "lots"}, "invalid max_records 'lots': expected a positive number of records, "
                              "or unlimited"),
    ({"mode": "stream"}, "value of mode must be one of: summary, events, got: stream"),
    ({"backend": "ebpf"}, "value of backend must be one of: auto, core, bcc, got: ebpf"),
    ({"netns": "mine"}, "invalid netns 'mine': expected 'all', 'host' or a network namespace "
                        "inode number"),
    ({"scope": "pods"}, "invalid scope 'pods': expected one of all, host, containers"),
    ({"comm": "a-very-long-process-name"}, "invalid comm 'a-very-long-process-name': the kernel "
                                           "keeps at most 15 bytes of a process name; give the "
                                           "first 15"),
    ({"allow": "ssh"}, "invalid allow ('ssh'): expected a list of rules, got text; key=value "
                       "arguments (ansible -a \"allow=...\") carry only text: give the arguments "
                       "as JSON instead, e.g. -a '{\"allow\": [{\"port\": 22, \"proto\": "
                       "\"tcp\"}]}', or set allow in a playbook or group_vars"),
    ({"allow": {"port": 22}}, "invalid allow ({'port': 22}): expected a list of rules, e.g. "
                              "[{port: 22, proto: tcp}, {addr: loopback}]"),
    ({"allow": [{"port": 22}, {"prot": "tcp"}]},
     "invalid allow rule 1, key 'prot' ('tcp'): unknown key; rule keys are port, proto, addr, "
     "comm, user, container, host, client, exe, unit, package, exposure, name, description, "
     "owner, ticket, expires"),
    ({"allow": [{"port": 0}]}, "invalid allow rule 0, key 'port' (0): expected a port 1-65535, a "
                               "range like \"8000-8100\", or a list of those"),
    ({"allow": [{"addr": "10.0.0.0/40"}]},
     "invalid allow rule 0, key 'addr' ('10.0.0.0/40'): expected 'loopback', 'any', an IP address "
     "or a CIDR like 10.0.0.0/8 (or a list of those)"),
    ({"fail_on_unexpected": True}, "fail_on_unexpected needs a policy: set allow to a list of "
                                   "rules (an empty list allows nothing)"),
    ({"bogus": 1}, "Unsupported parameters for (fleetaudit.bindtrace.trace_bind) module: bogus. "
                   "Supported parameters include: allow, backend, cmdline, comm, containername, "
                   "detach, duration, fail_on_unexpected, hook, ignore_errors, listeners, max_events, "
                   "max_records, mode, netns, pid, ports, scope, start_at, uid."),
]


@pytest.mark.parametrize("detach", [False, True], ids=["in-module", "detached-launch"])
def test_every_bad_input_fails_with_its_message_and_loads_nothing(detach):
    # detached, the action plugin checks the argument spec on the controller and the
    # host library the rest at the launch: the same message, word for word
    tasks = []
    for i, (args, _) in enumerate(BAD):
        task = trace_task(name="bad%d" % i, **(dict(args, detach=True) if detach else args))
        task["ignore_errors"] = True     # the task keyword: carry on to the next case
        tasks.append(task)
    play = run(tasks)
    results = play.results()
    got = [(args, results["bad%d" % i].get("failed"), results["bad%d" % i].get("msg"))
           for i, (args, _) in enumerate(BAD)]
    assert got == [(args, True, msg) for args, msg in BAD]
    for i in range(len(BAD)):
        # never a traceback (ansible-core 2.19 adds this placeholder to every failure)
        assert results["bad%d" % i].get("exception") in (None, "(traceback unavailable)")
        assert "Traceback" not in json.dumps(results["bad%d" % i])
        assert "module_stdout" not in results["bad%d" % i]
    assert play.stats()["localhost"]["failures"] == 0 and play.stats()["localhost"]["ignored"] == len(BAD)
    assert_nothing_left(play)


def test_not_root_no_btf_and_unsupported_messages(tmp_path):
    # the module's interpreter drops to nobody: a real unprivileged run
    wrapper = tmp_path / "python-as-nobody"
    wrapper.write_text("#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups "
                       "/usr/bin/python3 \"$@\"\n")
    os.chmod(str(wrapper), 0o755)
    os.chmod(str(tmp_path), 0o755)
    nobody = trace_task(name="nobody", duration=1)
    nobody.update({"ignore_errors": True, "vars": {"ansible_python_interpreter": str(wrapper)}})
    no_btf = trace_task(name="nobtf", duration=1, backend="core")
    no_btf.update({"ignore_errors": True,
                   "environment": {"BINDTRACE_BTF_PATH": "/nonexistent/vmlinux"},
                   "vars": {"ansible_python_interpreter": "/usr/bin/python3"}})
    # no BTF and no bcc: bcc is hidden from an interpreter without site-packages (-S)
    nosite = tmp_path / "python-nosite"
    nosite.write_text("#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n")
    os.chmod(str(nosite), 0o755)
    neither = trace_task(name="neither", duration=1)
    neither.update({"ignore_errors": True,
                    "environment": {"BINDTRACE_BTF_PATH": "/nonexistent/vmlinux"},
                    "vars": {"ansible_python_interpreter": str(nosite)}})
    play = run([nobody, no_btf, neither], interpreter=None)
    res = play.results()
    assert res["neither"]["msg"].startswith(
        "unsupported: no usable backend on this host (no kernel BTF at /nonexistent/vmlinux; ")
    assert res["neither"]["msg"].endswith(
        "install libbpf1 on a kernel with BTF (CONFIG_DEBUG_INFO_BTF), or bcc with kernel headers "
        "(bindtrace_install_bcc: true)")
    assert "bcc" in res["neither"]["msg"]
    assert res["nobody"]["msg"] == ("not root: loading eBPF programs needs root; run with sudo "
                                    "(Ansible: become: true)")
    assert res["nobtf"]["msg"] == (
        "no kernel BTF at /nonexistent/vmlinux: the core backend needs a kernel built with "
        "CONFIG_DEBUG_INFO_BTF; use backend bcc (install bcc and kernel headers) or a kernel "
        "with BTF")
    assert_nothing_left(play)


def test_non_linux_host_is_unsupported(tmp_path):
    # A non-Linux host cannot exist here: the one mock is the OS name, set by a
    # sitecustomize in the module's interpreter; the rest is the real playbook run.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import platform\nplatform.system = lambda: 'FreeBSD'\n")
    wrapper = tmp_path / "python-freebsd"
    wrapper.write_text("#!/bin/sh\nPYTHONPATH=%s exec /usr/bin/python3 \"$@\"\n" % site)
    os.chmod(str(wrapper), 0o755)
    play = run([trace_task(duration=1)], interpreter=str(wrapper))
    res = play.results()["trace"]
    assert res["failed"] is True
    assert res["msg"] == "unsupported: FreeBSD is not Linux; bindtrace traces Linux kernels only"
    assert_nothing_left(play)


def test_async_timeout_kills_the_module_and_nothing_stays_loaded():
    task = trace_task(duration=120)
    task.update({"async": 4, "poll": 1})
    play = Play([task])
    play.wait_attached()
    play.wait()
    res = play.results()["trace"]
    assert res["failed"] is True
    # async_wrapper killed the job (SIGKILL). ansible-core 2.18 words it either way,
    # depending on whether its poll or the wrapper's kill reports first
    messages = {"Timeout exceeded"}
    if core_version()[0] < (2, 19):
        messages.add("async task did not complete within the requested time - 4s")
    assert res["msg"] in messages
    assert play.seen_ids
    assert_nothing_left(play)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_module_leaves_nothing_loaded(sig):
    play = Play([trace_task(duration=120, mode="events")])
    pid = play.wait_attached()
    os.kill(pid, sig)
    play.wait()
    res = play.results()["trace"]
    assert res["failed"] is True
    if sig == signal.SIGTERM:
        assert res["msg"] == ("interrupted by signal 15 before the window ended; nothing stays "
                              "loaded; rerun the task")
    assert play.seen_ids
    assert_nothing_left(play)


def adhoc(tmp_path, args):
    """`ansible localhost -m fleetaudit.bindtrace.trace_bind -a ARGS` -> the
    host's result (the builtin tree callback's file)."""
    tree = tmp_path / ("tree%d" % len(list(tmp_path.iterdir())))
    env = ansible_env("adhoc", ANSIBLE_LOAD_CALLBACK_PLUGINS=1, ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
                      ANSIBLE_CALLBACK_TREE_DIR=str(tree), ANSIBLE_STDOUT_CALLBACK="minimal")
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=/usr/bin/python3",
                           "-m", "fleetaudit.bindtrace.trace_bind", "-a", args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    with open(str(tree / "localhost")) as f:
        return proc.returncode, json.load(f)


def test_adhoc_key_value_allow_arrives_as_text_and_the_message_gives_the_json_form(tmp_path):
    rc, res = adhoc(tmp_path, "allow=[{'port':22,'proto':'tcp'}] duration=1")
    assert rc == 2, res
    assert res["msg"] == (
        "invalid allow (\"[{'port':22,'proto':'tcp'}]\"): expected a list of rules, got text; key=value "
        "arguments (ansible -a \"allow=...\") carry only text: give the arguments as JSON instead, e.g. "
        "-a '{\"allow\": [{\"port\": 22, \"proto\": \"tcp\"}]}', or set allow in a playbook or group_vars")
    # the form the message gives carries the list
    rc, res = adhoc(tmp_path, '{"allow": [{"port": 22, "proto": "tcp"}], "duration": 1}')
    assert rc == 0, res
    assert res["ansible_facts"]["bind_trace"]["policy"]["rules"] == 1
    assert_nothing_left()


def pyenv_python(version):
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/%s.*/bin/python%s" % (version, version))))
    return found[-1] if found else None


@pytest.mark.parametrize("version", ["3.8", "3.9"])
def test_oldest_host_pythons(version):
    """The host library is Python 3.8+ stdlib: the module traces exactly on a 3.8
    and a 3.9 host interpreter (pyenv's, part of the machine image), except
    where the controller's ansible-core no longer supports that target Python
    (2.21 needs 3.9+ on the host, and says so)."""
    python = pyenv_python(version)
    if python is None:
        pytest.skip("no pyenv python%s on this machine" % version)
    port = free_port()
    play = Play([trace_task(duration=4, mode="events", ports=[port], listeners=False)], interpreter=python)
    if version == "3.8" and core_version()[0] >= (2, 21):
        play.wait()
        res = play.results()["trace"]
        assert res["msg"].startswith("Ansible requires Python 3.9 or newer on the target. Current version: 3.8")
        return
    play.wait_attached()
    work = Workload(LISTEN, port)
    try:
        play.wait()
        assert play.proc.returncode == 0, play.err + play.out[-2000:]
    finally:
        work.stop()
    facts = facts_of(play.results()["trace"])
    assert [(b["pid"], b["proto"], b["addr"], b["port"], b["error"]) for b in facts["binds"]] == [
        (work.pid, "TCP", "127.0.0.1", port, None)]
    assert facts["host"]["backend"] == "core"
    assert_nothing_left(play)
