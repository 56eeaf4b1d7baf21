"""A detached window on the real kernel (issue 20), launched as trace_bind's
action plugin launches it (the host library and the options piped to
`python3 -c`) and collected as trace_bind_collect collects it (one shell
command): the launch returns at once, the window holds exactly its own
seconds' binds, the result comes once; a bad option fails at the launch
leaving nothing; a killed window and a window past its deadline are named,
with nothing loaded."""
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest

from bindtrace import detach
from helpers.kernel import TIME_FACTOR, bpf_ids_of, live_bpf_ids

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "collection"))
import detached  # noqa: E402  (plugin_utils)

PYTHON = "/usr/bin/python3"   # the target interpreter, as on a fleet host
with open("/proc/self/comm") as _f:
    MY_COMM = _f.read().strip()   # this test binds: its comm is in the record


def launch(options):
    out = subprocess.run(["/bin/sh", "-c", detached.launch_command(PYTHON, shlex.quote)],
                         input=detached.launch_input(options), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=60 * TIME_FACTOR)
    return detached.parse_launch(out.returncode, out.stdout.decode(), out.stderr.decode())


def collect(job, timeout):
    out = subprocess.run(["/bin/sh", "-c", detached.collect_command(job, timeout)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                         timeout=timeout + 30)
    return detached.parse_output(job, out.returncode, out.stdout, out.stderr, timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bind_once(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.close()


def job_files():
    return set(os.listdir(detach.JOB_DIR)) if os.path.isdir(detach.JOB_DIR) else set()


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout * TIME_FACTOR
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_detached_window_traces_exactly_its_seconds_and_is_collected_once():
    port = free_port()
    before = job_files()
    start_at = time.time() + 3.0 * TIME_FACTOR
    t0 = time.monotonic()
    got = launch({"duration": 2, "start_at": start_at, "ports": str(port), "listeners": False})
    launched_in = time.monotonic() - t0
    job = got["bindtrace_job"]
    assert got == {"changed": False, "bindtrace_job": job}
    assert set(job) == {"jid", "pid", "file", "deadline"}
    assert job["file"] == os.path.join(detach.JOB_DIR, job["jid"] + ".json")
    assert job["deadline"] == pytest.approx(start_at + 2 + detach.SLACK_SECONDS)
    # the launch returned before the window: the tracer loads and waits detached
    assert time.time() < start_at, launched_in
    wait_for(lambda: any(k == "prog_id" for k, _ in bpf_ids_of(job["pid"])), 20, "the tracer")
    held = bpf_ids_of(job["pid"])
    # a session of its own (not its leader: it can never get a terminal), stdio on
    # /dev/null: nothing holds the launch's connection open
    assert os.getsid(job["pid"]) not in (os.getsid(0), job["pid"])
    for fd in (0, 1, 2):
        assert os.readlink("/proc/%d/fd/%d" % (job["pid"], fd)) == "/dev/null"
    bind_once(port)                     # loaded, before the start: not in the window
    while time.time() < start_at + 0.3:
        time.sleep(0.05)
    for _ in range(3):
        bind_once(port)                 # in the window: exactly these
    result = collect(job, 60)
    facts = result["ansible_facts"]["bind_trace"]
    assert result["changed"] is False and "failed" not in result
    assert [(b["port"], b["count"], b["proto"], b["addr"], b["comm"]) for b in facts["binds"]] == [
        (port, 3, "TCP", "127.0.0.1", MY_COMM)]
    assert facts["window"]["duration"] == 2
    assert (facts["lost"], facts["dropped"]) == (0, 0)
    # the result was read once and removed, with the library copy; the process ended
    assert job_files() <= before
    wait_for(lambda: not os.path.exists("/proc/%d" % job["pid"]), 10, "the window's process")
    assert not held & live_bpf_ids()
    again = collect(job, 1)
    assert again["failed"] is True and "ended without a result" in again["msg"]


def test_a_bad_option_fails_at_the_launch_and_leaves_nothing():
    before = job_files()
    got = launch({"duration": "abc"})
    assert got == {"failed": True, "msg": "invalid duration 'abc': expected seconds, more than 0 "
                   "and at most 3600 (use async for long windows)"}
    got = launch({"duration": 1, "colour": "red"})
    assert got["failed"] is True and got["msg"].startswith("unknown option colour: expected any of ")
    assert job_files() <= before


def test_not_root_is_named_at_the_launch():
    cmd = "setpriv --reuid=65534 --regid=65534 --clear-groups /bin/sh -c %s" % shlex.quote(
        detached.launch_command(PYTHON, shlex.quote))
    out = subprocess.run(["/bin/sh", "-c", cmd], input=detached.launch_input({"duration": 1}),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    got = detached.parse_launch(out.returncode, out.stdout.decode(), out.stderr.decode())
    assert got == {"failed": True, "msg": "not root: loading eBPF programs needs root; run with "
                   "sudo (Ansible: become: true)"}


def test_a_killed_window_unloads_and_its_collect_says_so():
    got = launch({"duration": 2, "start_at": time.time() + 30, "listeners": False})
    job = got["bindtrace_job"]
    wait_for(lambda: any(k == "prog_id" for k, _ in bpf_ids_of(job["pid"])), 20, "the tracer")
    held = bpf_ids_of(job["pid"])
    os.kill(job["pid"], signal.SIGKILL)
    wait_for(lambda: not os.path.exists("/proc/%d" % job["pid"]), 10, "the killed process")
    wait_for(lambda: not held & live_bpf_ids(), 10, "the kernel to free the tracer")
    t0 = time.monotonic()
    got = collect(job, 60)
    assert time.monotonic() - t0 < 30   # at once, not after the timeout
    assert got == {"failed": True, "msg": "detached job %s (pid %d) ended without a result: it "
                   "was killed (SIGKILL, out of memory) or the host restarted; the kernel unloaded "
                   "its tracer with it; rerun the play" % (job["jid"], job["pid"])}


def test_a_window_past_its_deadline_is_stopped_and_says_so(tmp_path):
    jobs = str(tmp_path / "jobs")
    deadline = time.time() + 1

    def stuck():
        time.sleep(30)
        return {"changed": False}
    job = detach.launch(stuck, deadline, job_dir=jobs)
    wait_for(lambda: os.path.exists(job["file"]), 20, "the result")
    with open(job["file"]) as f:
        result = json.load(f)
    assert result == {"failed": True, "msg": "the detached window did not end by its deadline "
                      "(%s, start + duration + 120 s); it was stopped and nothing stays loaded; "
                      "rerun the task, with a shorter window on a busy host"
                      % time.strftime("%H:%M:%S", time.gmtime(deadline))}
    assert os.stat(jobs).st_mode & 0o777 == 0o700
    assert os.stat(job["file"]).st_mode & 0o777 == 0o600
