"""The trace-bind CLI as a user runs it: flags, output, exit, and clean-up."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from helpers.kernel import CLI, TIME_FACTOR, bpf_ids_of, cli_env, live_bpf_ids, nc_binary

HEADER = "PID     COMM             PROTO  ADDR             PORT   OPTS   IF"


def start_cli(*args):
    proc = subprocess.Popen(CLI + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env())
    return proc


def wait_loaded(proc, timeout=20):
    """Until the CLI holds its BPF programs (attached and tracing)."""
    deadline = time.monotonic() + timeout * TIME_FACTOR
    while time.monotonic() < deadline:
        ids = bpf_ids_of(proc.pid)
        if sum(1 for k, _ in ids if k == "link_id") >= 1:
            return ids
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise AssertionError("trace-bind did not attach")


def bind_child(port, comm="btcli", family=socket.AF_INET, addr="127.0.0.1", reuse=False):
    code = ("import socket,os,sys\nopen('/proc/self/comm','w').write(sys.argv[1])\n"
            "s=socket.socket(%d)\n%s"
            "s.bind((%r,int(sys.argv[2])))\nprint(os.getpid())\n"
            % (family, "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n" if reuse else "",
               addr))
    out = subprocess.run(["/usr/bin/python3", "-c", code, comm, str(port)], capture_output=True,
                         text=True, check=True).stdout
    return int(out)


def finish(proc, sig=signal.SIGINT):
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20 * TIME_FACTOR)
    return proc.returncode, out, err


def test_header_at_once_then_rows_and_final_counts(tmp_path):
    proc = start_cli("-P=47101")
    first = proc.stdout.readline().rstrip("\n")
    assert first == HEADER  # printed before any bind happened
    wait_loaded(proc)
    pid = bind_child(47101, reuse=True)
    row = proc.stdout.readline().split()
    assert row == [str(pid), "btcli", "TCP", "127.0.0.1", "47101", ".R..."]
    rc, out, err = finish(proc)
    assert rc == 0 and out == ""
    assert err.strip().splitlines()[-1] == "# events: 1, lost: 0, dropped: 0"


def test_json_output_and_pid_filter():
    proc = start_cli("-o", "json", "-P=47102")
    wait_loaded(proc)
    pid_a = bind_child(47102, comm="btjsonA")
    proc_b = start_cli("-o", "json", "--pid", str(os.getpid()), "-P=47102")
    wait_loaded(proc_b)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 47102))  # this process: seen by both CLIs
    time.sleep(0.3)
    rc, out, _ = finish(proc)
    rc_b, out_b, _ = finish(proc_b)
    s.close()
    lines = [json.loads(l) for l in out.splitlines()]
    assert [(e["pid"], e["comm"], e["port"]) for e in lines][:1] == [(pid_a, "btjsonA", 47102)]
    assert [e["pid"] for e in lines] == [pid_a, os.getpid()]
    only_me = [json.loads(l) for l in out_b.splitlines()]
    assert [(e["pid"], e["port"], e["proto"]) for e in only_me] == [(os.getpid(), 47102, "TCP")]
    assert set(lines[0]) >= {"schema", "timestamp", "pid", "tid", "ppid", "uid", "gid", "user",
                             "comm", "proto", "family", "addr", "port", "requested_addr",
                             "requested_port", "opts", "options", "if_index", "if", "error",
                             "ret", "netns", "mntns", "cgroup_id", "container", "k8s"}


def test_seed_flags_ignore_errors_false_pid_and_ports():
    """`-i=false --pid 42 -P=4242,4343` as in the seed, with our own pid."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    busy = listener.getsockname()[1]
    proc = start_cli("-i=false", "--pid", str(os.getpid()), "-P=%d,47103" % busy)
    header = proc.stdout.readline()
    assert header.split() == ["PID", "COMM", "PROTO", "ADDR", "PORT", "OPTS", "ERROR", "IF"]
    wait_loaded(proc)
    s = socket.socket()
    with pytest.raises(OSError):
        s.bind(("127.0.0.1", busy))      # EADDRINUSE: shown, matched on the requested port
    t = socket.socket()
    t.bind(("127.0.0.1", 47103))
    u = socket.socket()
    u.bind(("127.0.0.1", 47104))         # not in -P: filtered
    time.sleep(0.3)
    rc, out, _ = finish(proc)
    rows = [l.split() for l in out.splitlines()]
    # the failed bind shows what it asked for (the socket itself stays at 0.0.0.0:0)
    assert rows == [[str(os.getpid()), rows[0][1], "TCP", "127.0.0.1", str(busy), ".....",
                     "EADDRINUSE"],
                    [str(os.getpid()), rows[0][1], "TCP", "127.0.0.1", "47103", "....."]]
    for x in (listener, s, t, u):
        x.close()


