"""fleetaudit.bindtrace.trace_bind over SSH (ssh, and paramiko_ssh where the
controller's ansible-core still has it: 2.20 and older) to a test-fleet host,
a network namespace with its own sshd: with `netns: host` the facts hold
exactly the binds a workload made inside that host during the window, and the
listener snapshot is exactly that host's sockets."""
import pytest

from bindtrace.events import EVENT_KEYS
from bindtrace.record import BIND_FACT_KEYS
from controller import connection_param
from module_run import EXACT, PYTHON, Play, Workload, assert_nothing_left, pids_in_netns, trace_task

pytestmark = pytest.mark.fleet
CONNECTIONS = ["ssh", connection_param("paramiko_ssh")]


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_ssh_facts_hold_exactly_the_binds_made_in_the_host(fleet, connection):
    host = fleet.hosts[0]
    name, inode = host["name"], fleet.netns_inode(host["name"])
    p1, p2 = 41001, 41002     # a fresh namespace: nothing else is bound there
    play = Play([trace_task(duration=6, mode="events", netns="host", ignore_errors=False)],
                hosts=name, inventory=fleet.inventory_path, connection=connection)
    play.wait_attached(candidates=lambda: pids_in_netns(inode))
    work = Workload(EXACT, p1, p2, "127.0.0.1", prefix=fleet.exec_argv(name, []))
    try:
        play.wait()
        assert play.proc.returncode == 0, play.out[-3000:] + play.err[-3000:]
        res = play.results()["trace"]
    finally:
        work.stop()
    facts = res["ansible_facts"]["bind_trace"]
    w = work.info
    assert w["netns"] == inode
    assert facts["host"]["hostname"] == name
    assert facts["host"]["netns"] == inode
    assert facts["filters"]["netns"] == "host"
    binds = facts["binds"]
    assert [set(b) for b in binds] == [set(EVENT_KEYS) | set(BIND_FACT_KEYS)] * 3
    assert [(b["pid"], b["proto"], b["family"], b["addr"], b["port"], b["requested_addr"],
             b["requested_port"], b["error"], b["comm"], b["netns"]) for b in binds] == [
        (w["pid"], "TCP", 4, "127.0.0.1", p1, "127.0.0.1", p1, None, "python3", inode),
        (w["pid"], "UDP", 4, "127.0.0.1", p2, "127.0.0.1", p2, None, "python3", inode),
        (w["pid"], "TCP", 4, "0.0.0.0", 0, "127.0.0.1", p1, "EADDRINUSE", "python3", inode)]
    # the host's listeners, and only its: its sshd and the workload's two sockets
    assert [(l["proto"], l["addr"], l["port"], l["state"], l["pid"], l["comm"], l["netns"])
            for l in facts["listeners"]] == [
        ("TCP", host["addr"], 22, "LISTEN", host["pid"], "sshd", inode),
        ("TCP", "127.0.0.1", p1, "LISTEN", w["pid"], "python3", inode),
        ("UDP", "127.0.0.1", p2, "UNCONN", w["pid"], "python3", inode)]
    assert facts["counts"]["binds"] == 3 and facts["lost"] == 0
    assert_nothing_left(play)


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_ssh_bad_input_fails_that_host_only(fleet, connection):
    first, second = fleet.hosts[0]["name"], fleet.hosts[1]["name"]
    task = trace_task(duration="{{ '0' if inventory_hostname == '%s' else '1' }}" % first,
                      listeners=False)
    play = Play([task, {"name": "after", "debug": {"msg": "carried on"}}],
                hosts="%s,%s" % (first, second), inventory=fleet.inventory_path,
                connection=connection, interpreter=PYTHON)
    play.wait()
    data = play.results_by_host()
    assert data["trace"][first]["msg"] == ("invalid duration '0': expected seconds, more than 0 "
                                           "and at most 3600 (use async for long windows)")
    assert data["trace"][second]["ansible_facts"]["bind_trace"]["window"]["duration"] == 1.0
    assert set(data["after"]) == {second}
    assert_nothing_left(play)
