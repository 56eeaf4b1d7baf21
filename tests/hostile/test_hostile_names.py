"""Hostile names, set for real: processes that write markup, ANSI escapes,
newlines, invalid UTF-8 and over-long names into /proc/self/comm, and a
container whose Kubernetes labels carry markup and escapes, all bind and
listen while the real module (ansible-playbook + bind_report) and the CLI
trace. Every report file stays valid and inert, and so do the terminal table
and the CLI table; the JSON keeps the exact (decoded) names."""
import os
import re
import signal
import subprocess
import time

import pytest

import inert
from dockerimg import USR_RO, docker, inspect
from hostile_util import (PORT_BASE, find_tracer, finish, no_traceback, report, start_cli,
                          start_playbook, stop_cli, tracing, wait_gone)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PORT = PORT_BASE + 50
SCRIPT = b"<script>alert(1)</script>"
IMG = b'"><img src=x onerror=alert(1)>'
ANSI = b"\x1b[31mRED\x1b[0m"
COMMS = [SCRIPT, IMG, ANSI, b"a\nb\rc\td", b"\xff\xfe\xc3(bad", b"0123456789abcdefXYZ",
         "é".encode("utf-8") * 9, b"\xe2\x80\xaeexe.gnp", b"|x|`y`*z*[a](b)", b"\x00hidden"]
# the Kubernetes identity docker labels give the container (labels accept any text)
K8S_POD = "<script>alert(1)</script>"
K8S_NAMESPACE = '"><img src=x onerror=alert(1)>'
K8S_CONTAINER = "\x1b[31mred\x1b[0m\nnext\u202eline"
CONTAINER_PORT = PORT + len(COMMS)

LISTEN = ("import socket, sys\n"
          "open('/proc/self/comm', 'wb').write(bytes.fromhex(sys.argv[1]))\n"
          "s = socket.socket(); s.bind(('0.0.0.0', int(sys.argv[2]))); s.listen()\n"
          "print('ready', flush=True); sys.stdin.read()\n")


def kernel_comm(raw):
    """What the kernel keeps (15 bytes, up to a NUL) and the tracer shows."""
    return raw[:15].split(b"\0", 1)[0].decode("utf-8", "replace")


