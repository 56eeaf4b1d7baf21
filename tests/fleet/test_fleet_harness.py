"""The test fleet itself: real namespaces, real sshd, real `ansible` over the
default ssh connection and over paramiko_ssh."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from controller import connection_param
from conftest import ROOT, VENV_BIN, ansible_env, run_adhoc
from harness import Fleet
from helpers import procs as fleet_procs

CONNECTIONS = ["ssh", connection_param("paramiko_ssh")]   # paramiko_ssh: ansible-core <= 2.20
HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness.py")

pytestmark = pytest.mark.fleet


def names(fleet):
    return sorted(h["name"] for h in fleet.hosts)


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_ping_every_host(fleet, connection):
    proc, res = run_adhoc(fleet, "ping", connection=connection)
    assert proc.returncode == 0, proc.stderr
    assert sorted(res) == names(fleet)
    assert all(r["ping"] == "pong" for r in res.values())


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_each_host_has_its_own_identity(fleet, connection):
    proc, res = run_adhoc(fleet, "setup", "gather_subset=!all,network,env", connection=connection)
    assert proc.returncode == 0, proc.stderr
    for h in fleet.hosts:
        facts = res[h["name"]]["ansible_facts"]
        assert facts["ansible_hostname"] == h["name"]
        assert facts["ansible_all_ipv4_addresses"] == [h["addr"]]
        assert facts["ansible_all_ipv6_addresses"] == []
        assert facts["ansible_default_ipv4"] == {}  # no default route inside a host
        assert sorted(facts["ansible_interfaces"]) == ["eth0", "lo"]
        # sshd's SetEnv HOME keeps bash away from /root/.bashrc (pyenv)
        assert facts["ansible_env"]["HOME"] == os.path.join(fleet.state, "home")
        assert "PYENV_ROOT" not in facts["ansible_env"]


def test_inventory_groups_and_interpreter(fleet):
    out = subprocess.run([os.path.join(VENV_BIN, "ansible-inventory"), "-i", fleet.inventory_path,
                          "--list"], env=ansible_env(), cwd=ROOT, stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    inv = json.loads(out)
    n = lambda short: fleet.host(short)["name"]  # noqa: E731
    assert inv["web"]["hosts"] == [n("h1"), n("h3"), n("h5")]
    assert inv["db"]["hosts"] == [n("h2"), n("h4")]
    hv = inv["_meta"]["hostvars"][n("h4")]
    assert hv["ansible_host"] == fleet.data["subnet"] + ".14"
    assert hv["ansible_python_interpreter"] == "/usr/bin/python3"
    cli = subprocess.run([sys.executable, HARNESS, "inventory", "--state", fleet.state],
                         stdout=subprocess.PIPE, universal_newlines=True, check=True)
    assert cli.stdout.strip() == fleet.inventory_path


def test_hosts_are_isolated_namespaces(fleet):
    root_ns = os.stat("/proc/self/ns/net").st_ino
    inodes = set()
    for h in fleet.hosts:
        routes = fleet.run_in(h["name"], ["/usr/sbin/ip", "-4", "route"]).stdout.splitlines()
        assert routes == [fleet.data["subnet"] + ".0/24 dev eth0 proto kernel scope link src %s " % h["addr"]]
        v6 = fleet.run_in(h["name"], ["/bin/cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6"])
        assert v6.stdout.strip() == "1"
        # sshd listens on its own address only, inside its own namespace
        ss = fleet.run_in(h["name"], ["/usr/bin/ss", "-Htln"]).stdout.split()
        assert [w for w in ss if ":" in w and w != "0.0.0.0:*"] == ["%s:22" % h["addr"]]
        sshd_ns = os.stat("/proc/%d/ns/net" % h["pid"]).st_ino
        assert sshd_ns == fleet.netns_inode(h["name"]) != root_ns
        inodes.add(sshd_ns)
        with open("/etc/netns/%s/hosts" % h["ns"]) as f:
            assert "%s %s %s\n" % (h["addr"], h["name"], h["short"]) in f.read()
    assert len(inodes) == len(fleet.hosts)


def test_workload_binds_inside_its_host(fleet, binders):
    b = binders(fleet, "h2", [("0.0.0.0", 18080)])
    assert os.stat("/proc/%d/ns/net" % b.pid).st_ino == fleet.netns_inode("h2")
    proc, res = run_adhoc(fleet, "command", "/usr/bin/ss -Htln")
    assert proc.returncode == 0, proc.stderr
    for h in fleet.hosts:
        listening = set(re.findall(r"\S+:\d+", res[h["name"]]["stdout"])) - {"0.0.0.0:*"}
        want = {"%s:22" % h["addr"]} | ({"0.0.0.0:18080"} if h["short"] == "h2" else set())
        assert listening == want, h["name"]
    # reachable from the root namespace over the bridge, and only on h2
    socket.create_connection((fleet.host("h2")["addr"], 18080), timeout=2).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((fleet.host("h3")["addr"], 18080), timeout=2)


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_killed_sshd_makes_only_that_host_unreachable(fleet, connection, restore_sshd):
    # warm: with ssh this leaves a ControlPersist master per host, which the
    # harness must close or h3 would stay reachable through it
    proc, res = run_adhoc(fleet, "ping", connection=connection)
    assert proc.returncode == 0, proc.stderr
    old = fleet.host("h3")["pid"], fleet.host("h3")["started"]
    fleet.kill_sshd("h3")
    assert not fleet_procs.alive(*old)
    proc, res = run_adhoc(fleet, "ping", connection=connection)
    assert proc.returncode == 4  # ansible's exit code for unreachable hosts
    h3 = fleet.host("h3")["name"]
    assert res[h3]["unreachable"] is True
    assert {n: r.get("ping") for n, r in res.items() if n != h3} == {
        n: "pong" for n in names(fleet) if n != h3}
    fleet.start_sshd("h3")
    proc, res = run_adhoc(fleet, "ping", pattern=h3, connection=connection)
    assert proc.returncode == 0 and res[h3]["ping"] == "pong"


# --- teardown: a second, private fleet -------------------------------------

@pytest.fixture
def td(fleet_slot):
    """(state, prefix, subnet) of a private throw-away fleet, per pytest slot."""
    return ("/tmp/bindtrace-fleet-teardown-%d" % fleet_slot, "btftd%d" % fleet_slot,
            "10.234.%d" % fleet_slot)


def leftovers(prefix, state, inodes=()):
    """Everything of a fleet that could outlive `down`: names, the state dir,
    processes naming the state dir or living in one of the `inodes` netns."""
    out = []
    out += ["netns " + n for n in os.listdir("/run/netns") if n.startswith(prefix)] \
        if os.path.isdir("/run/netns") else []
    out += ["link " + n for n in os.listdir("/sys/class/net") if n.startswith(prefix)]
    out += ["etc " + n for n in os.listdir("/etc/netns") if n.startswith(prefix)] \
        if os.path.isdir("/etc/netns") else []
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            cmd = open("/proc/%d/cmdline" % pid, "rb").read().decode(errors="replace")
        except OSError:
            continue
        try:
            ino = os.stat("/proc/%d/ns/net" % pid).st_ino
        except OSError:
            ino = None
        if (state in cmd or ino in inodes) and fleet_procs.alive(pid):
            out.append("process %d %s" % (pid, cmd.replace("\0", " ")))
    if os.path.exists(state):
        out.append("state dir " + state)
    return out


def test_down_stops_sessions_masters_and_removes_everything(td):
    TD_STATE, TD_PREFIX, subnet = td
    f = Fleet(TD_STATE)
    f.down()
    f.up(2, prefix=TD_PREFIX, subnet=subnet)
    try:
        proc, res = run_adhoc(f, "ping")  # leaves ssh ControlPersist masters
        assert proc.returncode == 0, proc.stderr
        masters = sorted(os.listdir(f.control_dir))
        assert masters == [subnet + ".11-root", subnet + ".12-root"]
        # a long session on h1, and a session orphaned by killing h2's sshd
        sessions = []
        for h in f.hosts:
            sessions.append(subprocess.Popen(
                ["/usr/bin/ssh", "-i", f.private_key, "-o", "UserKnownHostsFile=" + f.known_hosts,
                 "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                 "-o", "ControlPath=none", "root@" + h["addr"], "exec -a %s-sleep /bin/sleep 300" % TD_STATE],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while sum("sleep" in l for l in leftovers(TD_PREFIX, TD_STATE)) < 2:
            assert time.monotonic() < deadline, leftovers(TD_PREFIX, TD_STATE)
            time.sleep(0.05)
        inodes = {f.netns_inode(h["name"]) for h in f.hosts}
        h2 = f.host("h2")
        os.kill(h2["pid"], signal.SIGKILL)  # its session lives on, reparented
    finally:
        f.down()
    assert leftovers(TD_PREFIX, TD_STATE, inodes) == []
    for s in sessions:
        assert s.wait(timeout=10) != 0  # the far end went away
    f.down()  # idempotent
    assert leftovers(TD_PREFIX, TD_STATE) == []


def test_down_cleans_up_after_an_up_killed_halfway(td):
    TD_STATE, TD_PREFIX, subnet = td
    subprocess.run([sys.executable, HARNESS, "down", "--state", TD_STATE], check=True)
    up = subprocess.Popen([sys.executable, HARNESS, "up", "12", "--state", TD_STATE,
                           "--prefix", TD_PREFIX, "--subnet", subnet],
                          stdout=subprocess.DEVNULL)
    state_file = os.path.join(TD_STATE, "fleet.json")
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline and up.poll() is None, "up finished before the kill"
        try:
            with open(state_file) as fh:
                started = [h for h in json.load(fh)["hosts"] if h["pid"]]
        except (OSError, ValueError):
            started = []
        if len(started) >= 2:
            break
        time.sleep(0.005)
    up.send_signal(signal.SIGKILL)
    up.wait()
    assert any(l.startswith("process") for l in leftovers(TD_PREFIX, TD_STATE))
    down = subprocess.run([sys.executable, HARNESS, "down", "--state", TD_STATE],
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert down.returncode == 0, down.stderr
    assert leftovers(TD_PREFIX, TD_STATE) == []
    down = subprocess.run([sys.executable, HARNESS, "down", "--state", TD_STATE])
    assert down.returncode == 0


def test_cli_bind_and_unbind_a_detached_workload(fleet):
    h5 = fleet.host("h5")
    cli = [sys.executable, HARNESS, "--state", fleet.state]
    out = subprocess.run(cli + ["bind", h5["name"], "127.0.0.1:18095", "18096"], check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    pid = int(out.strip())
    try:
        with open(os.path.join(fleet.state, "fleet.json")) as f:
            recorded = json.load(f)["workloads"]
        assert [(w["host"], w["pid"], w["binds"]) for w in recorded] == [
            (h5["name"], pid, [["127.0.0.1", 18095], ["0.0.0.0", 18096]])]
        assert os.stat("/proc/%d/ns/net" % pid).st_ino == fleet.netns_inode("h5")
        ss = fleet.run_in("h5", ["/usr/bin/ss", "-Htln"]).stdout
        assert "127.0.0.1:18095" in ss and "0.0.0.0:18096" in ss
    finally:
        subprocess.run(cli + ["unbind", "h5"], check=True)
    assert not fleet_procs.alive(pid)
    ss = fleet.run_in("h5", ["/usr/bin/ss", "-Htln"]).stdout
    assert "18095" not in ss and "18096" not in ss
    with open(os.path.join(fleet.state, "fleet.json")) as f:
        assert json.load(f)["workloads"] == []