def test_comm_filter_cli():
    proc = start_cli("-o", "json", "--comm", "btcommcli", "-P=47105,47106")
    wait_loaded(proc)
    bind_child(47105, comm="btother")
    pid = bind_child(47106, comm="btcommcli")
    time.sleep(0.3)
    _, out, _ = finish(proc)
    assert [(e["pid"], e["port"]) for e in map(json.loads, out.splitlines())] == [(pid, 47106)]


def test_timeout_and_summary():
    # the window must hold three Python start-ups: ~10x slower in a loaded VM
    proc = start_cli("--summary", "--timeout", "%g" % (3 * TIME_FACTOR ** 2), "-P=47107")
    wait_loaded(proc)
    pids = [bind_child(47107, reuse=True, comm="btsum") for _ in range(3)]
    out, err = proc.communicate(timeout=30 * TIME_FACTOR)
    assert proc.returncode == 0
    rows = [l.split() for l in out.splitlines()]
    assert rows[0] == ["PID", "COMM", "PROTO", "ADDR", "PORT", "OPTS", "COUNT", "IF"]
    assert sorted(r[0] for r in rows[1:]) == sorted(str(p) for p in pids)
    assert all(r[1:] == ["btsum", "TCP", "127.0.0.1", "47107", ".R...", "1"] for r in rows[1:])
    assert err.strip().splitlines()[-1] == "# events: 3, lost: 0, dropped: 0"


@pytest.mark.parametrize("how", ["normal", "sigint", "sigterm", "sigkill"])
def test_nothing_stays_loaded(how):
    # long enough for the checks below to see the tracer still loaded (bpftool is slow in a VM)
    args = ["--timeout", "%g" % (2 * TIME_FACTOR)] if how == "normal" else []
    proc = start_cli(*args)
    ours = wait_loaded(proc)
    assert {k for k, _ in ours} == {"prog_id", "map_id", "link_id"}
    assert ours <= live_bpf_ids()
    if how == "normal":
        proc.communicate(timeout=20 * TIME_FACTOR)
    else:
        finish(proc, {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM,
                      "sigkill": signal.SIGKILL}[how])
    deadline = time.monotonic() + 10 * TIME_FACTOR  # the kernel frees objects after an RCU grace period
    while ours & live_bpf_ids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not ours & live_bpf_ids()
    if how != "sigkill":
        assert proc.returncode == 0
    # a new run works at once
    again = start_cli("--timeout", "1")
    wait_loaded(again)
    again.communicate(timeout=20 * TIME_FACTOR)
    assert again.returncode == 0


@pytest.mark.parametrize("args,message", [
    (["-P=0"], "invalid ports entry '0'"),
    (["-P=70000"], "invalid ports entry '70000'"),
    (["-P=abc"], "invalid ports entry 'abc'"),
    (["-P=9000-8000"], "invalid ports range '9000-8000'"),
    (["--pid", "x"], "invalid pid 'x'"),
    (["--timeout", "0"], "invalid duration '0'"),
    (["-i=maybe"], "invalid ignore_errors 'maybe'"),
    (["--backend", "ebpf"], "invalid backend 'ebpf'"),
    (["--comm", "averyveryverylongname"], "invalid comm 'averyveryverylongname'"),
])
def test_bad_input_one_clear_message(args, message):
    proc = subprocess.run(CLI + args, capture_output=True, text=True, env=cli_env(), timeout=30)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trace-bind: " + message), proc.stderr
    assert "Traceback" not in proc.stderr