def start_listeners():
    procs = []
    for i, raw in enumerate(COMMS):
        p = subprocess.Popen(["/usr/bin/python3", "-c", LISTEN, raw.hex(), str(PORT + i)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(p)
    for p in procs:
        assert p.stdout.readline() == "ready\n"
    return procs


def start_container(name, image):
    code = ("import socket, time; s = socket.socket(); s.bind(('0.0.0.0', %d)); s.listen(); "
            "print('ready', flush=True); time.sleep(600)" % CONTAINER_PORT)
    docker("run", "-d", "--name", name, "--label", "io.kubernetes.pod.name=" + K8S_POD,
           "--label", "io.kubernetes.pod.namespace=" + K8S_NAMESPACE,
           "--label", "io.kubernetes.container.name=" + K8S_CONTAINER,
           *USR_RO, image, "/usr/bin/python3", "-c", code)
    deadline = time.monotonic() + 60
    while "ready" not in docker("logs", name).stdout:
        assert time.monotonic() < deadline, "the container never listened"
        time.sleep(0.05)
    return inspect(name, "{{.Id}}")


def test_hostile_names_are_inert_everywhere(docker_images, containers, local_inventory, tmp_path):
    _, py_image = docker_images
    name = containers("bt-hostile-k8s")
    rdir = tmp_path / "reports"
    allow = [{"name": "<b>only the first</b>", "port": PORT}]   # the rest is unexpected
    pb = start_playbook(local_inventory, rdir, {
        "bindtrace_duration": 12, "bindtrace_mode": "events",
        "bindtrace_ports": "%d-%d" % (PORT, CONTAINER_PORT), "bindtrace_allow": allow,
        "bindtrace_fail_on_unexpected": True})   # the failure message names them too
    cli = start_cli("-P", "%d-%d" % (PORT, CONTAINER_PORT))
    procs = []
    try:
        tracers = [find_tracer(pb.pid, pb), find_tracer(cli.pid)]
        procs = start_listeners()
        cid = start_container(name, py_image)
        for pid, _ in tracers:
            assert tracing(pid), "every bind must fall inside the window"
        rc, out = finish(pb)                  # the listeners are still up at the snapshot
        time.sleep(0.3)                       # the CLI's poll loop delivers within 100 ms
        rc_cli, cli_out, cli_err = stop_cli(cli, signal.SIGINT)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for p in (pb, cli):
            if p.poll() is None:
                p.kill()
                p.wait()
    (tmp_path / "play.out").write_text(out, encoding="utf-8", errors="surrogateescape")
    assert (rc, rc_cli) == (2, 0), out + cli_err     # 2: the task failed on the policy
    assert no_traceback(out + cli_err) == []
    pids = {PORT + i: p.pid for i, p in enumerate(procs)}

    # report.json keeps each name exactly as the kernel gave it (decoded)
    files = inert.check_report_dir(rdir)
    (host,) = files["report.json"]["hosts"]
    assert host["status"] == "failed"
    assert "unexpected binds on " in host["reason"] and "\\x1b[31mRED\\x1b[0m" in host["reason"]
    binds = {b["port"]: b for b in host["facts"]["binds"]}
    listeners = {l["port"]: l for l in host["facts"]["listeners"]
                 if PORT <= l["port"] <= CONTAINER_PORT}
    assert sorted(binds) == sorted(listeners) == list(range(PORT, CONTAINER_PORT + 1))
    for i, raw in enumerate(COMMS):
        b, l = binds[PORT + i], listeners[PORT + i]
        assert (b["pid"], b["comm"], b["container"]) == (pids[PORT + i], kernel_comm(raw), None)
        assert (l["pid"], l["comm"]) == (pids[PORT + i], kernel_comm(raw))
        assert b["verdict"] == l["verdict"] == ("expected" if i == 0 else "unexpected")
    kernel_names = [kernel_comm(raw) for raw in COMMS]
    assert kernel_names[0] == "<script>alert(1"           # 16-byte comm: 15 kept
    assert kernel_names[5] == "0123456789abcde"
    assert kernel_names[6] == "é" * 7 + "\ufffd"           # cut inside a character
    assert kernel_names[9] == ""
    for rec in (binds[CONTAINER_PORT], listeners[CONTAINER_PORT]):
        assert rec["container"]["id"] == cid and rec["container"]["name"] == name
        assert rec["k8s"]["pod"] == K8S_POD and rec["k8s"]["namespace"] == K8S_NAMESPACE
        assert rec["k8s"]["container"] == K8S_CONTAINER
    assert sorted(p for p, l in listeners.items() if l["verdict"] == "unexpected") == \
        list(range(PORT + 1, CONTAINER_PORT + 1))

    # HTML: the names are text, not markup (check_html parsed it: no foreign tags)
    visible = files["report.html"]
    for text in ("<script>alert(1", '"><img src=x on', "\\x1b[31mRED\\x1b[0m", "a\\nb\\rc\\td",
                 "\ufffd\ufffd\ufffd(bad", "\\u202eexe.gnp", K8S_POD, K8S_NAMESPACE,
                 "\\x1b[31mred\\x1b[0m\\nnext\\u202eline"):
        assert text in visible, text
    # JUnit: the unexpected listeners are named in the failure, as text
    junit_text = "".join(files["junit.xml"].itertext())
    assert '"><img src=x on' in junit_text and "\\x1b[31mRED" in junit_text
    # Markdown: entities and escapes, no table broken by a | or a newline
    md = files["report.md"]
    assert "&lt;script&gt;alert(1" in md and "\\|x\\|\\`y\\`\\*z\\*\\[a\\](b)" in md

    # the whole play's output (the failed task's message, the table at the end), and
    # the CLI table: no raw escape or newline from a name reaches the terminal. The
    # `fatal:` line is Ansible's own JSON dump of the result: JSON escapes every
    # control character, but prints other characters (bidi marks) as they are.
    ours = [l for l in out.splitlines() if not l.startswith("fatal: [localhost]: FAILED! => {")]
    inert.check_terminal("\n".join(ours))
    assert not re.search("[\x00-\x1f\x7f-\x9f]", out.replace("\n", ""))
    assert re.search(r"(Action|Module) failed: unexpected listeners on ", out)
    assert "TCP 0.0.0.0:%d \\x1b[31mRED\\x1b[0m pid %d" % (PORT + 2, pids[PORT + 2]) in out
    assert "\\x1b[31mRED\\x1b[0m" in out and "<script>alert(1" in out
    inert.check_terminal(cli_out)
    rows = cli_out.splitlines()
    # one header, a second header when the container's bind brings the K8S columns
    assert len(rows) == 2 + len(COMMS) + 1, cli_out
    assert sum(1 for r in rows if "?[31mRED?[0m" in r) == 1
    assert sum(1 for r in rows if r.split()[:1] == ["K8S.NODE"]) == 1
    for _, ids in tracers:
        assert wait_gone(ids) == set()
