"""A busy host through the real `ansible-playbook` (issue 19): 30 processes x
2,000 UDP client binds to 127.0.0.1:0 in one 8 s window. Summary mode counts
them in the kernel per process without their ports: every bind counted, a
handful of records, verdict `client`, small facts; a forbidden listener started
during the flood still fails the task, and a test server on a port the kernel
assigned (bind 0, then listen) is reported with its real port.

The workload runs in a network namespace of its own and the module traces only
that namespace (netns: inode), so other tests binding on this machine at the
same time change nothing in the exact counts."""
import json
import os
import subprocess
import uuid

import pytest

from module_run import PYTHON, Play, assert_nothing_left, trace_task

FLOOD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kernel",
                     "client_flood.py")
PROCS, PER_PROC = 30, 2000
FORBIDDEN = 4444
MAX_RECORDS = 500               # bounded.DEFAULT_MAX_RECORDS: the module's default cap
# nothing here allows a client bind: a test server on loopback, and ssh
ALLOW = [{"name": "ssh", "port": 22, "proto": "tcp", "comm": "sshd"},
         {"name": "test server on an assigned port", "proto": "tcp", "addr": "loopback",
          "comm": "btclisrv"}]
FORBID_CODE = ("import os, socket, sys\nopen('/proc/self/comm', 'w').write('btforbid')\n"
               "s = socket.socket()\ns.bind(('0.0.0.0', %d))\ns.listen(8)\n"
               "print(os.getpid(), flush=True)\nsys.stdin.read()\n" % FORBIDDEN)


@pytest.fixture
def netns():
    name = "bt19-%s" % uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name, os.stat("/run/netns/%s" % name).st_ino
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def in_netns(name, argv):
    return subprocess.Popen(["ip", "netns", "exec", name] + argv, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, universal_newlines=True)


def busy_window(netns, forbidden):
    """One 8 s module window over the flood (and the forbidden listener);
    -> (the task's result, the flood's truth, the forbidden listener's pid)."""
    name, inode = netns
    play = Play([trace_task(duration=8, netns=str(inode), allow=ALLOW,
                            fail_on_unexpected=True)])
    flood = in_netns(name, [PYTHON, FLOOD, str(PROCS), str(PER_PROC), "127.0.0.1", "btcli",
                            "listen"])
    forbid = None
    try:
        pids = json.loads(flood.stdout.readline())["pids"]
        play.wait_attached()
        flood.stdin.write("go\n")
        flood.stdin.flush()
        if forbidden:                          # started while the flood runs
            forbid = in_netns(name, [PYTHON, "-c", FORBID_CODE])
            forbid_pid = int(forbid.stdout.readline())
        truth = json.loads(flood.stdout.readline())
        play.wait()
    finally:
        for proc in (flood, forbid):
            if proc is not None:
                proc.stdin.close()
                proc.wait(timeout=60)
    truth["pids"] = pids
    assert_nothing_left(play)
    return play, truth, forbid_pid if forbidden else None


def check_flood_facts(facts, truth, inode, extra_binds):
    """Every one of the 60,000 client binds counted, one record per process."""
    assert (facts["summary_full"], facts["lost"], facts["dropped"]) == (0, 0, 0)
    assert facts["filters"]["netns"] == inode
    assert sum(t[0] for t in truth["binds"].values()) == PROCS * PER_PROC
    flood = sorted((b["comm"], b["pid"], b["count"], b["port"], b["port_min"], b["port_max"],
                    b["proto"], b["addr"], b["client"], b["verdict"])
                   for b in facts["binds"] if b["comm"].startswith("btcli")
                   and b["comm"] != "btclisrv")
    assert flood == sorted((comm, truth["pids"][comm], PER_PROC, 0, lo, hi, "UDP", "127.0.0.1",
                            True, "client")
                           for comm, (_, lo, hi) in truth["binds"].items())
    assert facts["counts"]["binds"] == PROCS * PER_PROC + extra_binds
    # the test server's bind asked for port 0 too: counted as the client bind it was...
    server = [b for b in facts["binds"] if b["comm"] == "btclisrv"]
    assert [(b["proto"], b["addr"], b["port"], b["port_min"], b["count"], b["pid"])
            for b in server] == [("TCP", "127.0.0.1", 0, truth["listen_port"], 1,
                                  truth["listen_pid"])]
    # ...and, since it listens, reported as a listener with its real port
    return [(lst["proto"], lst["addr"], lst["port"], lst["comm"], lst["pid"], lst["verdict"])
            for lst in facts["listeners"]]


def facts_size(result):
    """Bytes of the host's facts and of its whole task result, as JSON."""
    return (len(json.dumps(result["ansible_facts"]["bind_trace"])), len(json.dumps(result)))


def test_60000_client_binds_are_counted_judged_client_and_the_task_passes(netns):
    play, truth, _ = busy_window(netns, forbidden=False)
    assert play.proc.returncode == 0, play.err + play.out[-3000:]
    res = play.results()["trace"]
    assert not res.get("failed"), res.get("msg")
    facts = res["ansible_facts"]["bind_trace"]
    listeners = check_flood_facts(facts, truth, netns[1], extra_binds=1)
    assert listeners == [("TCP", "127.0.0.1", truth["listen_port"], "btclisrv",
                          truth["listen_pid"], "expected")]
    assert facts["unexpected"] == {"binds": [], "listeners": []}
    counts = facts["counts"]
    assert (counts["records"], counts["client_binds"], counts["unexpected_binds"],
            counts["unexpected_listeners"], counts["omitted_binds"]) == (
        PROCS + 1, PROCS * PER_PROC + 1, 0, 0, 0)
    assert facts["truncated"] is False
    facts_bytes, result_bytes = facts_size(res)
    print("busy host: %d binds in %d records; facts %d bytes, task result %d bytes (cap %d "
          "records)" % (counts["binds"], len(facts["binds"]), facts_bytes, result_bytes,
                        MAX_RECORDS))
    assert len(facts["binds"]) <= MAX_RECORDS and len(facts["listeners"]) <= MAX_RECORDS
    assert facts_bytes < 64 * 1024     # was 22.6 MB (16,384 records) before aggregation


def test_a_forbidden_listener_started_during_the_flood_fails_the_task(netns):
    play, truth, forbid_pid = busy_window(netns, forbidden=True)
    assert play.proc.returncode == 2, play.err + play.out[-3000:]
    res = play.results()["trace"]
    assert res["failed"] is True
    facts = res["ansible_facts"]["bind_trace"]
    listeners = check_flood_facts(facts, truth, netns[1], extra_binds=2)
    assert sorted(listeners) == sorted([
        ("TCP", "127.0.0.1", truth["listen_port"], "btclisrv", truth["listen_pid"], "expected"),
        ("TCP", "0.0.0.0", FORBIDDEN, "btforbid", forbid_pid, "unexpected")])
    host = facts["host"]["hostname"]
    named = "TCP 0.0.0.0:%d btforbid pid %d" % (FORBIDDEN, forbid_pid)
    assert res["msg"] == (
        "unexpected listeners on %s: %s; unexpected binds on %s: %s. No allow rule matches "
        "them: stop them, or add a rule to allow (e.g. {port: N, proto: tcp, comm: NAME})"
        % (host, named, host, named))
    assert (facts["counts"]["unexpected_binds"], facts["counts"]["unexpected_listeners"]) == (1, 1)
    facts_bytes, result_bytes = facts_size(res)
    print("busy host with a forbidden listener: facts %d bytes, task result %d bytes"
          % (facts_bytes, result_bytes))
    assert facts_bytes < 64 * 1024
