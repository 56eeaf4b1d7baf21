"""A tracer cut short every way a user or the network can: SIGKILL and Ctrl-C
on the CLI in the middle of a storm, SIGKILL of the module's process, the task
`timeout:` keyword, an `async` limit, the SSH connection dropping. Afterwards
none of the BPF programs, maps or links that tracer held is loaded (bpftool),
and a new run works at once and counts exactly."""
import json
import os
import re
import signal
import subprocess
import uuid

import pytest

from hostile_util import (FIXTURES, PORT_BASE, find_tracer, finish, no_traceback, report,
                          start_cli, start_playbook, stop_cli, storm, tracing, wait_exit,
                          wait_gone)

PORT = PORT_BASE + 10


def assert_all_kinds(ids):
    """The ids we check cover each kind of object a tracer holds."""
    assert {kind for kind, _ in ids} == {"prog_id", "map_id", "link_id"}, ids


def new_cli_run_counts_exactly(bindstorm, port, binds=2000):
    """A new CLI run, started right after: attached at once, counts exactly."""
    cli = start_cli("--summary", "-i=false", "-P", str(port), "-o", "json")
    try:
        pid, ids = find_tracer(cli.pid, timeout=60)
        offered = storm(bindstorm, 2, binds // 2, "einval", port)
        rc, out, err = stop_cli(cli)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert rc == 0, err
    assert sum(json.loads(l)["count"] for l in out.splitlines()) == offered == binds
    assert err.strip().splitlines()[-1] == "# events: %d, lost: 0, dropped: 0" % binds
    assert wait_gone(ids) == set()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl-c"])
def test_cli_cut_short_in_a_storm(bindstorm, sig):
    port = PORT + (1 if sig == signal.SIGKILL else 2)
    cli = start_cli("-i=false", "-P", str(port), "-o", "json", "--max-events", "20")
    load = None
    try:
        pid, ids = find_tracer(cli.pid, timeout=60)
        assert_all_kinds(ids)
        load = subprocess.Popen([bindstorm, "2", "200000", "einval", str(port)],
                                stdout=subprocess.DEVNULL)
        first = json.loads(cli.stdout.readline())      # mid-storm: events are flowing
        assert (first["comm"], first["requested_port"], first["error"]) == \
            ("bindstorm", port, "EINVAL")
        assert load.poll() is None
        rc, out, err = stop_cli(cli, sig)
        assert load.wait(300) == 0
    finally:
        for p in (cli, load):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    if sig == signal.SIGKILL:
        assert rc == -signal.SIGKILL
    else:
        # Ctrl-C: a clean exit with the final accounting line, no traceback
        assert rc == 0, err
        assert len(out.splitlines()) == 19              # 20 kept, the first read above
        assert re.match(r"^# events: 20, lost: \d+, dropped: \d+$", err.strip().splitlines()[-1])
        assert no_traceback(err) == []
    assert wait_gone(ids) == set()
    new_cli_run_counts_exactly(bindstorm, port)


def test_module_killed_timed_out_async_then_works_at_once(bindstorm, local_inventory, tmp_path):
    """fixtures/cut_short.yml on this host (local connection): task 1 SIGKILLed
    here, task 2 `timeout: 6`, task 3 `async: 6`, each with a 600 s window; then
    task 4, a normal 6 s window with 1000 binds in it."""
    port = PORT + 3
    tag = "BINDTRACE_HOSTILE_TAG_" + uuid.uuid4().hex      # finds our module processes
    pb = start_playbook(local_inventory, tmp_path / "reports", {"trace_port": port, "window": 6},
                        playbook=os.path.join(FIXTURES, "cut_short.yml"), env={tag: "1"})
    seen = set()
    try:
        # 1: SIGKILL the module's python process on the host, in the middle of a storm
        pid, ids = find_tracer(tag=tag, proc=pb)
        assert_all_kinds(ids)
        seen.add(pid)
        load = subprocess.Popen([bindstorm, "2", "100000", "einval", str(port)],
                                stdout=subprocess.DEVNULL)
        os.kill(pid, signal.SIGKILL)
        assert load.wait(300) == 0
        assert wait_gone(ids) == set()
        # 2 and 3: the task timeout and the async limit end a 600 s window; the
        # tracer must be gone long before that window would have ended
        for _ in ("timeout", "async"):
            pid, ids = find_tracer(tag=tag, proc=pb, exclude=seen)
            seen.add(pid)
            assert_all_kinds(ids)
            assert wait_gone(ids, timeout=60) == set()
            assert wait_exit(pid)
        # 4: a new run at once
        pid, ids = find_tracer(tag=tag, proc=pb, exclude=seen)
        offered = storm(bindstorm, 2, 500, "einval", port)
        assert tracing(pid), "the binds must fall inside the 6 s window"
        rc, out = finish(pb)
    finally:
        if pb.poll() is None:
            pb.kill()
            pb.wait()
    (tmp_path / "play.out").write_text(out)
    assert wait_gone(ids) == set()
    assert rc == 0, out                                  # the first three are ignored errors
    assert "Traceback" not in out
    assert out.count("...ignoring") == 3
    assert "Timed out after 6 second(s)" in out
    # async_wrapper's kill and the controller's poll race to report the limit first
    assert "ASYNC FAILED on localhost" in out
    assert "Timeout exceeded" in out or "async task did not complete within the requested" in out
    # the report holds the last trace task's result: the new run, exact
    (host,) = report(tmp_path / "reports")["hosts"]
    assert host["status"] == "ok"
    facts = host["facts"]
    assert facts["counts"]["binds"] == offered == 1000
    assert {(b["comm"], b["requested_port"], b["error"]) for b in facts["binds"]} == \
        {("bindstorm", port, "EINVAL")}


def sshd_sessions(fleet, host):
    """The sshd processes below the host's listening sshd: the per-connection
    sessions (the module's shell and python are their children)."""
    from helpers.procs import descendants
    out = []
    for pid in descendants(host["pid"])[1:]:
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip().startswith("sshd"):
                    out.append(pid)
        except OSError:
            continue
    return out


SYNC = os.path.join(FIXTURES, "sync_trace.yml")   # the module in the task, not launched async


@pytest.mark.fleet
def test_ssh_connection_dropped_mid_task(ssh_fleet, tmp_path):
    """The host's sshd session for the controller's connection is killed while
    the module traces a 600 s window: the module notices, unloads, exits; the
    host is unreachable in the report; a new run over SSH works at once."""
    (host,) = ssh_fleet.hosts
    port = PORT + 4
    pb = start_playbook(ssh_fleet.inventory_path, tmp_path / "r1",
                        {"bindtrace_duration": 600, "bindtrace_ports": str(port)}, playbook=SYNC)
    try:
        pid, ids = find_tracer(host["pid"], proc=pb)
        assert_all_kinds(ids)
        sessions = sshd_sessions(ssh_fleet, host)
        assert sessions
        for s in sessions:
            os.kill(s, signal.SIGKILL)
        rc, out = finish(pb, timeout=120)
    finally:
        if pb.poll() is None:
            pb.kill()
            pb.wait()
    assert rc == 4, out                                  # 4: a host unreachable
    assert "UNREACHABLE" in out
    assert wait_gone(ids, timeout=60) == set()
    assert wait_exit(pid)
    (entry,) = report(tmp_path / "r1")["hosts"]
    assert (entry["name"], entry["status"], entry["facts"]) == (host["name"], "unreachable", None)

    # a new run over SSH at once: sees exactly the one bind made inside the host
    pb = start_playbook(ssh_fleet.inventory_path, tmp_path / "r2",
                        {"bindtrace_duration": 4, "bindtrace_ports": str(port)}, playbook=SYNC)
    try:
        pid, ids = find_tracer(ssh_fleet.host(host["name"])["pid"], proc=pb)
        code = "import socket; s = socket.socket(); s.bind(('0.0.0.0', %d))" % port
        assert ssh_fleet.run_in(host["name"], ["/usr/bin/python3", "-c", code]).returncode == 0
        assert tracing(pid)
        rc, out = finish(pb, timeout=120)
    finally:
        if pb.poll() is None:
            pb.kill()
            pb.wait()
    assert rc == 0, out
    (entry,) = report(tmp_path / "r2")["hosts"]
    assert entry["status"] == "ok"
    assert [(b["comm"], b["port"], b["count"], b["netns"]) for b in entry["facts"]["binds"]] == \
        [("python3", port, 1, ssh_fleet.netns_inode(host["name"]))]
    assert wait_gone(ids) == set()
